"""Facts to JSON and back: the format of `cvmlint facts --json`, evidence bundles and policy fixtures."""

from __future__ import annotations

import json
import types
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from cvmlint.errors import InputError
from cvmlint.facts.model import Facts, KernelStrings, Record, Target
from cvmlint.facts.provenance import Items, Provenance, Unknown

SCHEMA = "cvmlint.facts/1"
_PROVENANCE_KEYS = ("file", "line", "partition", "offset", "sha256", "detail")


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def encode_provenance(where: Provenance) -> dict[str, Any]:
    """A provenance as a JSON object without empty keys."""
    return {k: getattr(where, k) for k in _PROVENANCE_KEYS if getattr(where, k) is not None}


def encode(value: Any) -> Any:
    """One fact value as JSON-ready data."""
    if isinstance(value, Unknown):
        out: dict[str, Any] = {"unknown": value.reason}
        if value.where:
            out["where"] = encode_provenance(value.where)
        return out
    if isinstance(value, Record):
        return _encode_record(value)
    if isinstance(value, Items):
        out = {"items": [encode(item) for item in value]}
        if value.where:
            out["where"] = encode_provenance(value.where)
        return out
    if isinstance(value, KernelStrings):
        searched = None if value.searched is None else sorted(value.searched)
        return {"found": sorted(value.found), "searched": searched}
    if isinstance(value, tuple):
        return [encode(v) for v in value]
    return value


def _encode_record(record: Record) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if f.name == "where":
            if value is not None:
                out["where"] = encode_provenance(value)
        elif f.name == "field_where":
            if value:
                out["field_where"] = {k: encode_provenance(v) for k, v in value.items()}
        else:
            out[f.name] = encode(value)
    return out


def facts_to_json(facts: Facts) -> dict[str, Any]:
    """The whole fact set as a JSON document (schema `cvmlint.facts/1`)."""
    body = {f.name: encode(getattr(facts, f.name)) for f in fields(Facts) if f.name != "target"}
    return {"schema": SCHEMA, "target": encode(facts.target), "facts": body}


def dump_facts(facts: Facts) -> str:
    """Facts as indented JSON text."""
    return json.dumps(facts_to_json(facts), indent=2, sort_keys=False) + "\n"


class _Decoder:
    """Type-directed decoding with error messages naming the JSON path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str) -> InputError:
        return InputError(f"{self.source}: {path}: {problem}")

    def provenance(self, data: Any, path: str) -> Provenance:
        if not isinstance(data, dict) or set(data) - set(_PROVENANCE_KEYS):
            raise self.fail(path, f"expected a location object with keys {', '.join(_PROVENANCE_KEYS)}")
        return Provenance(**data)

    def value(self, hint: Any, data: Any, path: str) -> Any:
        origin = get_origin(hint)
        if origin in (Union, types.UnionType):
            return self._union(get_args(hint), data, path)
        if hint is type(None):
            if data is not None:
                raise self.fail(path, f"expected null, got {data!r}")
            return None
        if hasattr(hint, "__supertype__"):  # NewType such as DebVersion
            hint = hint.__supertype__
        if hint in (str, int, bool):
            if type(data) is not hint:
                raise self.fail(path, f"expected {hint.__name__}, got {json.dumps(data)[:60]}")
            return data
        if origin is tuple:
            if not isinstance(data, list):
                raise self.fail(path, "expected a list")
            return tuple(self.value(get_args(hint)[0], item, f"{path}[{i}]") for i, item in enumerate(data))
        if origin is Items:
            return self._items(get_args(hint)[0], data, path)
        if hint is KernelStrings:
            if not isinstance(data, dict):
                raise self.fail(path, "expected {found, searched}")
            return KernelStrings(data.get("found", []), data.get("searched"))
        if isinstance(hint, type) and issubclass(hint, Record):
            return self.record(hint, data, path)
        raise self.fail(path, f"cannot decode type {hint!r}")  # pragma: no cover - schema bug

    def _union(self, members: tuple[Any, ...], data: Any, path: str) -> Any:
        if isinstance(data, dict) and "unknown" in data and Unknown in members:
            where = self.provenance(data["where"], path + ".where") if "where" in data else None
            return Unknown(str(data["unknown"]), where)
        if data is None and type(None) in members:
            return None
        candidates = [m for m in members if m not in (Unknown, type(None))]
        errors = []
        for member in candidates:
            try:
                return self.value(member, data, path)
            except InputError as err:
                errors.append(err)
        if len(errors) == 1:
            raise errors[0]
        raise self.fail(path, f"unexpected value {json.dumps(data)[:60]}")

    def _items(self, item_hint: Any, data: Any, path: str) -> Items[Any]:
        if isinstance(data, list):
            data = {"items": data}
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise self.fail(path, 'expected {"items": [...]} or a list')
        where = self.provenance(data["where"], path + ".where") if "where" in data else None
        items = [self.value(item_hint, item, f"{path}[{i}]") for i, item in enumerate(data["items"])]
        return Items(items, where)

    def record(self, cls: type[Record], data: Any, path: str) -> Record:
        if not isinstance(data, dict):
            raise self.fail(path, f"expected a {cls.__name__} object")
        hints = _hints(cls)
        known = {f.name: f for f in fields(cls)}
        unexpected = set(data) - set(known)
        if unexpected:
            raise self.fail(path, f"unknown field(s) {', '.join(sorted(unexpected))} for {cls.__name__}")
        kwargs: dict[str, Any] = {}
        for name, f in known.items():
            if name not in data:
                if f.default is MISSING and f.default_factory is MISSING:
                    raise self.fail(path, f"missing field {name!r} of {cls.__name__}")
                continue
            raw = data[name]
            if name == "where":
                kwargs[name] = self.provenance(raw, f"{path}.where")
            elif name == "field_where":
                kwargs[name] = {k: self.provenance(v, f"{path}.field_where.{k}") for k, v in raw.items()}
            else:
                kwargs[name] = self.value(hints[name], raw, f"{path}.{name}")
        return cls(**kwargs)


def facts_from_json(doc: Any, source: str = "<facts>") -> Facts:
    """Facts from a JSON document; a fact missing from the document is unknown, with that reason."""
    decoder = _Decoder(source)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise decoder.fail("schema", f'not a cvmlint facts document (expected "schema": "{SCHEMA}")')
    body = doc.get("facts", {})
    if not isinstance(body, dict):
        raise decoder.fail("facts", "expected an object")
    names = {f.name for f in fields(Facts)} - {"target"}
    unexpected = set(body) - names
    if unexpected:
        raise decoder.fail("facts", f"unknown fact(s): {', '.join(sorted(unexpected))}")
    target = decoder.record(Target, doc.get("target"), "target")
    hints = _hints(Facts)
    kwargs: dict[str, Any] = {}
    for name in sorted(names):
        if name in body:
            kwargs[name] = decoder.value(hints[name], body[name], f"facts.{name}")
        else:
            kwargs[name] = Unknown(f"not recorded in {source}")
    assert isinstance(target, Target)
    return Facts(target=target, **kwargs)


def load_facts_file(path: str | Path) -> Facts:
    """Facts from a JSON file written by `cvmlint facts --json`."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not a JSON facts file: {err}") from None
    return facts_from_json(doc, str(path))
