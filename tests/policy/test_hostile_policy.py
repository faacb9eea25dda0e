"""Policies are input a pull request can change, and names are input an image chose: a policy too large in
its messages or patterns is refused at its line, and a file name that is not UTF-8 is judged, not an
error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cvmlint import limits
from cvmlint.errors import PolicyError
from cvmlint.facts import File, Items, Provenance
from cvmlint.policy import evaluate, load_policy
from cvmlint.policy.loader import Policy
from cvmlint.policy.regex import check, regex
from cvmlint.policy.results import Status
from tests.conftest import ROOT


def test_a_message_with_thousands_of_interpolations_is_refused_at_its_line(policy_of: Callable[..., Policy]) -> None:
    message = "{1}" * 60_000
    most = limits.get("policy-interpolations")
    with pytest.raises(PolicyError, match="than the limit policy-interpolations = 64"):
        policy_of(f'rule A-1 "x" {{\n  require 1 == 2 else "{message}"\n}}\n')
    assert policy_of('rule A-1 "x" {\n  require 1 == 2 else "' + "{1}" * most + '"\n}\n')


def test_nested_empty_groups_cost_nothing_per_search() -> None:
    """Groups are never captured: thousands of nested ones compile to a small program."""
    pattern = "(" * 3000 + ")" * 3000 + "gcc"
    assert check(pattern) is None
    assert regex(pattern).programsize < 100
    assert regex(pattern).search("/usr/bin/gcc") is not None


def test_a_pattern_too_large_for_a_scan_is_refused(policy_of: Callable[..., Policy]) -> None:
    import random

    rng = random.Random(25)
    huge = "|".join("".join(rng.choice("abcdefghij") for _ in range(12)) for _ in range(5000))
    assert "over the limit pattern-instructions" in str(check(huge))
    with pytest.raises(PolicyError, match="RE2 instructions"):
        policy_of(f'rule A-1 "x" {{\n  require all f in files: not (f.name matches "{huge}")\n}}\n')


def test_a_file_name_that_is_not_utf8_is_judged() -> None:
    """An ext4 name's bad bytes are carried as surrogate escapes; the rules that match names on them
    (CVM-PKG-002/003/006) decide, instead of ending in ERROR."""
    from cvmlint.facts import load_facts_file

    facts = load_facts_file(ROOT / "policies/tests/facts/hardened-image.json")
    odd = [
        File(
            path=p,
            name=Path(p).name,
            type="file",
            mode=0o755,
            executable=True,
            where=Provenance(partition="root", file=p),
        )
        for p in ("/usr/bin/gcc\udcff", "/usr/bin/\udcc3\udca9cho", "/etc/apt/sources.list.d/\udcff.list")
    ]
    assert isinstance(facts.files, Items)
    import dataclasses

    report = evaluate(
        load_policy(ROOT / "policies/cvm-baseline.cvmp", ["tdx-base"]),
        dataclasses.replace(facts, files=Items([*facts.files, *odd])),
    )
    statuses = {r.rule_id: r.status for r in report.results}
    assert Status.ERROR not in statuses.values()
    assert statuses["CVM-PKG-006"] is Status.FAIL  # /etc/apt/sources.list.d/<bad byte>.list is a source


def test_a_process_that_reads_many_policies_stays_bounded(tmp_path: Path) -> None:
    """A replay of many bundles, each with its own policy (found by the campaign: 80 MB to 1 GB over
    15,000 bundles): parses and compiled patterns are kept for the last few, not for every one."""
    from cvmlint.facts import load_facts_file
    from cvmlint.policy import loader
    from cvmlint.policy import regex as patterns

    facts = load_facts_file(ROOT / "policies/tests/facts/hardened-image.json")
    for n in range(loader.PARSED_KEPT + 40):
        path = tmp_path / f"p{n}.cvmp"
        rule = f'rule A-{n} "x" {{\n  require all f in files: not (f.path matches "^/x{n}$")\n}}\n'
        path.write_text(f'policy "p{n}" version "1"\n{rule}')
        assert evaluate(load_policy(path), facts).results[0].status is Status.PASS
    assert len(loader._PARSED) <= loader.PARSED_KEPT
    assert patterns.regex.cache_info().currsize <= patterns.PATTERNS_KEPT
