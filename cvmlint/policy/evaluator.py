"""Evaluate a checked policy over facts with three-valued (Kleene) logic.

Truth values are True, False and `Undecided` (unknown, with its reasons). `false and unknown` is
false, `true or unknown` is true; anything read from an Unknown fact is unknown and carries the
reason. A failing requirement is then *explained*: the same compiled expressions pick out the cases
that decided it (every offending item of a quantifier), and `places` says where each case was read.

Each expression is compiled once into a closure over plain values; a quantifier runs its body's
closure once per item with the item bound in a scratch environment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from cvmlint.errors import CvmlintError, InputError
from cvmlint.facts.model import Facts, Record
from cvmlint.facts.provenance import Accept, Items, Provenance, Unknown
from cvmlint.policy import ast, regex
from cvmlint.policy.allowlist import Allowlist, version_compare
from cvmlint.policy.checker import describe, walk_expr
from cvmlint.policy.loader import Policy
from cvmlint.policy.results import Finding, Report, RuleInfo, RuleResult, Status

MAX_REASONS = 12

Env = dict[str, Any]
"""Quantifier variables bound to their items (plain values, no provenance)."""
Wheres = Mapping[str, tuple[Provenance, ...]]
"""Where each bound variable's item was read."""


class VersionStr(str):
    """A package version read from a fact: compared with dpkg's ordering."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Undecided:
    """The unknown truth value, with the reasons it could not be decided."""

    reasons: tuple[str, ...]


Truth = bool | Undecided
TruthFn = Callable[[Env], Truth]
ValueFn = Callable[[Env], Any]


@dataclass(frozen=True, slots=True)
class V:
    """A value with the places it was read from (a bound variable in a case)."""

    value: Any
    where: tuple[Provenance, ...] = ()


@dataclass(frozen=True, slots=True)
class Case:
    """One concrete instance behind a verdict: the bound variables and the places read."""

    bindings: tuple[tuple[str, V], ...]
    where: tuple[Provenance, ...]


_VERSION_FIELDS: dict[type, frozenset[str]] = {}


def _any_version_field(name: str) -> bool:
    """A field some record compares with dpkg's ordering (equal versions can differ as text: no index)."""
    from cvmlint.facts.model import RECORD_TYPES

    return any(name in _version_fields(cls) for cls in RECORD_TYPES)


def _version_fields(cls: type) -> frozenset[str]:
    """The fields declared `DebVersion` (read from the annotations' text: resolving every record's type
    hints costs more than a short lint; tests/policy check that both agree)."""
    found = _VERSION_FIELDS.get(cls)
    if found is None:
        declared = fields(cls) if is_dataclass(cls) else ()
        found = _VERSION_FIELDS[cls] = frozenset(f.name for f in declared if _VERSION_HINT.search(str(f.type)))
    return found


_VERSION_HINT = re.compile(r"\bDebVersion\b")


def _merge(*groups: Iterable[Provenance]) -> tuple[Provenance, ...]:
    seen: dict[Provenance, None] = {}
    for group in groups:
        for w in group:
            seen.setdefault(w, None)
    return tuple(seen)


def _where_of(value: Any) -> tuple[Provenance, ...]:
    where = getattr(value, "where", None)
    return (where,) if isinstance(where, Provenance) else ()


def format_value(value: Any) -> str:
    """A value as shown inside a message."""
    if isinstance(value, Unknown):
        return str(value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Record):
        key = type(value).KEY
        return str(getattr(value, key)) if key else type(value).__name__
    if isinstance(value, Items):
        return "[…]" if value.lazy else "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, tuple):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, Allowlist):
        return value.path
    return str(value)


def _truth_of_value(value: Any) -> Truth:
    if isinstance(value, Unknown):
        return Undecided((value.reason,))
    return value is not None and bool(value)


