"""Waivers: scoped, approved, expiring; an expired waiver stops applying and says so."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cvmlint.errors import InputError
from cvmlint.facts import Facts, Items, Package, Provenance, Target, Unknown
from cvmlint.facts.model import DebVersion
from cvmlint.policy import Status, apply_waivers, evaluate, load_waivers

WAIVERS = """
[[waiver]]
rule = "R-1"
subject = "gcc-12"
reason = "toolchain image, TICKET-1"
approver = "alice@example.com"
expires = 2026-12-31

[[waiver]]
rule = "R-2"
reason = "verity comes in Q1"
approver = "bob@example.com"
expires = 2026-01-31
"""


def fx() -> Facts:
    unknown = Unknown("x")
    return Facts(
        target=Target(kind="image", name="img", digest="sha256:abc"),
        packages=Items(
            [
                Package(name="gcc-12", version=DebVersion("1"), where=Provenance(file="s", line=1)),
                Package(name="apt", version=DebVersion("1"), where=Provenance(file="s", line=2)),
            ]
        ),
        files=unknown,
        rootfs=unknown,
        verity=Unknown("no verity"),
        cmdline=unknown,
        boot=unknown,
        kernel=unknown,
        patches=unknown,
        mounts=unknown,
        partitions=unknown,
    )


def report(policy_of, tmp_path: Path, text: str, today: date):  # type: ignore[no-untyped-def]
    policy = policy_of(
        'rule R-1 "t" {\n  require none p in packages: true else "{p.name}"\n}\n'
        'rule R-2 "t" {\n  require verity.tree_valid\n}\n'
    )
    path = tmp_path / "waivers.toml"
    path.write_text(text)
    rep = evaluate(policy, fx())
    apply_waivers(rep, load_waivers(path), today)
    return rep


def test_scoped_waiver_waives_only_its_subject(policy_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rep = report(policy_of, tmp_path, WAIVERS, date(2026, 11, 26))
    r1 = rep.results[0]
    assert r1.status is Status.FAIL
    assert [(f.subject, f.waived_by is not None) for f in r1.findings] == [("gcc-12", True), ("apt", False)]


def test_expired_waiver_does_not_apply_and_says_so(policy_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rep = report(policy_of, tmp_path, WAIVERS, date(2026, 11, 26))
    r2 = rep.results[1]
    assert r2.status is Status.UNKNOWN
    assert "waiver by bob@example.com expired on 2026-01-31 and no longer applies" in r2.note


def test_rule_waiver_on_unknown_before_expiry(policy_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rep = report(policy_of, tmp_path, WAIVERS, date(2026, 1, 31))
    assert rep.results[1].status is Status.WAIVED
    assert rep.exit_code() == 1  # R-1 still has the un-waived apt finding


def test_fully_waived_rule_exits_zero(policy_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = WAIVERS.replace('subject = "gcc-12"\n', "").replace("2026-01-31", "2027-01-31")
    rep = report(policy_of, tmp_path, text, date(2026, 11, 26))
    assert [r.status for r in rep.results] == [Status.WAIVED, Status.WAIVED]
    assert rep.exit_code() == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[waiver]]\nrule = "R-1"\nreason = "x"\nexpires = 2026-01-01\n', "missing approver"),
        ('[[waiver]]\nrule = "R-1"\nreason = "x"\napprover = "a"\nexpires = "soon"\n', "expires must be a TOML date"),
        ('[[waiver]]\nrule = "R-1"\nreason = ""\napprover = "a"\nexpires = 2026-01-01\n', "reason must be a non-empty"),
        ('[[waiver]]\nrule = "R-1"\nreason = "x"\napprover = "a"\nexpires = 2026-01-01\nscope = "x"\n', "unknown key"),
        ("not toml [", "not a TOML waivers file"),
    ],
)
def test_bad_waiver_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "w.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_waivers(path)
