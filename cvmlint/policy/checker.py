"""Static checks of a policy when it is loaded: names, fact paths, types, rule metadata."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cvmlint.errors import Diagnostic
from cvmlint.policy import ast
from cvmlint.policy.ast import describe
from cvmlint.policy.types import (
    ALLOWLIST,
    ANY,
    BOOL,
    INT,
    STR,
    FieldInfo,
    Ty,
    comparable,
    fact_roots,
    key_type,
    list_of,
    record_fields,
    unify,
)
from cvmlint.severity import SEVERITIES

TARGETS = ("recipe", "image")
STRING_METHODS: Mapping[str, tuple[tuple[Ty, ...], Ty]] = {
    "startswith": ((STR,), BOOL),
    "endswith": ((STR,), BOOL),
    "contains": ((STR,), BOOL),
    "lower": ((), STR),
}
_TYPE_NAMES = {"str": STR, "bool": BOOL, "int": INT}


@dataclass(frozen=True)
class Binding:
    """What a name means in a scope."""

    kind: str
    """`fact`, `let`, `use` or `var` (a quantifier variable)."""
    ty: Ty


def _root(expr: ast.Expr) -> ast.Name | None:
    while isinstance(expr, ast.Attr | ast.Index | ast.Call):
        expr = expr.obj
    return expr if isinstance(expr, ast.Name) else None


@dataclass
class Checker:
    """Collects every diagnostic of a policy instead of stopping at the first."""

    sources: Mapping[str, list[str]]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)

    # -- reporting
    def _diag(self, pos: ast.Pos, message: str, hint: str = "", width: int | None = None) -> Diagnostic:
        lines = self.sources.get(pos.path, [])
        source = lines[pos.line - 1] if 0 < pos.line <= len(lines) else ""
        return Diagnostic(pos.path, pos.line, pos.column, message, source, width or pos.width, hint)

    def error(self, pos: ast.Pos, message: str, hint: str = "", width: int | None = None) -> Ty:
        """Record an error; returns ANY so that checking goes on without cascading errors."""
        self.diagnostics.append(self._diag(pos, message, hint, width))
        return ANY

    def warn(self, pos: ast.Pos, message: str, hint: str = "") -> None:
        """Record a warning (shown by `policy check`, never fatal)."""
        d = self._diag(pos, message, hint)
        self.warnings.append(Diagnostic(d.path, d.line, d.column, d.message, d.source_line, d.width, d.hint, "warning"))

    @staticmethod
    def suggest(word: str, candidates: Iterable[str]) -> str:
        """`; did you mean 'x'?` or nothing."""
        close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
        return f"; did you mean '{close[0]}'?" if close else ""

    # -- expressions
    def expr(self, e: ast.Expr, scope: Mapping[str, Binding]) -> Ty:
        """The type of an expression, recording errors on the way."""
        method = getattr(self, "_" + type(e).__name__.lower())
        ty: Ty = method(e, scope)
        return ty

    def _literal(self, e: ast.Literal, scope: Mapping[str, Binding]) -> Ty:
        return BOOL if isinstance(e.value, bool) else INT if isinstance(e.value, int) else STR

    def _listexpr(self, e: ast.ListExpr, scope: Mapping[str, Binding]) -> Ty:
        types = [self.expr(x, scope) for x in e.items]
        common = unify(types)
        if common is None:
            return self.error(e.pos, "list mixes types: " + ", ".join(sorted({str(t) for t in types})))
        return list_of(common)

    def _name(self, e: ast.Name, scope: Mapping[str, Binding]) -> Ty:
        if e.id in scope:
            return scope[e.id].ty
        return self.error(
            e.pos,
            f"unknown name '{e.id}'" + self.suggest(e.id, scope),
            hint="names are facts (" + ", ".join(fact_roots()) + "), let constants, "
            "data files and quantifier variables",
        )

    def _attr(self, e: ast.Attr, scope: Mapping[str, Binding]) -> Ty:
        base = self.expr(e.obj, scope)
        if base == ANY:
            return ANY
        if base.is_list:
            return self.error(
                e.pos,
                f"'{describe(e.obj)}' is a {base}; quantify over it "
                f"(all x in {describe(e.obj)}: x.{e.name} …) or index it",
            )
        if base.name != "record" or base.record is None:
            return self.error(e.pos, f"'{describe(e.obj)}' is a {base} and has no field '{e.name}'")
        fields_ = record_fields(base.record)
        if e.name not in fields_:
            root = _root(e)
            is_fact = root is not None and root.id in scope and scope[root.id].kind == "fact"
            if e.name in base.record.METHODS:
                return self.error(
                    e.pos, f"'{e.name}' is a method of {base.record.__name__}; call it: {describe(e.obj)}.{e.name}(…)"
                )
            if is_fact:
                close = difflib.get_close_matches(e.name, list(fields_), n=1, cutoff=0.6)
                what = f"unknown fact '{describe(e)}'"
                what += f"; did you mean '{describe(e.obj)}.{close[0]}'?" if close else ""
            else:
                what = f"{base.record.__name__} has no field '{e.name}'" + self.suggest(e.name, fields_)
            return self.error(e.pos, what, hint=f"{base.record.__name__} fields: {', '.join(fields_)}")
        ty = fields_[e.name].ty
        return ty.maybe() if base.optional else ty

    def _index(self, e: ast.Index, scope: Mapping[str, Binding]) -> Ty:
        base = self.expr(e.obj, scope)
        key = self.expr(e.key, scope)
        if base == ANY or key == ANY:
            return ANY
        if not base.is_list:
            return self.error(e.pos, f"'{describe(e.obj)}' is a {base}; only lists can be indexed")
        assert base.elem is not None
        if key.required() == INT:
            return base.elem.maybe()
        yields = key_type(base.elem)
        if yields is None:
            return self.error(e.key.pos, f"'{describe(e.obj)}' ({base}) is indexed by position, not by {key}")
        if not key.textual:
            return self.error(e.key.pos, f"'{describe(e.obj)}' is indexed by a string key, not {key}")
        return yields

    def _call(self, e: ast.Call, scope: Mapping[str, Binding]) -> Ty:
        base = self.expr(e.obj, scope)
        args = [self.expr(a, scope) for a in e.args]
        if base == ANY:
            return ANY
        if base.textual:
            table = {k: v for k, v in STRING_METHODS.items()}
        elif base.name == "record" and base.record is not None:
            table = {
                k: (tuple(_TYPE_NAMES[a] for a in v[0]), _TYPE_NAMES[v[1]]) for k, v in base.record.METHODS.items()
            }
        else:
            table = {}
        if e.method not in table:
            return self.error(
                e.pos,
                f"{base} has no method '{e.method}'" + self.suggest(e.method, table),
                hint=("methods: " + ", ".join(table)) if table else "",
            )
        params, result = table[e.method]
        if len(args) != len(params) or not all(comparable(a, p) for a, p in zip(args, params, strict=False)):
            want = ", ".join(str(p) for p in params)
            got = ", ".join(str(a) for a in args)
            return self.error(e.pos, f"{e.method}() takes ({want}), got ({got})")
        return result.maybe() if base.optional else result

    def _concat(self, e: ast.Concat, scope: Mapping[str, Binding]) -> Ty:
        types = [self.expr(x, scope) for x in e.items]
        if ANY in types:
            return ANY
        if all(t.is_list for t in types):
            common = unify([t.elem for t in types if t.elem is not None])
            if common is not None:
                return list_of(common)
        if all(t.required().textual for t in types):
            return STR
        if all(t == ALLOWLIST for t in types):
            return ALLOWLIST
        return self.error(e.pos, "'+' joins lists, allowlists or strings, not " + " + ".join(map(str, types)))

    def _compare(self, e: ast.Compare, scope: Mapping[str, Binding]) -> Ty:
        left, right = self.expr(e.left, scope), self.expr(e.right, scope)
        if ANY in (left, right):
            return BOOL
        op = e.op
        if op in ("==", "!="):
            if not comparable(left, right):
                self.error(
                    e.pos, f"cannot compare {left} with {right} ('{describe(e.left)}' {op} '{describe(e.right)}')"
                )
        elif op in ("<", "<=", ">", ">="):
            lt, rt = left.required(), right.required()
            if not ((lt == INT and rt == INT) or (lt.textual and rt.textual and "version" in (lt.name, rt.name))):
                self.error(
                    e.pos,
                    f"'{op}' orders numbers or versions, not {left} and {right}",
                    hint="strings are not ordered; package versions use dpkg ordering",
                )
        elif op in ("in", "not in"):
            self._check_in(e, left, right)
        elif op in ("matches", "glob"):
            if not (left.required().textual and right.required().textual):
                self.error(e.pos, f"'{op}' needs strings, got {left} {op} {right}")
            elif op == "matches" and isinstance(e.right, ast.Literal) and isinstance(e.right.value, str):
                from cvmlint.policy.regex import check

                problem = check(e.right.value)
                if problem:
                    self.error(e.right.pos, f"invalid regular expression: {problem}")
        return BOOL

    def _check_in(self, e: ast.Compare, left: Ty, right: Ty) -> None:
        r = right.required()
        if r == ALLOWLIST:
            ok = left.required().textual or (left.record is not None and left.record.__name__ == "Package")
        elif r.textual:
            ok = left.required().textual
        elif r.is_list and r.elem is not None:
            ok = comparable(left, r.elem) or (key_type(r.elem) is not None and left.required().textual)
        else:
            ok = False
        if not ok:
            self.error(e.pos, f"'{describe(e.left)}' ({left}) cannot be looked up in '{describe(e.right)}' ({right})")

    def _boolop(self, e: ast.BoolOp, scope: Mapping[str, Binding]) -> Ty:
        for operand in e.operands:
            self.condition(operand, scope, f"operand of '{e.op}'")
        return BOOL

    def _not(self, e: ast.Not, scope: Mapping[str, Binding]) -> Ty:
        self.condition(e.operand, scope, "operand of 'not'")
        return BOOL

    def _bind(self, e: ast.Quantifier | ast.Count, scope: Mapping[str, Binding]) -> dict[str, Binding]:
        coll = self.expr(e.collection, scope)
        elem = ANY
        if coll != ANY:
            if not coll.is_list or coll.elem is None:
                self.error(e.collection.pos, f"'{describe(e.collection)}' is a {coll}, not a collection")
            else:
                elem = coll.elem
        if e.var in scope and scope[e.var].kind != "var":
            self.error(e.pos, f"quantifier variable '{e.var}' hides the {scope[e.var].kind} of that name")
        inner = dict(scope)
        inner[e.var] = Binding("var", elem)
        if e.filter is not None:
            self.condition(e.filter, inner, "'where' filter")
        return inner

    def _quantifier(self, e: ast.Quantifier, scope: Mapping[str, Binding]) -> Ty:
        inner = self._bind(e, scope)
        self.condition(e.body, inner, f"body of '{e.kind}'")
        return BOOL

    def _count(self, e: ast.Count, scope: Mapping[str, Binding]) -> Ty:
        self._bind(e, scope)
        return INT

    def condition(self, e: ast.Expr, scope: Mapping[str, Binding], what: str) -> None:
        """Check an expression used as a truth value."""
        ty = self.expr(e, scope)
        if ty != ANY and ty.required() != BOOL:
            self.error(e.pos, f"{what} must be true or false, but '{describe(e)}' is a {ty}")

    # -- statements
    def require(self, req: ast.Require, scope: Mapping[str, Binding]) -> None:
        """Check a requirement and its message (which may name the quantifier variables)."""
        self.condition(req.expr, scope, "a requirement")
        if req.message is None:
            return
        msg_scope = dict(scope)
        msg_scope.update(self.quantifier_vars(req.expr, scope))
        for part in req.message.parts:
            if isinstance(part, ast.Expr):
                self.expr(part, msg_scope)

    def quantifier_vars(self, e: ast.Expr, scope: Mapping[str, Binding]) -> dict[str, Binding]:
        """Variables bound by quantifiers anywhere in a requirement, with their types."""
        found: dict[str, Binding] = {}
        saved = (len(self.diagnostics), len(self.warnings))

        def walk(node: ast.Expr, sc: Mapping[str, Binding]) -> None:
            if isinstance(node, ast.Quantifier | ast.Count):
                inner = self._bind(node, sc)
                found.setdefault(node.var, inner[node.var])
                if node.filter is not None:
                    walk(node.filter, inner)
                if isinstance(node, ast.Quantifier):
                    walk(node.body, inner)
                return
            for child in _children(node):
                walk(child, sc)

        walk(e, scope)
        # NOTE: errors were already reported by the main pass; drop the duplicates of this walk
        del self.diagnostics[saved[0] :]
        del self.warnings[saved[1] :]
        return found

    def rule(self, rule: ast.Rule, scope: Mapping[str, Binding]) -> None:
        """Check a rule's metadata and every requirement."""
        if rule.severity not in SEVERITIES:
            pos = rule.severity_pos or rule.pos
            self.error(
                pos,
                f"unknown severity '{rule.severity}'" + self.suggest(rule.severity, SEVERITIES),
                hint="severities: " + ", ".join(SEVERITIES),
            )
        for target, tpos in zip(rule.targets, rule.targets_pos or (rule.pos,) * len(rule.targets), strict=False):
            if target not in TARGETS:
                self.error(tpos, f"unknown target '{target}'" + self.suggest(target, TARGETS))
        for target in rule.branches:
            bpos = rule.branch_pos.get(target, rule.pos)
            if target not in TARGETS:
                self.error(bpos, f"unknown target '{target}'" + self.suggest(target, TARGETS))
            elif target not in rule.targets:
                self.error(bpos, f"rule {rule.id} has an 'on {target}' branch but does not target {target}")
        for target in rule.targets:
            if target in TARGETS and not rule.requirements_for(target):
                self.error(
                    rule.pos,
                    f"rule {rule.id} applies to {target} but has no requirement for it",
                    hint=f"add 'on {target}: require …' or narrow 'targets'",
                )
        for req in rule.requires + tuple(r for reqs in rule.branches.values() for r in reqs):
            self.require(req, scope)
        if not rule.rationale:
            self.warn(rule.pos, f"rule {rule.id} has no rationale")
        if not rule.remediation:
            self.warn(rule.pos, f"rule {rule.id} has no remediation")