class Evaluator:
    """Evaluates expressions of one policy over one fact set."""

    def __init__(self, policy: Policy, facts: Facts) -> None:
        self.globals: dict[str, Any] = {}
        self.global_wheres: dict[str, tuple[Provenance, ...]] = {}
        for f in fields(Facts):
            value = getattr(facts, f.name)
            self.globals[f.name] = value
            self.global_wheres[f.name] = _where_of(value)
        for name, const in policy.lets.items():
            self.globals[name] = const
        self.lets = dict(policy.lets)
        for name, allow in policy.uses.items():
            self.globals[name] = allow
        self._truths: dict[int, TruthFn] = {}
        self._sinks: dict[int, list[Env]] = {}
        self._values: dict[int, ValueFn] = {}

    def define(self, name: str, value: Any) -> None:
        """Give a fact that was pending its value (the compiled lookups read the globals when they run)."""
        self.globals[name] = value
        self.global_wheres[name] = _where_of(value)

    # -- compiled truth ----------------------------------------------------------------------
    def truth(self, e: ast.Expr) -> TruthFn:
        """The compiled truth of a condition: True, False or Undecided."""
        fn = self._truths.get(id(e))
        if fn is None:
            fn = self._truths[id(e)] = self._compile_truth(e)
        return fn

    def _compile_truth(self, e: ast.Expr) -> TruthFn:
        if isinstance(e, ast.BoolOp):
            return self._compile_boolop(e)
        if isinstance(e, ast.Not):
            inner = self.truth(e.operand)

            def negation(env: Env) -> Truth:
                t = inner(env)
                return t if isinstance(t, Undecided) else not t

            return negation
        if isinstance(e, ast.Compare):
            return self._compile_compare(e)
        if isinstance(e, ast.Quantifier):
            return self._compile_quantifier(e)
        value = self.value(e)
        return lambda env: _truth_of_value(value(env))

    def _compile_boolop(self, e: ast.BoolOp) -> TruthFn:
        parts = [self.truth(x) for x in e.operands]
        decisive = e.op == "or"  # the operand value that decides at once: true for `or`, false for `and`

        def kleene(env: Env) -> Truth:
            reasons: tuple[str, ...] | None = None
            for part in parts:
                t = part(env)
                if t is decisive:
                    return decisive
                if isinstance(t, Undecided):
                    reasons = t.reasons if reasons is None else reasons + t.reasons
            return not decisive if reasons is None else Undecided(reasons)

        return kleene

    def _compile_compare(self, e: ast.Compare) -> TruthFn:
        left, right, op = self.value(e.left), self.value(e.right), e.op

        def comparison(env: Env) -> Truth:
            a, b = left(env), right(env)
            if isinstance(a, Unknown) or isinstance(b, Unknown):
                return Undecided(tuple(v.reason for v in (a, b) if isinstance(v, Unknown)))
            result = compare(op, a, b)
            return Undecided((result.reason,)) if isinstance(result, Unknown) else result

        return comparison

    def _narrowing(self, e: ast.Quantifier) -> list[Narrowing]:
        """Conditions `VAR.field OP constant` or `VAR.flag` that every item the verdict depends on meets,
        so the walk can go through an index of the collection instead (one walk builds it for every rule;
        `==` and `in` look values up, other operators test each distinct value once). The filter's always
        qualify; the body's only for `any` and `none` (an item whose body is false does not count there)
        and when the filter is itself made of such conditions (an undecided filter counts: the body's are
        used only when every one of the filter's could be looked up, i.e. none of its values is unknown).
        The evaluation on each item is unchanged."""
        found = [(field, accept, False) for field, accept in self._pushable(e.filter, e.var)] if e.filter else []
        if e.kind != "all" and (e.filter is None or len(found) == len(_conjuncts(e.filter))):
            found += [(field, accept, True) for field, accept in self._pushable(e.body, e.var)]
        return found

    def _pushable(self, e: ast.Expr, var: str) -> list[tuple[str, Accept]]:
        out: list[tuple[str, Accept]] = []
        for c in _conjuncts(e):
            if isinstance(c, ast.Attr) and isinstance(c.obj, ast.Name) and c.obj.id == var:
                out.append((c.name, frozenset([True])))
                continue
            if not (isinstance(c, ast.Compare) and isinstance(c.left, ast.Attr)):
                continue
            field, subject, op = c.left.name, c.left.obj, c.op
            constant = self._constant(c.right)
            if not (isinstance(subject, ast.Name) and subject.id == var) or _any_version_field(field):
                continue
            if op == "==" and isinstance(constant, str | int):
                out.append((field, frozenset([constant])))
            elif op == "in" and isinstance(constant, tuple) and all(isinstance(v, str | int) for v in constant):
                out.append((field, frozenset(constant)))
            elif constant is not None:
                out.append((field, _admits(op, constant)))
        return out

    def _constant(self, e: ast.Expr) -> object:
        """The value of a literal, a list of literals or a `let` constant; None for anything else."""
        if isinstance(e, ast.Literal):
            return e.value
        if isinstance(e, ast.ListExpr) and all(isinstance(x, ast.Literal) for x in e.items):
            return tuple(x.value for x in e.items)  # type: ignore[attr-defined]
        if isinstance(e, ast.Name) and e.id in self.lets:
            return self.lets[e.id]
        return None

    def _collection(self, e: ast.Quantifier | ast.Count, env: Env) -> Any:
        """The collection a quantifier ranges over: items, or Undecided."""
        coll = self.value(e.collection)(env)
        if isinstance(coll, Unknown):
            return Undecided((coll.reason,))
        if coll is None:
            return Undecided((f"{describe(e.collection)} is absent",))
        return coll

    def _compile_quantifier(self, e: ast.Quantifier) -> TruthFn:
        keep = self.truth(e.filter) if e.filter is not None else None
        body, var, kind = self.truth(e.body), e.var, e.kind
        narrowing = self._narrowing(e)
        # the value that decides at once: a miss for `all`, a hit for `any` and `none`
        decisive, verdict = (False, False) if kind == "all" else (True, kind == "any")

        def quantifier(env: Env) -> Truth:
            coll = self._collection(e, env)
            if isinstance(coll, Undecided):
                return coll
            if narrowing and isinstance(coll, Items):
                coll = _narrowed(coll, narrowing)
            scratch = dict(env)
            reasons: list[str] = []
            undecided = False
            sink = self._sinks.get(id(e)) if self._sinks else None  # explaining: every deciding item, not the first
            for item in coll:
                scratch[var] = item
                if keep is not None:
                    kept = keep(scratch)
                    if kept is not True:
                        if kept is not False:
                            undecided = True
                            reasons.extend(kept.reasons)
                        continue
                t = body(scratch)
                if t is decisive:
                    if sink is None:
                        return verdict
                    sink.append(dict(scratch))
                elif t is not (not decisive):
                    undecided = True
                    reasons.extend(t.reasons)  # type: ignore[union-attr]
            if sink:
                return verdict
            return Undecided(tuple(reasons)) if undecided else kind != "any"

        return quantifier

    # -- compiled values ---------------------------------------------------------------------
    def value(self, e: ast.Expr) -> ValueFn:
        """The compiled value of an expression: a plain value, an Unknown, or None for an absent key."""
        fn = self._values.get(id(e))
        if fn is None:
            fn = self._values[id(e)] = self._compile_value(e)
        return fn

    def _compile_value(self, e: ast.Expr) -> ValueFn:
        table: dict[type, Callable[[Any], ValueFn]] = {
            ast.Literal: self._literal,
            ast.ListExpr: self._list,
            ast.Name: self._name,
            ast.Attr: self._attr,
            ast.Index: self._index,
            ast.Call: self._call,
            ast.Concat: self._concat,
            ast.Count: self._count,
        }
        compile_ = table.get(type(e))
        if compile_ is not None:
            return compile_(e)
        truth = self.truth(e)  # a condition used as a value

        def as_value(env: Env) -> Any:
            t = truth(env)
            return Unknown("; ".join(t.reasons)) if isinstance(t, Undecided) else t

        return as_value

    def _literal(self, e: ast.Literal) -> ValueFn:
        constant = e.value
        return lambda env: constant

    def _list(self, e: ast.ListExpr) -> ValueFn:
        items = [self.value(x) for x in e.items]

        def listed(env: Env) -> Any:
            values = tuple(item(env) for item in items)
            return next((v for v in values if isinstance(v, Unknown)), values)

        return listed

    def _name(self, e: ast.Name) -> ValueFn:
        name, globals_, prefix = e.id, self.globals, e.id + ":"

        def lookup(env: Env) -> Any:
            found = env[name] if name in env else globals_[name]
            if isinstance(found, Unknown) and not found.reason.startswith(prefix):
                return Unknown(f"{prefix} {found.reason}", found.where)
            return found

        return lookup

    def _attr(self, e: ast.Attr) -> ValueFn:
        obj, attr = self.value(e.obj), e.name
        is_version: dict[type, bool] = {}

        def attribute(env: Env) -> Any:
            rec = obj(env)
            if rec is None or isinstance(rec, Unknown):
                return rec
            value = getattr(rec, attr)
            if isinstance(value, str):
                version = is_version.get(type(rec))
                if version is None:
                    version = is_version[type(rec)] = attr in _version_fields(type(rec))
                return VersionStr(value) if version else value
            if isinstance(value, Unknown):
                loc = rec.located(attr) if isinstance(rec, Record) else None
                return Unknown(f"{describe(e)}: {value.reason}", value.where or loc)
            return value

        return attribute

    def _index(self, e: ast.Index) -> ValueFn:
        obj, key = self.value(e.obj), self.value(e.key)

        def indexed(env: Env) -> Any:
            found, _ = self._lookup_index(e, obj(env), key(env))
            return found

        return indexed

    def _lookup_index(self, e: ast.Index, coll: Any, key: Any) -> tuple[Any, Any]:
        """The indexed value, and the item it came from (whose place it has), or None for the collection's."""
        for v in (coll, key):
            if isinstance(v, Unknown):
                return v, None
        if coll is None:
            return None, None
        if isinstance(key, int) and not isinstance(key, bool):
            items = list(coll)
            if not -len(items) <= key < len(items):
                return None, None
            return items[key], items[key]
        match = None
        for item in coll:
            if isinstance(item, Record) and getattr(item, type(item).KEY or "", None) == key:
                match = item  # the last one wins, as for repeated kernel parameters
        if match is None:
            return None, None
        yields = type(match).INDEX_YIELDS
        if yields is None:
            return match, match
        value = getattr(match, yields)
        if isinstance(value, Unknown):
            return Unknown(f"{describe(e)}: {value.reason}", value.where), match
        return value, match

    def _call(self, e: ast.Call) -> ValueFn:
        obj, args, method = self.value(e.obj), [self.value(a) for a in e.args], e.method

        def called(env: Env) -> Any:
            target, argv = obj(env), [a(env) for a in args]
            for v in (target, *argv):
                if isinstance(v, Unknown):
                    return v
            if target is None or any(a is None for a in argv):
                return None
            result = _call_method(target, method, argv)
            if isinstance(result, Unknown):
                return Unknown(f"{describe(e)}: {result.reason}", result.where)
            return result

        return called

    def _concat(self, e: ast.Concat) -> ValueFn:
        parts = [self.value(x) for x in e.items]

        def concatenated(env: Env) -> Any:
            values = [p(env) for p in parts]
            for v in values:
                if isinstance(v, Unknown):
                    return v
            values = [tuple(v) if isinstance(v, Items) else v for v in values]
            total = values[0]
            for v in values[1:]:
                total = total + v
            return total

        return concatenated

    def _count(self, e: ast.Count) -> ValueFn:
        keep, var = (self.truth(e.filter) if e.filter is not None else None), e.var

        def counted(env: Env) -> Any:
            coll = self.value(e.collection)(env)
            if isinstance(coll, Unknown):
                return coll
            total, reasons, scratch = 0, list[str](), dict(env)
            for item in coll:
                scratch[var] = item
                kept = keep(scratch) if keep is not None else True
                if isinstance(kept, Undecided):
                    reasons.extend(kept.reasons)
                elif kept:
                    total += 1
            return Unknown("count is unknown: " + _join_reasons(reasons)) if reasons else total

        return counted

    # -- explanation: the cases that decided a verdict, and where they were read --------------
    def cases(self, e: ast.Expr, env: Env, wheres: Wheres, truth: bool) -> tuple[Case, ...]:
        """The cases behind `e` being `truth` in `env`: for a failed `all`, every item where the body is false."""
        if isinstance(e, ast.Not):
            return self.cases(e.operand, env, wheres, not truth)
        if isinstance(e, ast.BoolOp):
            decisive = e.op == "or"  # a true operand decides `or`, a false one `and`: those are the cases
            truths = [self.truth(x)(env) for x in e.operands]
            picked = [(x, t) for x, t in zip(e.operands, truths, strict=True) if t is decisive or truth is not decisive]
            return tuple(c for x, t in picked if isinstance(t, bool) for c in self.cases(x, env, wheres, t))
        if isinstance(e, ast.Quantifier):
            return self._quantifier_cases(e, env, wheres, truth)
        return (Case(_bind(env, wheres), self.places(e, env, wheres)),)

    def decide(self, e: ast.Expr) -> tuple[Truth, tuple[Case, ...]]:
        """A requirement's truth and, when false, its cases; a quantifier at the top is walked once for both."""
        if not isinstance(e, ast.Quantifier):
            truth = self.truth(e)({})
            return truth, self.cases(e, {}, {}, False) if truth is False else ()
        deciding: list[Env] = []
        self._sinks[id(e)] = deciding
        try:
            truth = self.truth(e)({})
        finally:
            del self._sinks[id(e)]
        if truth is not False:
            return truth, ()
        return truth, self._quantifier_cases(e, {}, {}, False, deciding)

    def _quantifier_cases(
        self, e: ast.Quantifier, env: Env, wheres: Wheres, truth: bool, deciding: list[Env] | None = None
    ) -> tuple[Case, ...]:
        coll = self._collection(e, env)
        coll_where = self.places(e.collection, env, wheres)
        if truth is (e.kind != "any"):  # a true `all`/`none`, a false `any`: the collection as a whole
            looked_at = self._looked_at(e, coll, env, wheres, coll_where) if e.kind == "any" else ()
            return (Case(_bind(env, wheres), _merge(coll_where, looked_at)),)
        # a false `all` because of its misses; a true `any` or a false `none` because of its hits
        wanted = e.kind != "all"
        found: list[Case] = []
        if deciding is not None:  # the items the truth walk collected
            items = [(inner, {**wheres, e.var: _where_of(inner[e.var]) or coll_where}) for inner in deciding]
        else:
            items = [
                (inner, dict(where)) for inner, where in self._items_where(e, coll, env, wheres, coll_where, wanted)
            ]
        for inner, inner_wheres in items:
            found.extend(
                self.cases(e.body, inner, inner_wheres, wanted)
                or (Case(_bind(inner, inner_wheres), inner_wheres[e.var]),)
            )
        return tuple(found)

    def _items_where(
        self, e: ast.Quantifier, coll: Any, env: Env, wheres: Wheres, coll_where: tuple[Provenance, ...], wanted: bool
    ) -> Iterator[tuple[Env, Wheres]]:
        """The items a quantifier keeps whose body is `wanted`, each with its environment."""
        keep, body = (self.truth(e.filter) if e.filter is not None else None), self.truth(e.body)
        for item in coll:
            inner = {**env, e.var: item}
            if (keep is None or keep(inner) is True) and body(inner) is wanted:
                yield inner, {**wheres, e.var: _where_of(item) or coll_where}

    def _looked_at(
        self, e: ast.Quantifier, coll: Any, env: Env, wheres: Wheres, coll_where: tuple[Provenance, ...]
    ) -> tuple[Provenance, ...]:
        """For a failed `any`: what its body read besides the first item it looked at (`cmdline["ro"]`'s line)."""
        for inner, inner_wheres in self._items_where(e, coll, env, wheres, coll_where, False):
            own = set(inner_wheres[e.var])
            return tuple(w for c in self.cases(e.body, inner, inner_wheres, False) for w in c.where if w not in own)
        return ()

    def places(self, e: ast.Expr, env: Env, wheres: Wheres) -> tuple[Provenance, ...]:
        """Where the value of `e` was read, for one binding of its variables."""
        if isinstance(e, ast.Literal):
            return ()
        if isinstance(e, ast.Name):
            return wheres[e.id] if e.id in env else self.global_wheres.get(e.id, ())
        if isinstance(e, ast.Attr):
            rec = self.value(e.obj)(env)
            value = self.value(e)(env)
            if isinstance(value, Items) and value.where is not None:
                return (value.where,)
            loc = rec.located(e.name) if isinstance(rec, Record) else None
            return (loc,) if loc is not None else self.places(e.obj, env, wheres)
        if isinstance(e, ast.Index):
            _, item = self._lookup_index(e, self.value(e.obj)(env), self.value(e.key)(env))
            return _where_of(item) or self.places(e.obj, env, wheres)
        if isinstance(e, ast.Call):
            return self.places(e.obj, env, wheres)
        if isinstance(e, ast.ListExpr | ast.Concat):
            return _merge(*(self.places(x, env, wheres) for x in e.items))
        if isinstance(e, ast.Count):
            return self._count_places(e, env, wheres)
        if isinstance(e, ast.Compare):
            return _merge(self.places(e.left, env, wheres), self.places(e.right, env, wheres))
        truth = self.truth(e)(env)
        return _merge(*(c.where for c in self.cases(e, env, wheres, truth))) if isinstance(truth, bool) else ()

    def _count_places(self, e: ast.Count, env: Env, wheres: Wheres) -> tuple[Provenance, ...]:
        coll = self.value(e.collection)(env)
        keep = self.truth(e.filter) if e.filter is not None else None
        counted: list[Provenance] = []
        for item in coll if not isinstance(coll, Unknown) else ():
            if keep is None or keep({**env, e.var: item}) is True:
                counted.extend(_where_of(item))
                if len(counted) >= 50:
                    break
        return tuple(counted) or self.places(e.collection, env, wheres)

    def passed_via(self, e: ast.Expr) -> str:
        """For a requirement that passes through an `or`: which of its operands held."""
        if not isinstance(e, ast.BoolOp) or e.op != "or":
            return ""
        held = [x for x in e.operands if self.truth(x)({}) is True]
        return "passes via " + ", ".join(f"'{describe(x)}'" for x in held)

    # -- messages ---------------------------------------------------------------------------
    def render(self, message: ast.Message, case: Case) -> str:
        """A message with its `{…}` parts filled in from one case's bindings."""
        env = {name: v.value for name, v in case.bindings}
        out = []
        for part in message.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            try:
                out.append(format_value(self.value(part)(env)))
            except KeyError:  # a variable this case does not bind
                out.append("?")
        return "".join(out)


