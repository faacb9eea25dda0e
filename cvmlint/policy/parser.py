"""Policy text to AST: the lark LALR parser, a Transformer, and compiler-style syntax errors."""

from __future__ import annotations

import difflib
import re
import textwrap
from functools import cache
from typing import TYPE_CHECKING, Any

from cvmlint import limits
from cvmlint._resources import grammar_path
from cvmlint.errors import Diagnostic, PolicyError
from cvmlint.policy import ast

if TYPE_CHECKING:
    from lark import Lark, Token

_TOKEN_NAMES = {
    "STRING": "a string",
    "NAME": "a name",
    "RULE_ID": "a rule id such as CVM-PKG-001",
    "INT": "a number",
    "COMP_OP": "a comparison",
    "$END": "end of file",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COLON": "':'",
    "COMMA": "','",
    "DOT": "'.'",
    "EQUAL": "'='",
    "PLUS": "'+'",
}


@cache
def _parser() -> Lark:
    from lark import Lark

    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        lexer="basic",
        start=["start", "expr"],
        maybe_placeholders=True,
        cache=True,
    )


def _keywords() -> dict[str, str]:
    """Anonymous keyword terminals (`REQUIRE`) and their text (`require`)."""
    out = {}
    for term in _parser().terminals:
        pattern = term.pattern
        if pattern.type == "str" and re.fullmatch(r"[a-z]+", pattern.value):
            out[term.name] = pattern.value
    return out


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text)


def unquote(raw: str) -> str:
    """The value of a STRING token: escapes resolved; triple-quoted text dedented and trimmed."""
    if raw.startswith('"""'):
        return textwrap.dedent(raw[3:-3].lstrip("\n")).strip()
    return _unescape(raw[1:-1])


