"""Evaluation: Kleene logic, every offending item with its provenance, unknown is never a pass."""

from __future__ import annotations

from typing import Any

import pytest

from cvmlint.facts import (
    ConfigOption,
    Facts,
    File,
    Items,
    Kernel,
    KernelStrings,
    Package,
    Param,
    Provenance,
    RootFs,
    Target,
    Unknown,
)
from cvmlint.facts.model import DebVersion
from cvmlint.policy import Status, evaluate
from cvmlint.policy.evaluator import compare

STATUS = Provenance(partition="root", file="/var/lib/dpkg/status")


def facts(**overrides: Any) -> Facts:
    base: dict[str, Any] = dict(
        target=Target(kind="image", name="img"),
        packages=Items(
            [
                Package(name=n, version=DebVersion(v), where=Provenance(partition="root", file=STATUS.file, line=i))
                for i, (n, v) in enumerate([("bash", "5.2-1"), ("gcc-12", "12.2-14"), ("apt", "2.6")], start=1)
            ],
            STATUS,
        ),
        files=Items(
            [
                File(
                    path="/usr/bin/gcc-12",
                    name="gcc-12",
                    type="file",
                    is_elf=True,
                    where=Provenance(partition="root", file="/usr/bin/gcc-12"),
                )
            ]
        ),
        rootfs=RootFs(format="ext4", read_only=False, where=Provenance(partition="root", offset=1024)),
        verity=Unknown("no verity partition"),
        cmdline=Items(
            [Param(name="roothash", value="aa"), Param(name="ro"), Param(name="roothash", value="bb")],
            Provenance(partition="esp", file="/grub/grub.cfg", line=12),
        ),
        boot=Unknown("no ESP"),
        kernel=Kernel(
            version="6.1",
            config=Items([ConfigOption(name="CONFIG_KEXEC", value="y")]),
            strings=KernelStrings(["SANDBOX: Enabled"], ["SANDBOX: Enabled", "other"]),
        ),
        patches=Unknown("images have no patch series"),
        mounts=Items(),
        partitions=Items(),
    )
    base.update(overrides)
    return Facts(**base)


def run(policy_of, require: str, fx: Facts | None = None, extra: str = "") -> Any:  # type: ignore[no-untyped-def]
    policy = policy_of(extra + f'rule R-1 "t" {{\n  severity high\n  require {require}\n}}\n')
    return evaluate(policy, fx or facts()).results[0]


def test_quantified_failure_reports_every_item_with_provenance(policy_of) -> None:  # type: ignore[no-untyped-def]
    r = run(policy_of, 'all p in packages: p.name == "bash" else "package {p.name} {p.version}"')
    assert r.status is Status.FAIL
    assert [(f.message, f.location, f.subject) for f in r.findings] == [
        ("package gcc-12 12.2-14", "root:/var/lib/dpkg/status:2", "gcc-12"),
        ("package apt 2.6", "root:/var/lib/dpkg/status:3", "apt"),
    ]


def test_none_reports_the_matching_items(policy_of) -> None:  # type: ignore[no-untyped-def]
    r = run(policy_of, 'none p in packages where p.name != "bash": p.version >= "2" else "{p.name}"')
    assert [f.message for f in r.findings] == ["gcc-12", "apt"]


def test_missing_fact_is_unknown_with_reason_never_pass(policy_of) -> None:  # type: ignore[no-untyped-def]
    r = run(policy_of, 'verity.root_hash == "aa"')
    assert r.status is Status.UNKNOWN
    assert r.reasons == ("verity: no verity partition",)


@pytest.mark.parametrize(
    ("expr", "status"),
    [
        ('verity.root_hash == "x" and rootfs.format == "erofs"', Status.FAIL),  # false and unknown = false
        ('verity.root_hash == "x" or rootfs.format == "ext4"', Status.PASS),  # true or unknown = true
        ('verity.root_hash == "x" or rootfs.format == "erofs"', Status.UNKNOWN),  # false or unknown = unknown
        ('verity.root_hash == "x" and rootfs.format == "ext4"', Status.UNKNOWN),  # true and unknown = unknown
        ('not (verity.root_hash == "x")', Status.UNKNOWN),
    ],
)
def test_kleene_logic(policy_of, expr: str, status: Status) -> None:  # type: ignore[no-untyped-def]
    assert run(policy_of, expr).status is status


def test_or_names_the_alternative_that_passed(policy_of) -> None:  # type: ignore[no-untyped-def]
    r = run(policy_of, 'rootfs.format == "erofs" or kernel.config["CONFIG_KEXEC"] == "y"')
    assert r.status is Status.PASS and r.note == 'passes via \'kernel.config["CONFIG_KEXEC"] == "y"\''