def _conjuncts(e: ast.Expr) -> tuple[ast.Expr, ...]:
    return e.operands if isinstance(e, ast.BoolOp) and e.op == "and" else (e,)


Narrowing = tuple[str, Accept, bool]
"""A condition every deciding item meets: field, the values it admits, and whether it is the body's."""


def _admits(op: str, constant: object) -> Callable[[object], bool]:
    """`value OP constant` is not false: an undecided comparison keeps its items (they count)."""
    return lambda value: compare(op, value, constant) is not False


def _narrowed(coll: Items[Any], narrowing: list[Narrowing]) -> Any:
    """The items every condition admits (through the collection's columns), else all of them. Lookups
    go first, so a test (a regular expression) runs only on the values of the items they left."""
    kept: set[int] | None = None
    filter_undecidable = False
    for field, accept, of_body in sorted(narrowing, key=lambda n: (n[2], not isinstance(n[1], frozenset))):
        if of_body and filter_undecidable:
            break  # an item whose filter is undecided counts, whatever its body says
        found = coll.positions(field, accept, kept)
        if found is None:
            filter_undecidable = filter_undecidable or not of_body
        else:
            kept = found
    return coll if kept is None else coll.take(kept)


def _call_method(target: Any, method: str, argv: list[Any]) -> Any:
    if not isinstance(target, str):
        return getattr(target, method)(*argv)  # a record method the checker allowed (kernel.contains)
    if method == "startswith":
        return target.startswith(argv[0])
    if method == "endswith":
        return target.endswith(argv[0])
    if method == "contains":
        return argv[0] in target
    return target.lower()


