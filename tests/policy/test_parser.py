"""Syntax: the grammar is conflict-free LALR, and syntax errors read like a compiler's."""

from __future__ import annotations

import pytest

from cvmlint.errors import PolicyError
from cvmlint.policy import ast
from cvmlint.policy.parser import parse_expression, parse_policy_text
from tests.conftest import ROOT


def test_grammar_is_lalr_without_conflicts() -> None:
    pytest.importorskip("interegular")
    from lark import Lark

    Lark((ROOT / "grammar/cvmlint.lark").read_text(), parser="lalr", strict=True, start=["start", "expr"])


def parse_error(text: str) -> str:
    with pytest.raises(PolicyError) as info:
        parse_policy_text(text, "x.cvmp")
    return info.value.diagnostics()


def test_misspelt_keyword_gets_a_suggestion_and_caret() -> None:
    text = parse_error('policy "p" version "1"\nrule CVM-A-1 "t" {\n  severity high\n  requir true\n}\n')
    assert text.splitlines() == [
        "x.cvmp:4:3: error: unexpected 'requir'; expected 'on', 'rationale', 'references', 'remediation', "
        "'require', 'severity', 'targets', '}'; did you mean 'require'?",
        "    4 |   requir true",
        "      |   ^^^^^^",
    ]


def test_single_quotes_are_explained() -> None:
    text = parse_error('policy "p" version "1"\nlet x = \'a\'\n')
    assert text.startswith('x.cvmp:2:9: error: unexpected character "\'"')
    assert "hint: strings use double quotes" in text


def test_end_of_file_points_after_the_last_token() -> None:
    text = parse_error('policy "p" version "1"\nrule CVM-A-1 "t" {\n  require x ==\n\n')
    assert text.startswith("x.cvmp:3:15: error: unexpected end of file; expected")


def test_message_interpolation_is_parsed_with_positions() -> None:
    pf = parse_policy_text('policy "p" version "1"\nrule R-1 "t" {\n  require a else "bad {p.name} {{x}}"\n}\n', "x")
    msg = pf.rules[0].requires[0].message
    assert msg is not None
    text, attr, tail = msg.parts
    assert text == "bad " and tail == " {x}"
    assert isinstance(attr, ast.Attr) and attr.name == "name"
    assert (attr.pos.line, attr.pos.column) == (3, 26)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ('"bad {p.}"', "cannot parse '{p.}' in message"),
        ('"bad {p"', "unclosed '{' in message"),
        ('"bad }"', "unmatched '}' in message"),
        ('"bad {}"', "empty '{}' in message"),
    ],
)
def test_broken_interpolations(message: str, error: str) -> None:
    assert error in parse_error(f'policy "p" version "1"\nrule R-1 "t" {{\n  require a else {message}\n}}\n')


def test_rule_metadata_and_branches() -> None:
    pf = parse_policy_text(
        '''policy "p" version "2"
rule CVM-X-001 "title" {
  severity critical
  targets image
  references ["NIST:SI-7", "CIS:1.1"]
  rationale """
    Two
    lines.
  """
  remediation "fix it"
  on image { require true  require false }
}
''',
        "x",
    )
    rule = pf.rules[0]
    assert (rule.id, rule.title, rule.severity, rule.targets) == ("CVM-X-001", "title", "critical", ("image",))
    assert rule.references == ("NIST:SI-7", "CIS:1.1")
    assert rule.rationale == "Two\nlines."
    assert len(rule.requirements_for("image")) == 2 and rule.requirements_for("recipe") == ()


def test_duplicate_metadata_is_an_error() -> None:
    assert "sets 'severity' twice" in parse_error(
        'policy "p" version "1"\nrule R-1 "t" {\n severity high\n severity low\n require true\n}\n'
    )


def test_precedence_quantifier_body_extends_right() -> None:
    e = parse_expression("all p in xs where p.a: p.b and p.c or not p.d")
    assert isinstance(e, ast.Quantifier) and isinstance(e.body, ast.BoolOp) and e.body.op == "or"
    e2 = parse_expression("a and (any x in xs: x) or b")
    assert isinstance(e2, ast.BoolOp) and e2.op == "or"
    e3 = parse_expression('x not in ["a", "b"]')
    assert isinstance(e3, ast.Compare) and e3.op == "not in"
    e4 = parse_expression("count(x in xs where x.a) >= 2")
    assert isinstance(e4, ast.Compare) and isinstance(e4.left, ast.Count)


def test_quantifier_needs_parentheses_inside_and() -> None:
    with pytest.raises(PolicyError, match=r"unexpected 'all'(.|\n)*needs parentheses: \(all x in …: …\)"):
        parse_expression("a and all x in xs: x")


def test_keywords_are_fine_as_field_names() -> None:
    e = parse_expression('p.version >= "1" and f.type == "file"')
    assert isinstance(e, ast.BoolOp)