def test_unknown_items_inside_all(policy_of) -> None:  # type: ignore[no-untyped-def]
    fx = facts(
        packages=Items(
            [Package(name="bash", version=Unknown("not pinned")), Package(name="zsh", version=DebVersion("1"))]
        )
    )
    assert run(policy_of, 'all p in packages: p.version >= "0.5"', fx).status is Status.UNKNOWN
    # one definite failure decides the rule even with unknown items around
    assert run(policy_of, 'all p in packages: p.version >= "2"', fx).status is Status.FAIL


def test_all_over_an_empty_collection_is_true_and_any_is_false(policy_of) -> None:  # type: ignore[no-untyped-def]
    fx = facts(packages=Items((), STATUS))
    assert run(policy_of, 'all p in packages: p.name == "x"', fx).status is Status.PASS
    r = run(policy_of, 'any p in packages: p.name == "x"', fx)
    assert r.status is Status.FAIL and r.findings[0].location == "root:/var/lib/dpkg/status"


def test_collection_unknown_makes_quantifiers_unknown(policy_of) -> None:  # type: ignore[no-untyped-def]
    fx = facts(packages=Unknown("no package database in image"))
    for q in ("all", "any", "none"):
        r = run(policy_of, f'{q} p in packages: p.name == "x"', fx)
        assert r.status is Status.UNKNOWN and r.reasons == ("packages: no package database in image",)


def test_index_by_key_takes_the_last_duplicate_and_absent_is_none(policy_of) -> None:  # type: ignore[no-untyped-def]
    assert run(policy_of, 'cmdline["roothash"] == "bb"').status is Status.PASS
    assert run(policy_of, 'cmdline["ro"] == "x"').status is Status.FAIL
    r = run(policy_of, 'cmdline["lockdown"] == "integrity" else "lockdown is {cmdline[\\"lockdown\\"]}"')
    assert r.status is Status.FAIL
    assert (r.findings[0].message, r.findings[0].location) == ("lockdown is none", "esp:/grub/grub.cfg:12")
    assert run(policy_of, '"ro" in cmdline and not ("lockdown" in cmdline)').status is Status.PASS


def test_duplicates_are_visible_to_quantifiers(policy_of) -> None:  # type: ignore[no-untyped-def]
    assert run(policy_of, 'count(p in cmdline where p.name == "roothash") == 2').status is Status.PASS
    r = run(policy_of, 'all p in cmdline where p.name == "roothash": p.value == "aa" else "roothash={p.value}"')
    assert [f.message for f in r.findings] == ["roothash=bb"]


def test_debian_version_ordering(policy_of) -> None:  # type: ignore[no-untyped-def]
    fx = facts(
        packages=Items(
            [Package(name="a", version=DebVersion("1.0~rc1")), Package(name="b", version=DebVersion("1:0.1"))]
        )
    )
    assert run(policy_of, 'all p in packages where p.name == "a": p.version < "1.0"', fx).status is Status.PASS
    assert run(policy_of, 'all p in packages where p.name == "b": p.version > "9.9"', fx).status is Status.PASS


def test_compare_primitives() -> None:
    assert compare("glob", "/usr/bin/gcc", "/usr/*/gcc") is True
    assert compare("glob", "/usr/lib/x/gcc", "/usr/*/gcc") is False
    assert compare("glob", "/usr/lib/x/gcc", "/usr/**/gcc") is True
    assert compare("matches", "gcc-12", "^gcc(-[0-9]+)?$") is True
    assert compare("glob", "/a/[!b]c", "/a/[!b]c") is False and compare("glob", "/a/xc", "/a/[!b]c") is True
    assert compare("matches", "GCC", "(?i)^gcc$") is True
    assert compare("in", "bash", ("bash", "dash")) is True
    assert compare("not in", None, ("x",)) is True
    assert compare("<", None, 3) is False
    assert compare("==", None, None) is True


def test_kernel_contains_unsearched_string_is_unknown(policy_of) -> None:  # type: ignore[no-untyped-def]
    assert run(policy_of, 'kernel.contains("SANDBOX: Enabled")').status is Status.PASS
    assert run(policy_of, 'kernel.contains("other")').status is Status.FAIL
    r = run(policy_of, 'kernel.contains("never searched")')
    assert r.status is Status.UNKNOWN and "was not searched for" in r.reasons[0]


def test_allowlist_membership_with_constraints(policy_of) -> None:  # type: ignore[no-untyped-def]
    extra = 'use list "allow.txt" as allowed\n'
    files = "bash (>= 5.0)\ngcc-* (<< 12.0)\napt\n"
    policy = policy_of(
        extra + 'rule R-1 "t" {\n  require all p in packages: p in allowed else "{p.name}"\n}\n',
        files={"allow.txt": files},
    )
    r = evaluate(policy, facts()).results[0]
    assert [f.message for f in r.findings] == ["gcc-12"]


