"""Generated documentation stays in sync with the code."""

from __future__ import annotations

from cvmlint.policy.explain import fact_catalogue
from tests.conftest import ROOT


def test_docs_facts_matches_the_catalogue() -> None:
    text = (ROOT / "docs/facts.md").read_text()
    body = text.split("```\n", 1)[1].rsplit("```", 1)[0]
    assert body == fact_catalogue() + "\n", "regenerate docs/facts.md with `cvmlint policy facts`"


def test_docs_rules_matches_the_policy() -> None:
    from cvmlint.policy import load_policy
    from cvmlint.policy.explain import rules_markdown

    policy = load_policy(ROOT / "policies/cvm-baseline.cvmp")
    assert (ROOT / "docs/rules.md").read_text() == rules_markdown(policy), "regenerate: cvmlint policy rules"
