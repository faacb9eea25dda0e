"""Evaluate a checked policy over facts with three-valued (Kleene) logic.

Truth values are True, False and None (unknown). `false and unknown` is false, `true or unknown`
is true; anything read from an Unknown fact is unknown and carries the reason. A failing
quantifier reports every offending item with its provenance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from cvmlint.errors import CvmlintError, InputError
from cvmlint.facts.model import Facts, Record
from cvmlint.facts.provenance import Items, Provenance, Unknown
from cvmlint.policy import ast
from cvmlint.policy.allowlist import Allowlist, version_compare
from cvmlint.policy.checker import describe
from cvmlint.policy.loader import Policy
from cvmlint.policy.results import Finding, Report, RuleResult, Status
from cvmlint.policy.types import VERSION, record_fields

MAX_REASONS = 12


class VersionStr(str):
    """A package version read from a fact: compared with dpkg's ordering."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class V:
    """A value with the places it was read from."""

    value: Any
    where: tuple[Provenance, ...] = ()


@dataclass(frozen=True, slots=True)
class Case:
    """One concrete instance behind an outcome: the bound variables and the places read."""

    bindings: tuple[tuple[str, V], ...]
    where: tuple[Provenance, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A truth value (True, False, None = unknown) with its cases or its reasons."""

    truth: bool | None
    cases: tuple[Case, ...] = ()
    reasons: tuple[str, ...] = ()
    note: str = ""


_VERSION_FIELDS: dict[type, frozenset[str]] = {}


def _version_fields(cls: type) -> frozenset[str]:
    if cls not in _VERSION_FIELDS:
        _VERSION_FIELDS[cls] = frozenset(n for n, f in record_fields(cls).items() if f.ty.required() == VERSION)
    return _VERSION_FIELDS[cls]


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


class Evaluator:
    """Evaluates expressions of one policy over one fact set."""

    def __init__(self, policy: Policy, facts: Facts) -> None:
        self.globals: dict[str, V] = {}
        for f in fields(Facts):
            value = getattr(facts, f.name)
            self.globals[f.name] = V(value, _where_of(value))
        for name, const in policy.lets.items():
            self.globals[name] = V(const)
        for name, allow in policy.uses.items():
            self.globals[name] = V(allow)
        self._dispatch: dict[type, Callable[[Any, Mapping[str, V]], V]] = {
            ast.Literal: self._v_literal, ast.ListExpr: self._v_listexpr, ast.Name: self._v_name,
            ast.Attr: self._v_attr, ast.Index: self._v_index, ast.Call: self._v_call, ast.Concat: self._v_concat,
            ast.Count: self._v_count,
        }
        self._tests: dict[int, Callable[[Mapping[str, V]], bool | None]] = {}

    # -- values -----------------------------------------------------------------------------
    def value(self, e: ast.Expr, env: Mapping[str, V]) -> V:
        """The value of an expression (possibly an Unknown, or None for an absent key)."""
        method = self._dispatch.get(type(e))
        if method is None:
            out = self.truth(e, env)
            if out.truth is None:
                return V(Unknown("; ".join(out.reasons)))
            return V(out.truth, _merge(*(c.where for c in out.cases)))
        result: V = method(e, env)
        return result

    def _v_literal(self, e: ast.Literal, env: Mapping[str, V]) -> V:
        return V(e.value)

    def _v_listexpr(self, e: ast.ListExpr, env: Mapping[str, V]) -> V:
        items = [self.value(x, env) for x in e.items]
        for item in items:
            if isinstance(item.value, Unknown):
                return item
        return V(tuple(i.value for i in items), _merge(*(i.where for i in items)))

    def _v_name(self, e: ast.Name, env: Mapping[str, V]) -> V:
        found = env.get(e.id) or self.globals[e.id]
        if isinstance(found.value, Unknown) and not found.value.reason.startswith(e.id + ":"):
            return V(Unknown(f"{e.id}: {found.value.reason}", found.value.where), found.where)
        return found

    def _v_attr(self, e: ast.Attr, env: Mapping[str, V]) -> V:
        obj = self.value(e.obj, env)
        rec = obj.value
        if isinstance(rec, Unknown) or rec is None:
            return obj
        value = getattr(rec, e.name)
        loc = rec.located(e.name) if isinstance(rec, Record) else None
        where = (loc,) if loc is not None else obj.where
        if isinstance(value, Unknown):
            return V(Unknown(f"{describe(e)}: {value.reason}", value.where or loc), where)
        if isinstance(value, str) and e.name in _version_fields(type(rec)):
            value = VersionStr(value)
        if isinstance(value, Items) and value.where is not None:
            where = (value.where,)
        return V(value, where)

    def _v_index(self, e: ast.Index, env: Mapping[str, V]) -> V:
        obj, key = self.value(e.obj, env), self.value(e.key, env)
        for v in (obj, key):
            if isinstance(v.value, Unknown):
                return v
        if obj.value is None:
            return obj
        if isinstance(key.value, int) and not isinstance(key.value, bool):
            items = list(obj.value)
            try:
                item = items[key.value]
            except IndexError:
                return V(None, obj.where)
            return V(item, _where_of(item) or obj.where)
        match = None
        for item in obj.value:
            if isinstance(item, Record) and getattr(item, type(item).KEY or "", None) == key.value:
                match = item  # the last one wins, as for repeated kernel parameters
        if match is None:
            return V(None, obj.where)
        yields = type(match).INDEX_YIELDS
        where = _where_of(match) or obj.where
        if yields is None:
            return V(match, where)
        value = getattr(match, yields)
        if isinstance(value, Unknown):
            return V(Unknown(f"{describe(e)}: {value.reason}", value.where), where)
        return V(value, where)

    def _v_call(self, e: ast.Call, env: Mapping[str, V]) -> V:
        obj = self.value(e.obj, env)
        args = [self.value(a, env) for a in e.args]
        for v in (obj, *args):
            if isinstance(v.value, Unknown):
                return v
        if obj.value is None or any(a.value is None for a in args):
            return V(None, obj.where)
        result = _call_method(obj.value, e.method, [a.value for a in args])
        if isinstance(result, Unknown):
            return V(Unknown(f"{describe(e)}: {result.reason}", result.where), obj.where)
        return V(result, obj.where)

    def _v_concat(self, e: ast.Concat, env: Mapping[str, V]) -> V:
        parts = [self.value(x, env) for x in e.items]
        for p in parts:
            if isinstance(p.value, Unknown):
                return p
        values = [tuple(p.value) if isinstance(p.value, Items) else p.value for p in parts]
        total = values[0]
        for v in values[1:]:
            total = total + v
        return V(total, _merge(*(p.where for p in parts)))

    def _v_count(self, e: ast.Count, env: Mapping[str, V]) -> V:
        coll = self.value(e.collection, env)
        if isinstance(coll.value, Unknown):
            return coll
        total = 0
        reasons: list[str] = []
        where: list[Provenance] = []
        for item in coll.value:
            if e.filter is not None:
                inner = {**env, e.var: V(item, _where_of(item) or coll.where)}
                kept = self.test(e.filter, inner)
                if kept is None:
                    reasons.extend(self.truth(e.filter, inner).reasons)
                if not kept:
                    continue
            total += 1
            where.extend(_where_of(item))
        if reasons:
            return V(Unknown("count is unknown: " + _join_reasons(reasons)), coll.where)
        return V(total, tuple(where[:50]) or coll.where)

    # -- truth ------------------------------------------------------------------------------
    def truth(self, e: ast.Expr, env: Mapping[str, V]) -> Outcome:
        """The truth of a condition, with the cases that decided it."""
        if isinstance(e, ast.Compare):
            return self._compare(e, env)
        if isinstance(e, ast.BoolOp):
            return self._and(e, env) if e.op == "and" else self._or(e, env)
        if isinstance(e, ast.Not):
            inner = self.truth(e.operand, env)
            return Outcome(None if inner.truth is None else not inner.truth, inner.cases, inner.reasons)
        if isinstance(e, ast.Quantifier):
            return self._quantifier(e, env)
        v = self.value(e, env)
        if isinstance(v.value, Unknown):
            return Outcome(None, reasons=(v.value.reason,))
        return Outcome(bool(v.value) if v.value is not None else False, (Case(_bind(env), v.where),))

    def test(self, e: ast.Expr, env: Mapping[str, V]) -> bool | None:
        """Just the truth of a condition (None = unknown), short-circuiting: for `where` filters."""
        return self._test_fn(e)(env)

    def _test_fn(self, e: ast.Expr) -> Callable[[Mapping[str, V]], bool | None]:
        fn = self._tests.get(id(e))
        if fn is None:
            fn = self._tests[id(e)] = self._compile_test(e)
        return fn

    def _compile_test(self, e: ast.Expr) -> Callable[[Mapping[str, V]], bool | None]:
        """A closure deciding `e` from an environment: the quantifier loops run it once per item."""
        if isinstance(e, ast.BoolOp):
            parts = [self._compile_test(x) for x in e.operands]
            stop = e.op == "or"

            def boolop(env: Mapping[str, V]) -> bool | None:
                unknown = False
                for part in parts:
                    t = part(env)
                    if t is stop:
                        return stop
                    unknown = unknown or t is None
                return None if unknown else not stop
            return boolop
        if isinstance(e, ast.Not):
            inner = self._compile_test(e.operand)

            def negation(env: Mapping[str, V]) -> bool | None:
                t = inner(env)
                return None if t is None else not t
            return negation
        if isinstance(e, ast.Compare):
            left, right, op = self._compile_raw(e.left), self._compile_raw(e.right), e.op

            def comparison(env: Mapping[str, V]) -> bool | None:
                a, b = left(env), right(env)
                if isinstance(a, Unknown) or isinstance(b, Unknown):
                    return None
                result = compare(op, a, b)
                return None if isinstance(result, Unknown) else result
            return comparison
        if isinstance(e, ast.Quantifier):
            quantifier = e
            return lambda env: self._test_quantifier(quantifier, env)
        if isinstance(e, ast.Attr | ast.Name | ast.Literal):  # a bare flag: `f.setuid`
            raw = self._compile_raw(e)

            def flag(env: Mapping[str, V]) -> bool | None:
                value = raw(env)
                return None if isinstance(value, Unknown) else bool(value)
            return flag
        return lambda env: self.truth(e, env).truth

    def _compile_raw(self, e: ast.Expr) -> Callable[[Mapping[str, V]], Any]:
        """A closure giving just the value of `e` (no provenance)."""
        if isinstance(e, ast.Literal):
            constant = e.value
            return lambda env: constant
        if isinstance(e, ast.Name):
            name, globals_ = e.id, self.globals

            def lookup(env: Mapping[str, V]) -> Any:
                found = env.get(name)
                return (found if found is not None else globals_[name]).value
            return lookup
        if isinstance(e, ast.Attr):
            obj, attr = self._compile_raw(e.obj), e.name

            def attribute(env: Mapping[str, V]) -> Any:
                rec = obj(env)
                if rec is None or isinstance(rec, Unknown):
                    return rec
                value = getattr(rec, attr)
                if isinstance(value, str) and attr in _version_fields(type(rec)):
                    return VersionStr(value)
                return value
            return attribute
        return lambda env: self.value(e, env).value

    def _test_quantifier(self, e: ast.Quantifier, env: Mapping[str, V]) -> bool | None:
        coll = self.value(e.collection, env)
        if isinstance(coll.value, Unknown) or coll.value is None:
            return None
        unknown = False
        for item in coll.value:
            inner = {**env, e.var: V(item, _where_of(item) or coll.where)}
            if e.filter is not None:
                kept = self.test(e.filter, inner)
                if kept is None:
                    unknown = True
                if not kept:
                    continue
            t = self.test(e.body, inner)
            if t is None:
                unknown = True
            elif e.kind == "all" and not t:
                return False  # a miss decides all
            elif e.kind != "all" and t:
                return e.kind == "any"  # a hit decides any (true) and none (false)
        if unknown:
            return None
        return e.kind in ("all", "none")

    def _compare(self, e: ast.Compare, env: Mapping[str, V]) -> Outcome:
        left, right = self.value(e.left, env), self.value(e.right, env)
        reasons = tuple(v.value.reason for v in (left, right) if isinstance(v.value, Unknown))
        if reasons:
            return Outcome(None, reasons=reasons)
        result = compare(e.op, left.value, right.value)
        if isinstance(result, Unknown):
            return Outcome(None, reasons=(result.reason,))
        return Outcome(result, (Case(_bind(env), _merge(left.where, right.where)),))

    def _and(self, e: ast.BoolOp, env: Mapping[str, V]) -> Outcome:
        outs = [self.truth(x, env) for x in e.operands]
        false = [o for o in outs if o.truth is False]
        if false:
            return Outcome(False, tuple(c for o in false for c in o.cases))
        unknown = [o for o in outs if o.truth is None]
        if unknown:
            return Outcome(None, reasons=tuple(r for o in unknown for r in o.reasons))
        return Outcome(True, tuple(c for o in outs for c in o.cases))

    def _or(self, e: ast.BoolOp, env: Mapping[str, V]) -> Outcome:
        outs = [self.truth(x, env) for x in e.operands]
        passing = [i for i, o in enumerate(outs) if o.truth is True]
        if passing:
            which = ", ".join(f"'{describe(e.operands[i])}'" for i in passing)
            return Outcome(True, tuple(c for i in passing for c in outs[i].cases), note=f"passes via {which}")
        unknown = [o for o in outs if o.truth is None]
        if unknown:
            return Outcome(None, reasons=tuple(r for o in unknown for r in o.reasons))
        return Outcome(False, tuple(c for o in outs for c in o.cases))

    def _quantifier(self, e: ast.Quantifier, env: Mapping[str, V]) -> Outcome:
        coll = self.value(e.collection, env)
        if isinstance(coll.value, Unknown):
            return Outcome(None, reasons=(coll.value.reason,))
        if coll.value is None:
            return Outcome(None, reasons=(f"{describe(e.collection)} is absent",))
        hits: list[Case] = []   # items where the body holds
        misses: list[Case] = []  # items where it does not
        reasons: list[str] = []
        looked_at: tuple[Provenance, ...] = ()  # what a failing `any` read besides its items
        keep, body = self._test_fn(e.filter) if e.filter is not None else None, self._test_fn(e.body)
        scratch = dict(env)  # the item without its provenance: enough to decide (see `test`)
        for item in coll.value:
            scratch[e.var] = V(item)
            kept = keep(scratch) if keep is not None else True
            if kept is False:
                continue
            inner = {**env, e.var: V(item, _where_of(item) or coll.where)}
            if kept is None:
                reasons.extend(self.truth(e.filter, inner).reasons)  # type: ignore[arg-type]
                continue
            quick = body(scratch)  # the full outcome (with cases) only where it matters
            if quick is None:
                reasons.extend(self.truth(e.body, inner).reasons)
            elif quick and e.kind != "all":
                out = self.truth(e.body, inner)
                hits.extend(out.cases or (Case(_bind(inner), inner[e.var].where),))
            elif quick:
                hits.append(Case((), ()))
            elif e.kind == "all":
                out = self.truth(e.body, inner)
                misses.extend(out.cases or (Case(_bind(inner), inner[e.var].where),))
            else:
                if not misses and e.kind == "any":
                    own = set(inner[e.var].where)
                    looked_at = tuple(w for c in self.truth(e.body, inner).cases for w in c.where if w not in own)
                misses.append(Case((), ()))
        here = (Case(_bind(env), coll.where),)
        if e.kind == "all":
            if misses:
                return Outcome(False, tuple(misses))
            return Outcome(None, reasons=tuple(reasons)) if reasons else Outcome(True, here)
        if e.kind == "any":
            if hits:
                return Outcome(True, tuple(hits))
            if reasons:
                return Outcome(None, reasons=tuple(reasons))
            return Outcome(False, (Case(_bind(env), _merge(coll.where, looked_at)),))
        if hits:  # none
            return Outcome(False, tuple(hits))
        return Outcome(None, reasons=tuple(reasons)) if reasons else Outcome(True, here)

    # -- messages ---------------------------------------------------------------------------
    def render(self, message: ast.Message, case: Case) -> str:
        """A message with its `{…}` parts filled in from one case's bindings."""
        env = dict(case.bindings)
        out = []
        for part in message.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            try:
                out.append(format_value(self.value(part, env).value))
            except KeyError:  # a variable this case does not bind
                out.append("?")
        return "".join(out)


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


def _bind(env: Mapping[str, V]) -> tuple[tuple[str, V], ...]:
    return tuple(env.items())


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
        from cvmlint.policy import regex

        try:
            pattern = regex.regex(right) if op == "matches" else regex.glob(right)
        except regex.PatternError as err:
            return Unknown(f"'{right}' is not a usable pattern: {err}")
        found = pattern.search(left) if op == "matches" else pattern.fullmatch(left)
        return found is not None
    if op in ("==", "!=") and not (isinstance(left, VersionStr) or isinstance(right, VersionStr)):
        return bool(left == right) == (op == "==")
    return _ordered(op, left, right)


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
    try:
        for req in rule.requirements_for(target):
            out = ev.truth(req.expr, {})
            if out.truth is None:
                reasons.extend(out.reasons)
            elif out.truth is False:
                findings.extend(_findings(ev, req, out))
            elif out.note:
                notes.append(out.note)
    except InputError as err:  # a lazily read fact (a directory walk) met malformed input or a limit
        return result(Status.UNKNOWN, reasons=(*dict.fromkeys(reasons), f"the input could not be read: {err}"))
    except CvmlintError:
        raise
    except Exception as err:  # a policy bug, not bad input: report it on the rule, exit 2
        return result(Status.ERROR, reasons=(f"{type(err).__name__}: {err}",))
    if findings:
        return result(Status.FAIL, findings=tuple(findings))
    if reasons:
        return result(Status.UNKNOWN, reasons=tuple(dict.fromkeys(reasons)))
    return result(Status.PASS, note="; ".join(notes))


def _findings(ev: Evaluator, req: ast.Require, out: Outcome) -> list[Finding]:
    found: dict[tuple[str, Provenance | None], Finding] = {}
    for case in out.cases or (Case((), ()),):
        where, subject = _primary(case)
        if req.message is not None:
            message = ev.render(req.message, case)
        else:
            bound = ", ".join(f"{n} = {format_value(v.value)}" for n, v in case.bindings)
            message = f"requirement not met: {req.text}" + (f" ({bound})" if bound else "")
        also = tuple(w for w in case.where if w != where)
        found.setdefault((message, where), Finding(message, where, subject, also))
    return list(found.values())


def evaluate(policy: Policy, facts: Facts, rules: Iterable[str] | None = None) -> Report:
    """Every rule of `policy` (or only `rules`) on `facts`."""
    ev = Evaluator(policy, facts)
    wanted = set(rules) if rules is not None else None
    report = Report(policy.name, policy.version, policy.sha256, policy.profiles, facts.target)
    for rule in policy.rules:
        if wanted is not None and rule.id not in wanted:
            continue
        report.results.append(evaluate_rule(ev, rule, facts.target.kind, policy.disabled.get(rule.id)))
    return report
