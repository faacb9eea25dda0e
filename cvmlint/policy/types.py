"""Types of the policy language, and the fact schema derived from the fact model's annotations."""

from __future__ import annotations

import types
from dataclasses import dataclass, fields, replace
from typing import Any, Union, get_args, get_origin, get_type_hints

from cvmlint.facts.model import DebVersion, Facts, Record
from cvmlint.facts.provenance import Items, Unknown


@dataclass(frozen=True)
class Ty:
    """A type: `str`, `int`, `bool`, `version`, `list[T]`, a record, `allowlist`, or `any`."""

    name: str
    elem: Ty | None = None
    record: type[Record] | None = None
    optional: bool = False
    """May be none: a missing key (`cmdline["x"]`) or an optional field."""

    def __str__(self) -> str:
        if self.name == "list":
            text = f"list[{self.elem}]"
        elif self.name == "record":
            assert self.record is not None
            text = self.record.__name__
        else:
            text = self.name
        return text + ("?" if self.optional else "")

    def required(self) -> Ty:
        """The same type without `optional`."""
        return replace(self, optional=False) if self.optional else self

    def maybe(self) -> Ty:
        """The same type, possibly none."""
        return replace(self, optional=True)

    @property
    def is_list(self) -> bool:
        """A list or collection."""
        return self.name == "list"

    @property
    def textual(self) -> bool:
        """Strings and versions (a version compares with dpkg's ordering)."""
        return self.name in ("str", "version")


STR = Ty("str")
INT = Ty("int")
BOOL = Ty("bool")
VERSION = Ty("version")
ANY = Ty("any")
ALLOWLIST = Ty("allowlist")


def list_of(elem: Ty) -> Ty:
    """`list[elem]`."""
    return Ty("list", elem=elem)


def record_ty(cls: type[Record]) -> Ty:
    """The type of one record class."""
    return Ty("record", record=cls)


_SIMPLE = {"str": STR, "int": INT, "bool": BOOL}


def ty_from_hint(hint: Any) -> Ty:
    """The language type of a fact-model annotation (Unknown is every fact's possibility, not a type)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        members = [m for m in get_args(hint) if m is not Unknown]
        optional = type(None) in members
        members = [m for m in members if m is not type(None)]
        if len(members) != 1:
            raise TypeError(f"fact annotation {hint!r} has more than one type")
        ty = ty_from_hint(members[0])
        return ty.maybe() if optional else ty
    if hint is DebVersion:
        return VERSION
    if origin is tuple:
        return list_of(ty_from_hint(get_args(hint)[0]))
    if origin is Items:
        return list_of(ty_from_hint(get_args(hint)[0]))
    if isinstance(hint, type) and issubclass(hint, Record):
        return record_ty(hint)
    if isinstance(hint, type) and hint.__name__ in _SIMPLE:
        return _SIMPLE[hint.__name__]
    raise TypeError(f"no language type for fact annotation {hint!r}")


@dataclass(frozen=True)
class FieldInfo:
    """One field a policy can read."""

    name: str
    ty: Ty
    doc: str


_FIELDS: dict[type, dict[str, FieldInfo]] = {}


def record_fields(cls: type[Any]) -> dict[str, FieldInfo]:
    """Policy-visible fields of a record class (or of Facts), in declaration order."""
    if cls in _FIELDS:
        return _FIELDS[cls]
    hints = get_type_hints(cls)
    out = {}
    for f in fields(cls):
        if f.metadata.get("hidden") or f.name in ("where", "field_where"):
            continue
        out[f.name] = FieldInfo(f.name, ty_from_hint(hints[f.name]), f.metadata.get("doc", ""))
    _FIELDS[cls] = out
    return out


def fact_roots() -> dict[str, FieldInfo]:
    """The top-level fact names (`packages`, `rootfs`, …) and their types."""
    return record_fields(Facts)


def key_type(elem: Ty) -> Ty | None:
    """For a keyed record collection, the type `coll["key"]` yields; None when not keyed."""
    if elem.name != "record" or elem.record is None or elem.record.KEY is None:
        return None
    cls = elem.record
    if cls.INDEX_YIELDS:
        return record_fields(cls)[cls.INDEX_YIELDS].ty.maybe()
    return elem.maybe()


def comparable(a: Ty, b: Ty) -> bool:
    """Whether `a == b` makes sense."""
    a, b = a.required(), b.required()
    if ANY in (a, b):
        return True
    if a.textual and b.textual:
        return True
    if a.is_list and b.is_list:
        assert a.elem is not None and b.elem is not None
        return comparable(a.elem, b.elem) or a.elem == ANY or b.elem == ANY
    return a == b


def unify(items: list[Ty]) -> Ty | None:
    """The common type of list elements, or None when they differ."""
    known = [t for t in items if t != ANY]
    if not known:
        return ANY
    first = known[0].required()
    if all(comparable(t, first) for t in known):
        return STR if first.textual else first
    return None