def _bind(env: Env, wheres: Wheres) -> tuple[tuple[str, V], ...]:
    return tuple((name, V(value, wheres.get(name, ()))) for name, value in env.items())


def _join_reasons(reasons: Iterable[str]) -> str:
    unique = list(dict.fromkeys(reasons))
    more = len(unique) - MAX_REASONS
    return "; ".join(unique[:MAX_REASONS]) + (f"; and {more} more" if more > 0 else "")


def _ordered(op: str, left: Any, right: Any) -> bool:
    if isinstance(left, VersionStr) or isinstance(right, VersionStr):
        c = version_compare(str(left), str(right))
    else:
        c = (left > right) - (left < right)
    return {"<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0, "==": c == 0, "!=": c != 0}[op]


def _member(left: Any, right: Any) -> bool | Unknown:
    if isinstance(right, Allowlist):
        if isinstance(left, Record):
            return right.permits(getattr(left, "name"), getattr(left, "version", None))  # noqa: B009
        return right.permits(str(left), check_version=False)
    if isinstance(right, str):
        return str(left) in right
    for item in right:
        if isinstance(item, Record) and not isinstance(left, Record):
            if getattr(item, type(item).KEY or "", None) == left:
                return True
        elif item == left:
            return True
    return False


def compare(op: str, left: Any, right: Any) -> bool | Unknown:
    """Apply a comparison operator; none (an absent key) equals only none and orders before nothing."""
    if op in ("in", "not in"):
        if left is None or right is None:
            return op == "not in"
        found = _member(left, right)
        if isinstance(found, Unknown):
            return found
        return found if op == "in" else not found
    if left is None or right is None:
        return {"==": left is right, "!=": left is not right}.get(op, False)
    if op in ("matches", "glob"):
        try:
            pattern = regex.regex(right) if op == "matches" else regex.glob(right)
        except regex.PatternError as err:
            return Unknown(f"'{right}' is not a usable pattern: {err}")
        text = _searchable(left)
        found = pattern.search(text) if op == "matches" else pattern.fullmatch(text)
        return found is not None
    if op in ("==", "!=") and not (isinstance(left, VersionStr) or isinstance(right, VersionStr)):
        return bool(left == right) == (op == "==")
    return _ordered(op, left, right)


def _searchable(text: Any) -> Any:
    """Text RE2 can search: a name an image chose that is not UTF-8 (carried with surrogate escapes) has
    each bad byte as U+FFFD, which no pattern's own characters match."""
    if not isinstance(text, str):
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def _primary(case: Case) -> tuple[Provenance | None, str | None]:
    """The place a finding is about, and its subject.

    The place is what the failing expression read first (the `roothash=` parameter's line), else
    the innermost bound record; the subject is that record's key (package name, file path).
    """
    subject, record_where = None, None
    for _, v in reversed(case.bindings):
        if isinstance(v.value, Record):
            key = type(v.value).KEY
            subject = str(getattr(v.value, key)) if key else None
            record_where = v.value.where or (v.where[0] if v.where else None)
            break
    return (case.where[0] if case.where else record_where), subject


def evaluate_rule(ev: Evaluator, rule: ast.Rule, target: str, disabled: str | None = None) -> RuleResult:
    """One rule's verdict on one target."""

    def result(status: Status, **kwargs: Any) -> RuleResult:
        return RuleResult(rule.id, rule.title, rule.severity, status, references=rule.references, **kwargs)

    if disabled:
        return result(Status.SKIPPED, reasons=(disabled,))
    if target not in rule.targets:
        return result(Status.SKIPPED, reasons=(f"applies to {' and '.join(rule.targets)} only",))
    findings: list[Finding] = []
    reasons: list[str] = []
    notes: list[str] = []
    for req in rule.requirements_for(target):
        try:
            truth, cases = ev.decide(req.expr)
            if isinstance(truth, Undecided):
                reasons.extend(truth.reasons)
            elif truth is False:
                findings.extend(_findings(ev, req, cases))
            elif note := ev.passed_via(req.expr):
                notes.append(note)
        except InputError as err:  # a lazily read fact (a directory walk) met malformed input or a limit
            reasons.append(f"the input could not be read: {err}")  # the other requirements still decide
        except CvmlintError:
            raise
        except Exception as err:  # a policy bug, not bad input: report it on the rule, exit 2
            return result(Status.ERROR, reasons=(f"{type(err).__name__}: {err}",))
    if findings:
        return result(Status.FAIL, findings=tuple(findings))
    if reasons:
        return result(Status.UNKNOWN, reasons=tuple(dict.fromkeys(reasons)))
    return result(Status.PASS, note="; ".join(notes))


def _findings(ev: Evaluator, req: ast.Require, cases: tuple[Case, ...]) -> list[Finding]:
    """One finding per message and place, and per message and offending item (the item the requirement's
    outermost quantifier is about): an item that fails two parts of a condition, or fails for several inner
    items, is one finding with the places of each."""
    found: list[Finding] = []
    index: dict[tuple[str, object], int] = {}
    for case in cases or (Case((), ()),):
        where, subject = _primary(case)
        if req.message is not None:
            message = ev.render(req.message, case)
        else:
            bound = ", ".join(f"{n} = {format_value(v.value)}" for n, v in case.bindings)
            message = f"requirement not met: {req.text}" + (f" ({bound})" if bound else "")
        record = next((v.value for _, v in case.bindings if isinstance(v.value, Record)), None)  # the outermost
        keys = [(message, ("place", where))] + ([(message, ("item", id(record)))] if record is not None else [])
        at = next((index[k] for k in keys if k in index), None)
        if at is None:
            at = len(found)
            found.append(Finding(message, where, subject, tuple(w for w in case.where if w != where)))
        else:
            found[at] = _fold(found[at], where, case.where)
        index.update(dict.fromkeys(keys, at))
    return found


def _fold(earlier: Finding, where: Provenance | None, read: tuple[Provenance, ...]) -> Finding:
    """A finding with another case's places added; the first place named stays the primary one."""
    primary = earlier.where or where
    also = _merge(earlier.also, (w for w in (earlier.where, where, *read) if w is not None and w != primary))
    return Finding(earlier.message, primary, earlier.subject, also)


def evaluate(
    policy: Policy,
    facts: Facts,
    rules: Iterable[str] | None = None,
    later: Mapping[str, Callable[[], Any]] | None = None,
) -> Report:
    """Every rule of `policy` (or only `rules`) on `facts`.

    `later` names facts still being computed (a scan's root hash and kernel), each with the call that
    waits for it: the rules that read none of them are judged first, then each is waited for in turn.
    The report lists the rules in the policy's order either way.
    """
    ev = Evaluator(policy, facts)
    wanted = set(rules) if rules is not None else None
    selected = [r for r in policy.rules if wanted is None or r.id in wanted]
    pending = dict(later or {})
    reads = {id(rule): _pending_reads(rule, pending) for rule in selected}
    verdicts: dict[int, RuleResult] = {}
    while True:
        for rule in selected:
            if id(rule) not in verdicts and not reads[id(rule)] & pending.keys():
                verdicts[id(rule)] = evaluate_rule(ev, rule, facts.target.kind, policy.disabled.get(rule.id))
        wanted = set().union(*(reads[id(rule)] for rule in selected if id(rule) not in verdicts))
        name = next((n for n in pending if n in wanted), None)
        if name is None:  # a pending fact no rule reads is never waited for
            break
        ev.define(name, pending.pop(name)())
    report = Report(policy.name, policy.version, policy.sha256, policy.profiles, facts.target)
    report.results.extend(verdicts[id(rule)] for rule in selected)
    report.rules = tuple(rule_info(rule) for rule in selected)
    return report


def rule_info(rule: ast.Rule) -> RuleInfo:
    """A rule's text and severity, as a report carries them."""
    return RuleInfo(rule.id, rule.title, rule.severity, rule.rationale, rule.remediation, tuple(rule.references))


def _pending_reads(rule: ast.Rule, pending: Mapping[str, object]) -> set[str]:
    """The pending facts a rule names anywhere (its requirements and their messages)."""
    if not pending:
        return set()
    exprs = [e for req in (*rule.requires, *(r for b in rule.branches.values() for r in b)) for e in _req_exprs(req)]
    return {n.id for e in exprs for n in walk_expr(e) if isinstance(n, ast.Name) and n.id in pending}


def _req_exprs(req: ast.Require) -> list[ast.Expr]:
    return [req.expr, *(p for p in (req.message.parts if req.message else ()) if isinstance(p, ast.Expr))]