class _Builder:
    """Turns the lark tree into AST dataclasses (a lark Transformer, made lazily)."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.lines = text.splitlines()

    def tok_pos(self, tok: Token) -> ast.Pos:
        return ast.Pos(self.path, tok.line or 1, tok.column or 1, max(1, len(tok)))


def _pos_of(b: _Builder, children: list[Any]) -> ast.Pos:
    """Position of a node: that of its first token or sub-node (lark's meta is not kept: it is slow)."""
    from lark import Token

    for child in children:
        if isinstance(child, Token):
            return b.tok_pos(child)
        pos = getattr(child, "pos", None)
        if isinstance(pos, ast.Pos):
            return pos
    return ast.Pos(b.path, 1, 1)


def _int_literal(text: str) -> int:
    """`0x1f`, `0o755` or decimal, leading zeros allowed (`007` is 7; Python's int(text, 0) refuses it)."""
    base = {"0x": 16, "0o": 8}.get(text[:2].lower(), 10)
    return int(text[2:] if base != 10 else text, base)


MAX_INT = 2**64 - 1
MAX_INT_CHARS = 70
"""The longest integer literal read: 64 bits in binary digits with a prefix fit; anything longer is refused."""


@cache
def _transformer_class() -> Any:
    from lark import Transformer

    class ToAst(Transformer):  # type: ignore[type-arg]  # NOTE: lark's Transformer is generic only in stubs
        def __init__(self, builder: _Builder) -> None:
            super().__init__()
            self.b = builder

        def pos(self, c: list[Any]) -> ast.Pos:
            return _pos_of(self.b, c)

        # -- literals and names
        def string(self, c: list[Token]) -> ast.Literal:
            return ast.Literal(self.b.tok_pos(c[0]), unquote(str(c[0])))

        def int(self, c: list[Token]) -> ast.Literal:
            text, pos = str(c[0]), self.b.tok_pos(c[0])
            # NOTE: the length is checked before conversion: int() of thousands of digits is refused by
            # Python (and quadratic before that); no fact a policy compares with needs more than 64 bits.
            value = _int_literal(text) if len(text) <= MAX_INT_CHARS else None
            if value is None or value > MAX_INT:
                raise PolicyError(
                    [
                        Diagnostic(
                            pos.path,
                            pos.line,
                            pos.column,
                            f"integer literal too large ({len(text)} characters; at most {MAX_INT})",
                            _line(self.b, pos.line),
                            min(len(text), 40),
                        )
                    ]
                )
            return ast.Literal(pos, value)

        def true(self, c: list[Token]) -> ast.Literal:
            return ast.Literal(self.b.tok_pos(c[0]), True)

        def false(self, c: list[Token]) -> ast.Literal:
            return ast.Literal(self.b.tok_pos(c[0]), False)

        def list_expr(self, c: list[Any]) -> ast.ListExpr:
            items = tuple(x for x in c if x is not None)
            return ast.ListExpr(self.pos(list(items)), items)

        def name(self, c: list[Token]) -> ast.Name:
            return ast.Name(self.b.tok_pos(c[0]), str(c[0]))

        # -- postfix
        def attr(self, c: list[Any]) -> ast.Attr:
            return ast.Attr(self.b.tok_pos(c[1]), c[0], str(c[1]))

        def call(self, c: list[Any]) -> ast.Call:
            return ast.Call(self.b.tok_pos(c[1]), c[0], str(c[1]), tuple(x for x in c[2:] if x is not None))

        def index(self, c: list[Any]) -> ast.Index:
            return ast.Index(self.pos(c), c[0], c[1])

        def concat(self, c: list[Any]) -> ast.Concat:
            return ast.Concat(self.pos(c), tuple(c))

        # -- operators
        def compare(self, c: list[Any]) -> ast.Compare:
            return ast.Compare(self.pos(c), str(c[1]), c[0], c[2])

        def _binary(self, op: str, c: list[Any]) -> ast.Compare:
            return ast.Compare(self.pos(c), op, c[0], c[1])

        def in_(self, c: list[Any]) -> ast.Compare:
            return self._binary("in", c)

        def not_in(self, c: list[Any]) -> ast.Compare:
            return self._binary("not in", c)

        def matches(self, c: list[Any]) -> ast.Compare:
            return self._binary("matches", c)

        def glob(self, c: list[Any]) -> ast.Compare:
            return self._binary("glob", c)

        def and_(self, c: list[Any]) -> ast.BoolOp:
            return ast.BoolOp(self.pos(c), "and", tuple(c))

        def or_(self, c: list[Any]) -> ast.BoolOp:
            return ast.BoolOp(self.pos(c), "or", tuple(c))

        def not_(self, c: list[Any]) -> ast.Not:
            return ast.Not(self.pos(c), c[0])

        def _quant(self, kind: str, c: list[Any]) -> ast.Quantifier:
            return ast.Quantifier(self.b.tok_pos(c[0]), kind, str(c[0]), c[1], c[2], c[3])

        def all_(self, c: list[Any]) -> ast.Quantifier:
            return self._quant("all", c)

        def any_(self, c: list[Any]) -> ast.Quantifier:
            return self._quant("any", c)

        def none_(self, c: list[Any]) -> ast.Quantifier:
            return self._quant("none", c)

        def count(self, c: list[Any]) -> ast.Count:
            return ast.Count(self.b.tok_pos(c[0]), str(c[0]), c[1], c[2])

        # -- statements
        def header(self, c: list[Token]) -> tuple[str, str]:
            return unquote(str(c[0])), unquote(str(c[2]))

        def include(self, c: list[Token]) -> ast.Include:
            return ast.Include(unquote(str(c[0])), self.b.tok_pos(c[0]))

        def let_decl(self, c: list[Any]) -> ast.Let:
            return ast.Let(str(c[0]), c[1], self.b.tok_pos(c[0]))

        def use_decl(self, c: list[Any]) -> ast.Use:
            return ast.Use(str(c[0]), unquote(str(c[1])), str(c[2]), self.b.tok_pos(c[0]))

        def severity(self, c: list[Token]) -> tuple[str, Any]:
            return "severity", (str(c[0]), self.b.tok_pos(c[0]))

        def targets(self, c: list[Token]) -> tuple[str, Any]:
            return "targets", [(str(t), self.b.tok_pos(t)) for t in c]

        def rationale(self, c: list[Token]) -> tuple[str, Any]:
            return "rationale", unquote(str(c[0]))

        def remediation(self, c: list[Token]) -> tuple[str, Any]:
            return "remediation", unquote(str(c[0]))

        def references(self, c: list[Any]) -> tuple[str, Any]:
            return "references", c[0]

        def require(self, c: list[Any]) -> ast.Require:
            message = _message(self.b, c[1]) if c[1] is not None else None
            return ast.Require(c[0], message, c[0].pos, ast.describe(c[0]))

        def branch_one(self, c: list[Any]) -> tuple[str, Any]:
            return "branch", (str(c[0]), self.b.tok_pos(c[0]), (c[1],))

        def branch_block(self, c: list[Any]) -> tuple[str, Any]:
            return "branch", (str(c[0]), self.b.tok_pos(c[0]), tuple(c[1:]))

        def rule(self, c: list[Any]) -> tuple[str, Any]:
            return "rule", (c[0], unquote(str(c[1])), self.b.tok_pos(c[0]), c[2:])

        def disable(self, c: list[Token]) -> ast.Disable:
            return ast.Disable(str(c[0]), unquote(str(c[1])), self.b.tok_pos(c[0]))

        def reseverity(self, c: list[Token]) -> ast.Reseverity:
            return ast.Reseverity(str(c[0]), str(c[1]), self.b.tok_pos(c[1]))

        def profile(self, c: list[Any]) -> ast.Profile:
            name, desc = str(c[0]), unquote(str(c[1])) if c[1] is not None else ""
            items = c[2:]
            return ast.Profile(
                name,
                desc,
                self.b.tok_pos(c[0]),
                lets=tuple(i for i in items if isinstance(i, ast.Let)),
                uses=tuple(i for i in items if isinstance(i, ast.Use)),
                disables=tuple(i for i in items if isinstance(i, ast.Disable)),
                severities=tuple(i for i in items if isinstance(i, ast.Reseverity)),
            )

    return ToAst


def _message(b: _Builder, tok: Token) -> ast.Message:
    """Split an `else` message into text and `{expr}` parts; `{{` and `}}` are literal braces."""
    raw = str(tok)
    quote = 3 if raw.startswith('"""') else 1
    body = raw[quote:-quote]
    parts: list[str | ast.Expr] = []
    text: list[str] = []
    i = interpolations = 0
    while i < len(body):
        ch = body[i]
        if ch in "{}" and body[i + 1 : i + 2] == ch:
            text.append(ch)
            i += 2
            continue
        if ch == "}":
            raise _message_error(b, tok, body, i, "unmatched '}' in message; write '}}' for a brace")
        if ch != "{":
            text.append(ch)
            i += 1
            continue
        end = body.find("}", i)
        if end < 0:
            raise _message_error(b, tok, body, i, "unclosed '{' in message; write '{{' for a brace")
        if text:
            parts.append(_unescape("".join(text)) if quote == 1 else "".join(text))
            text = []
        interpolations += 1
        if interpolations > limits.get("policy-interpolations"):
            raise _message_error(
                b,
                tok,
                body,
                i,
                f"more '{{…}}' in one message than the limit policy-interpolations = "
                f"{limits.get('policy-interpolations')} (a message names what failed)",
            )
        parts.append(_interpolation(b, tok, body, i + 1, end))
        i = end + 1
    if text:
        parts.append(_unescape("".join(text)) if quote == 1 else "".join(text))
    return ast.Message(tuple(parts), b.tok_pos(tok))


def _offset_pos(b: _Builder, tok: Token, body: str, index: int, width: int = 1) -> ast.Pos:
    quote = 3 if str(tok).startswith('"""') else 1
    before = body[:index]
    line = (tok.line or 1) + before.count("\n")
    col = (len(before) - before.rfind("\n")) if "\n" in before else (tok.column or 1) + quote + index
    return ast.Pos(b.path, line, col, width)


def _message_error(b: _Builder, tok: Token, body: str, index: int, text: str) -> PolicyError:
    pos = _offset_pos(b, tok, body, index)
    return PolicyError([Diagnostic(pos.path, pos.line, pos.column, text, _line(b, pos.line))])


def _interpolation(b: _Builder, tok: Token, body: str, start: int, end: int) -> ast.Expr:
    source = body[start:end].replace('\\"', '"')
    if not source.strip():
        raise _message_error(b, tok, body, start - 1, "empty '{}' in message")
    base = _offset_pos(b, tok, body, start)
    from lark.exceptions import UnexpectedInput

    try:
        tree = _parser().parse(source, start="expr")
    except UnexpectedInput as err:
        col = base.column + max(0, (getattr(err, "column", 1) or 1) - 1)
        raise PolicyError(
            [Diagnostic(b.path, base.line, col, f"cannot parse '{{{source}}}' in message", _line(b, base.line))]
        ) from None
    expr: ast.Expr = _shift(_transform(_Builder(b.path, source), tree), base)
    return expr


def _shift(node: Any, base: ast.Pos) -> Any:
    """Re-anchor positions of an interpolated expression at its place in the policy file."""
    import dataclasses

    if isinstance(node, ast.Pos):
        return ast.Pos(base.path, base.line, base.column + node.column - 1, node.width)
    if isinstance(node, tuple):
        return tuple(_shift(x, base) for x in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changes = {f.name: _shift(getattr(node, f.name), base) for f in dataclasses.fields(node)}
        return type(node)(**changes)
    return node


def _line(b: _Builder, line: int) -> str:
    return b.lines[line - 1] if 0 < line <= len(b.lines) else ""


def _transform(builder: _Builder, tree: Any) -> Any:
    from lark.exceptions import VisitError

    try:
        return _transformer_class()(builder).transform(tree)
    except VisitError as err:
        if isinstance(err.orig_exc, PolicyError):
            raise err.orig_exc from None
        raise


def parse_policy_text(text: str, path: str) -> ast.PolicyFile:
    """Parse one policy file; a syntax error becomes a PolicyError with line, column and caret."""
    from lark.exceptions import UnexpectedInput, VisitError

    builder = _Builder(path, text)
    try:
        tree = _parser().parse(text, start="start")
        parsed = _assemble(builder, path, _transform(builder, tree).children)
    except UnexpectedInput as err:
        raise PolicyError([_syntax_diagnostic(builder, err)]) from None
    except (RecursionError, VisitError) as err:
        if isinstance(err, VisitError) and not isinstance(err.orig_exc, RecursionError):
            raise
        raise PolicyError(
            [
                Diagnostic(
                    path,
                    1,
                    1,
                    f"expressions are nested too deeply to parse (limit policy-depth = {limits.get('policy-depth')})",
                )
            ]
        ) from None
    _check_depth(parsed)
    return parsed


def _check_depth(parsed: ast.PolicyFile) -> None:
    """Refuse an expression nested deeper than the policy-depth limit (the checker and the evaluator
    recurse through it), naming where the limit is crossed."""
    import dataclasses

    most = limits.get("policy-depth")
    stack: list[tuple[Any, int]] = [(parsed, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.Expr) and depth > most:
            raise PolicyError(
                [
                    Diagnostic(
                        node.pos.path,
                        node.pos.line,
                        node.pos.column,
                        f"expression nested more than {most} levels deep (limit policy-depth)",
                    )
                ]
            )
        if isinstance(node, (tuple, list)):
            stack += [(item, depth) for item in node]
        elif isinstance(node, dict):
            stack += [(item, depth) for item in node.values()]
        elif dataclasses.is_dataclass(node) and not isinstance(node, ast.Pos):
            inner = depth + 1 if isinstance(node, ast.Expr) else depth
            stack += [(getattr(node, f.name), inner) for f in dataclasses.fields(node)]


def parse_expression(text: str, path: str = "<expr>") -> ast.Expr:
    """Parse a single expression (used by tests and `cvmlint policy eval`)."""
    from lark.exceptions import UnexpectedInput

    builder = _Builder(path, text)
    try:
        tree = _parser().parse(text, start="expr")
    except UnexpectedInput as err:
        raise PolicyError([_syntax_diagnostic(builder, err)]) from None
    result: ast.Expr = _transform(builder, tree)
    return result


def _assemble(b: _Builder, path: str, items: list[Any]) -> ast.PolicyFile:
    (name, version), rest = items[0], items[1:]
    rules = []
    for item in rest:
        if isinstance(item, tuple) and item[0] == "rule":
            rules.append(_rule(b, *item[1]))
    return ast.PolicyFile(
        path=path,
        name=name,
        version=version,
        includes=tuple(i for i in rest if isinstance(i, ast.Include)),
        lets=tuple(i for i in rest if isinstance(i, ast.Let)),
        uses=tuple(i for i in rest if isinstance(i, ast.Use)),
        rules=tuple(rules),
        profiles=tuple(i for i in rest if isinstance(i, ast.Profile)),
    )


def _rule(b: _Builder, rid: Token, title: str, pos: ast.Pos, body: list[Any]) -> ast.Rule:
    fields: dict[str, Any] = {}
    requires: list[ast.Require] = []
    branches: dict[str, tuple[ast.Require, ...]] = {}
    branch_pos: dict[str, ast.Pos] = {}
    diags: list[Diagnostic] = []
    for item in body:
        if isinstance(item, ast.Require):
            requires.append(item)
            continue
        key, value = item
        if key == "branch":
            target, tpos, reqs = value
            if target in branches:
                diags.append(
                    Diagnostic(
                        b.path,
                        tpos.line,
                        tpos.column,
                        f"second 'on {target}' branch in rule {rid}; put its requirements in one block",
                        _line(b, tpos.line),
                    )
                )
            branches[target] = branches.get(target, ()) + tuple(reqs)
            branch_pos.setdefault(target, tpos)
            continue
        if key in fields:
            diags.append(Diagnostic(b.path, pos.line, pos.column, f"rule {rid} sets '{key}' twice", _line(b, pos.line)))
        fields[key] = value
    if diags:
        raise PolicyError(diags)
    kwargs: dict[str, Any] = {}
    if "severity" in fields:
        kwargs["severity"], kwargs["severity_pos"] = fields["severity"]
    if "targets" in fields:
        kwargs["targets"] = tuple(t for t, _ in fields["targets"])
        kwargs["targets_pos"] = tuple(p for _, p in fields["targets"])
    for key in ("rationale", "remediation"):
        if key in fields:
            kwargs[key] = fields[key]
    if "references" in fields:
        kwargs["references"] = _references(b, fields["references"])
    return ast.Rule(str(rid), title, pos, requires=tuple(requires), branches=branches, branch_pos=branch_pos, **kwargs)


def _references(b: _Builder, refs: ast.ListExpr) -> tuple[str, ...]:
    bad = [x for x in refs.items if not (isinstance(x, ast.Literal) and isinstance(x.value, str))]
    if bad:
        p = bad[0].pos
        raise PolicyError(
            [Diagnostic(p.path, p.line, p.column, "references must be string literals", _line(b, p.line), p.width)]
        )
    return tuple(str(x.value) for x in refs.items if isinstance(x, ast.Literal))


def _expected_text(expected: set[str]) -> tuple[str, list[str]]:
    keywords = _keywords()
    words = sorted(keywords.get(e, "") for e in expected if e in keywords)
    names = sorted({_TOKEN_NAMES.get(e, e) for e in expected if e not in keywords and not e.startswith("__")})
    shown = [f"'{w}'" for w in words] + names
    if len(shown) > 8:
        shown = [*shown[:8], "…"]
    return ", ".join(shown), words


def _syntax_diagnostic(b: _Builder, err: Any) -> Diagnostic:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    line, col = getattr(err, "line", -1), getattr(err, "column", -1)
    at_end = isinstance(err, UnexpectedToken) and err.token.type == "$END"
    if isinstance(err, UnexpectedEOF) or at_end or line in (-1, None):
        while b.lines and not b.lines[-1].strip():
            b.lines.pop()
        line = max(1, len(b.lines))
        col = len(b.lines[-1].rstrip()) + 1 if b.lines else 1
        expected, _ = _expected_text(set(getattr(err, "expected", ())))
        return Diagnostic(b.path, line, col, f"unexpected end of file; expected {expected}", _line(b, line))
    if isinstance(err, UnexpectedCharacters):
        char = b.lines[line - 1][col - 1] if line <= len(b.lines) and col <= len(b.lines[line - 1]) else "?"
        hint = "strings use double quotes" if char == "'" else ""
        return Diagnostic(b.path, line, col, f"unexpected character {char!r}", _line(b, line), hint=hint)
    assert isinstance(err, UnexpectedToken)
    tok = err.token
    expected, words = _expected_text(set(err.expected))
    hint = ""
    close = difflib.get_close_matches(str(tok), words, n=1, cutoff=0.6)
    if close:
        hint = f"did you mean '{close[0]}'?"
    message = f"unexpected {str(tok)!r}; expected {expected}"
    if close:
        message += f"; did you mean '{close[0]}'?"
        hint = ""
    if str(tok) in ("all", "any", "none"):
        hint = f"a quantifier inside 'and', 'or' or 'not' needs parentheses: ({tok} x in …: …)"
    return Diagnostic(b.path, line, col, message, _line(b, line), width=max(1, len(str(tok))), hint=hint)