def _children(node: ast.Expr) -> list[ast.Expr]:
    if isinstance(node, ast.ListExpr | ast.Concat):
        return list(node.items)
    if isinstance(node, ast.Attr):
        return [node.obj]
    if isinstance(node, ast.Index):
        return [node.obj, node.key]
    if isinstance(node, ast.Call):
        return [node.obj, *node.args]
    if isinstance(node, ast.Compare):
        return [node.left, node.right]
    if isinstance(node, ast.BoolOp):
        return list(node.operands)
    if isinstance(node, ast.Not):
        return [node.operand]
    if isinstance(node, ast.Quantifier):
        return [node.collection, *([node.filter] if node.filter else []), node.body]
    if isinstance(node, ast.Count):
        return [node.collection, *([node.filter] if node.filter else [])]
    return []


def walk_expr(node: ast.Expr) -> Iterable[ast.Expr]:
    """Every sub-expression, the node first."""
    yield node
    for child in _children(node):
        yield from walk_expr(child)


def fact_scope() -> dict[str, Binding]:
    """The names every policy starts with: the facts."""
    return {name: Binding("fact", info.ty) for name, info in fact_roots().items()}


def fact_paths(expr: ast.Expr, scope: Mapping[str, Binding]) -> set[str]:
    """The fact paths an expression reads (`rootfs.format`, `packages.name`, …), for `policy explain`."""
    paths: set[str] = set()
    var_paths: dict[str, str] = {}

    def path_of(node: ast.Expr) -> str | None:
        if isinstance(node, ast.Name):
            if node.id in var_paths:
                return var_paths[node.id]
            b = scope.get(node.id)
            return node.id if b is not None and b.kind == "fact" else None
        if isinstance(node, ast.Attr):
            base = path_of(node.obj)
            return f"{base}.{node.name}" if base else None
        if isinstance(node, ast.Index | ast.Call):
            return path_of(node.obj)
        return None

    def walk(node: ast.Expr) -> None:
        if isinstance(node, ast.Quantifier | ast.Count):
            coll = path_of(node.collection)
            if coll:
                var_paths[node.var] = coll
        p = path_of(node)
        if p:
            paths.add(p)
        for child in _children(node):
            walk(child)

    walk(expr)
    return paths


def leaf_paths(paths: set[str]) -> set[str]:
    """Drop paths that a longer path already names (`rootfs` when `rootfs.format` is there)."""
    return {p for p in paths if not any(q.startswith(p + ".") for q in paths)}


__all__ = [
    "SEVERITIES",
    "TARGETS",
    "Binding",
    "Checker",
    "FieldInfo",
    "describe",
    "fact_paths",
    "fact_scope",
    "leaf_paths",
    "walk_expr",
]