def test_rule_targets_and_profiles_skip(policy_of) -> None:  # type: ignore[no-untyped-def]
    policy = policy_of(
        'rule R-1 "t" {\n  targets recipe\n  require true\n}\n'
        'rule R-2 "t" {\n  require false\n}\nprofile p {\n  disable R-2 "not here"\n}\n',
        profiles=("p",),
    )
    results = evaluate(policy, facts()).results
    assert [(r.status, r.reasons) for r in results] == [
        (Status.SKIPPED, ("applies to recipe only",)),
        (Status.SKIPPED, ("disabled by profile p: not here",)),
    ]


def test_default_message_names_the_expression_and_bindings(policy_of) -> None:  # type: ignore[no-untyped-def]
    r = run(policy_of, "all f in files: not f.is_elf")
    assert r.findings[0].message == "requirement not met: all f in files: not f.is_elf (f = /usr/bin/gcc-12)"
    assert r.findings[0].location == "root:/usr/bin/gcc-12"


def test_exit_codes(policy_of) -> None:  # type: ignore[no-untyped-def]
    policy = policy_of(
        'rule R-1 "t" {\n  severity low\n  require false\n}\n'
        'rule R-2 "t" {\n  severity high\n  require verity.root_hash == "x"\n}\n'
    )
    report = evaluate(policy, facts())
    assert report.exit_code("low", "fail") == 1
    assert report.exit_code("medium", "warn") == 0  # low failure below threshold, unknown only warns
    assert report.exit_code("medium", "fail") == 1  # the high rule is unknown
    assert report.exit_code("critical", "fail") == 0


def test_matches_runs_in_linear_time_on_text_an_image_chose() -> None:
    """`^(a+)+$` backtracks exponentially in Python's re: thirty `a`s and a `!` would not end. Run apart so
    that a regression fails instead of hanging the suite."""
    import subprocess
    import sys

    code = (
        "from cvmlint.policy.evaluator import compare as c\n"
        "print(c('matches', 'a' * 100_000 + '!', '^(a+)+$'), c('glob', 'a' * 100_000 + '!', '*a*a*a*a*a*b'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["False", "False"], proc.stderr


def test_pending_facts_are_waited_for_after_the_rules_that_do_not_read_them(policy_of, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A scan's slow facts come as calls: each is made once, after every rule that names none of the
    pending facts and before the first that does (in a message too); the verdicts and their order are
    those of the complete facts."""
    policy = policy_of(
        'rule A-1 "kernel" {\n  severity high\n  require kernel.version == "6.1"\n}\n'
        'rule A-2 "packages" {\n  severity high\n  require none p in packages: p.name == "apt"\n}\n'
        'rule A-3 "verity" {\n  severity high\n  require verity.tree_valid\n}\n'
        'rule A-4 "message" {\n  severity high\n  require rootfs.read_only else "{kernel.version}"\n}\n'
        'rule A-5 "files" {\n  severity high\n  require none f in files: f.is_elf\n}\n'
    )
    complete = facts()
    calls: list[str] = []
    done: list[str] = []

    def later(name: str) -> Any:
        def get() -> Any:
            calls.append(name)
            done.append(f"{name} after {len(seen)} rules")
            return getattr(complete, name)

        return get

    seen: list[str] = []
    import cvmlint.policy.evaluator as evaluator

    original = evaluator.evaluate_rule

    def counting(ev, rule, *args):  # type: ignore[no-untyped-def]
        seen.append(rule.id)
        return original(ev, rule, *args)

    pending = facts(kernel=Unknown("still being read"), verity=Unknown("still being read"))
    monkeypatch.setattr(evaluator, "evaluate_rule", counting)
    report = evaluate(
        policy, pending, later={"kernel": later("kernel"), "boot": later("boot"), "verity": later("verity")}
    )  # no rule reads boot: it is never waited for
    monkeypatch.undo()
    assert calls == ["kernel", "verity"]
    assert seen[:2] == ["A-2", "A-5"] and done == ["kernel after 2 rules", "verity after 4 rules"]
    expected = evaluate(policy, complete)
    assert [(r.rule_id, r.status, r.findings) for r in report.results] == [
        (r.rule_id, r.status, r.findings) for r in expected.results
    ]
    assert [r.rule_id for r in report.results] == ["A-1", "A-2", "A-3", "A-4", "A-5"]


def test_version_fields_read_from_annotations_agree_with_the_type_hints() -> None:
    from cvmlint.facts.model import RECORD_TYPES, Facts
    from cvmlint.policy.evaluator import _version_fields
    from cvmlint.policy.types import VERSION, record_fields

    for cls in (*RECORD_TYPES, Facts):
        hinted = {n for n, f in record_fields(cls).items() if f.ty.required() == VERSION}
        assert _version_fields(cls) == hinted, cls.__name__
    assert _version_fields(RECORD_TYPES[1]) == {"version"}  # Package: the test sees at least one
