"""The policy AST: what the parser produces and the checker and evaluator walk."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Pos:
    """A place in a policy file."""

    path: str
    line: int
    column: int
    width: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


# ---- expressions ---------------------------------------------------------------------------


@dataclass(slots=True)
class Expr:
    """Base of all expressions."""

    pos: Pos


@dataclass(slots=True)
class Literal(Expr):
    """A string, integer or boolean literal."""

    value: str | int | bool


@dataclass(slots=True)
class ListExpr(Expr):
    """`[a, b, c]`."""

    items: tuple[Expr, ...]


@dataclass(slots=True)
class Name(Expr):
    """A fact, a `let` constant, a data file or a quantifier variable."""

    id: str


@dataclass(slots=True)
class Attr(Expr):
    """`obj.field`."""

    obj: Expr
    name: str


@dataclass(slots=True)
class Index(Expr):
    """`obj[key]`: by key in a keyed collection, by position in a list."""

    obj: Expr
    key: Expr


@dataclass(slots=True)
class Call(Expr):
    """`obj.method(args)`."""

    obj: Expr
    method: str
    args: tuple[Expr, ...]


@dataclass(slots=True)
class Concat(Expr):
    """`a + b`: lists or strings."""

    items: tuple[Expr, ...]


@dataclass(slots=True)
class Compare(Expr):
    """`a OP b` with OP one of == != < <= > >= in `not in` matches glob."""

    op: str
    left: Expr
    right: Expr


@dataclass(slots=True)
class BoolOp(Expr):
    """`a and b and …` / `a or b or …`."""

    op: str
    operands: tuple[Expr, ...]


@dataclass(slots=True)
class Not(Expr):
    """`not a`."""

    operand: Expr


@dataclass(slots=True)
class Quantifier(Expr):
    """`all|any|none VAR in COLLECTION [where FILTER]: BODY`."""

    kind: str
    var: str
    collection: Expr
    filter: Expr | None
    body: Expr


@dataclass(slots=True)
class Count(Expr):
    """`count(VAR in COLLECTION [where FILTER])`."""

    var: str
    collection: Expr
    filter: Expr | None


def describe(expr: Expr) -> str:
    """Source-like text of an expression, e.g. `rootfs.format` or `cmdline["lockdown"] == "integrity"`."""
    if isinstance(expr, Name):
        return expr.id
    if isinstance(expr, Literal):
        if isinstance(expr.value, bool):
            return "true" if expr.value else "false"
        return str(expr.value) if isinstance(expr.value, int) else '"' + expr.value.replace('"', '\\"') + '"'
    if isinstance(expr, Attr):
        return f"{describe(expr.obj)}.{expr.name}"
    if isinstance(expr, Index):
        return f"{describe(expr.obj)}[{describe(expr.key)}]"
    if isinstance(expr, Call):
        return f"{describe(expr.obj)}.{expr.method}({', '.join(describe(a) for a in expr.args)})"
    if isinstance(expr, ListExpr):
        return "[" + ", ".join(describe(x) for x in expr.items) + "]"
    if isinstance(expr, Concat):
        return " + ".join(describe(x) for x in expr.items)
    if isinstance(expr, Compare):
        return f"{describe(expr.left)} {expr.op} {describe(expr.right)}"
    if isinstance(expr, BoolOp):
        return f" {expr.op} ".join(_paren(x) for x in expr.operands)
    if isinstance(expr, Not):
        return f"not {_paren(expr.operand)}"
    if isinstance(expr, Quantifier | Count):
        where = f" where {describe(expr.filter)}" if expr.filter is not None else ""
        head = f"{expr.var} in {describe(expr.collection)}{where}"
        if isinstance(expr, Count):
            return f"count({head})"
        return f"{expr.kind} {head}: {describe(expr.body)}"
    return "expression"  # pragma: no cover - every node type is handled above


def _paren(expr: Expr) -> str:
    text = describe(expr)
    return f"({text})" if isinstance(expr, BoolOp | Quantifier) else text


# ---- statements ----------------------------------------------------------------------------


@dataclass(slots=True)
class Message:
    """An `else` message: text parts and `{expr}` interpolations, in order."""

    parts: tuple[str | Expr, ...]
    pos: Pos


@dataclass(slots=True)
class Require:
    """`require EXPR [else MESSAGE]`."""

    expr: Expr
    message: Message | None
    pos: Pos
    text: str = ""
    """The expression as written, for the default message."""


@dataclass(slots=True)
class Rule:
    """A rule with its metadata and requirements, common and per target."""

    id: str
    title: str
    pos: Pos
    severity: str = "medium"
    severity_pos: Pos | None = None
    targets: tuple[str, ...] = ("recipe", "image")
    targets_pos: tuple[Pos, ...] = ()
    rationale: str = ""
    remediation: str = ""
    references: tuple[str, ...] = ()
    requires: tuple[Require, ...] = ()
    branches: dict[str, tuple[Require, ...]] = field(default_factory=dict)
    branch_pos: dict[str, Pos] = field(default_factory=dict)

    def requirements_for(self, target: str) -> tuple[Require, ...]:
        """The requirements that apply to one target kind."""
        return self.requires + self.branches.get(target, ())


@dataclass(slots=True)
class Let:
    """`let NAME = EXPR`: a named constant."""

    name: str
    expr: Expr
    pos: Pos


@dataclass(slots=True)
class Use:
    """`use KIND "path" as NAME`: a data file (today: `list`, a package allowlist)."""

    kind: str
    path: str
    name: str
    pos: Pos


@dataclass(slots=True)
class Disable:
    """`disable RULE-ID "reason"` inside a profile."""

    rule_id: str
    reason: str
    pos: Pos


@dataclass(slots=True)
class Reseverity:
    """`severity RULE-ID LEVEL` inside a profile."""

    rule_id: str
    severity: str
    pos: Pos


@dataclass(slots=True)
class Profile:
    """A named set of overrides applied on top of the policy."""

    name: str
    description: str
    pos: Pos
    lets: tuple[Let, ...] = ()
    uses: tuple[Use, ...] = ()
    disables: tuple[Disable, ...] = ()
    severities: tuple[Reseverity, ...] = ()


@dataclass(slots=True)
class Include:
    """`include "other.cvmp"`."""

    path: str
    pos: Pos


@dataclass(slots=True)
class PolicyFile:
    """One parsed policy file, before includes are resolved."""

    path: str
    name: str
    version: str
    includes: tuple[Include, ...]
    lets: tuple[Let, ...]
    uses: tuple[Use, ...]
    rules: tuple[Rule, ...]
    profiles: tuple[Profile, ...]
