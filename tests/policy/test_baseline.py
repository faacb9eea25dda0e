"""The shipped default policy: it loads under every profile and its fixtures pass and cover it."""

from __future__ import annotations

from cvmlint._resources import default_policy_path, policies_dir
from cvmlint.policy import load_policy
from cvmlint.policy.testing import run_fixture_dir

REQUIRED_RULES = {
    "CVM-PKG-001",
    "CVM-PKG-002",
    "CVM-PKG-003",
    "CVM-PKG-004",
    "CVM-PKG-005",
    "CVM-PKG-006",
    "CVM-FS-001",
    "CVM-FS-002",
    "CVM-FS-003",
    "CVM-VER-001",
    "CVM-VER-002",
    "CVM-BOOT-001",
    "CVM-BOOT-002",
    "CVM-KERN-001",
    "CVM-KERN-002",
    "CVM-KERN-003",
    "CVM-KERN-004",
}


def test_default_policy_loads_under_every_profile_without_warnings() -> None:
    policy = load_policy(default_policy_path())
    assert policy.warnings == []
    assert {r.id for r in policy.rules} >= REQUIRED_RULES
    assert set(policy.available_profiles) == {"tdx-base", "tdx-gpu", "sev-snp-base", "sev-snp-gpu", "dev"}
    for name in policy.available_profiles:
        assert load_policy(default_policy_path(), [name]).profiles == (name,)


def test_every_rule_has_rationale_remediation_and_references() -> None:
    for rule in load_policy(default_policy_path()).rules:
        assert rule.rationale and rule.remediation and rule.references, rule.id


def test_fixtures_pass_and_every_rule_has_pass_fail_and_unknown_cases() -> None:
    summary = run_fixture_dir(policies_dir() / "tests")
    assert summary.failed == [], summary.render()
    assert summary.uncovered("pass") == []
    assert summary.uncovered("fail") == []
    assert summary.uncovered("unknown") == []
    assert summary.exit_code(strict=True) == 0


def test_variant_profiles_select_their_allowlists() -> None:
    gpu = load_policy(default_policy_path(), ["tdx-gpu"]).lets["allowed"]
    base = load_policy(default_policy_path(), ["tdx-base"]).lets["allowed"]
    assert gpu.permits("nvidia-utils-550-server", check_version=False) is True
    assert base.permits("nvidia-utils-550-server", check_version=False) is False
    assert base.permits("libtdx-attest", check_version=False) is True
    snp = load_policy(default_policy_path(), ["sev-snp-base"]).lets["allowed"]
    assert snp.permits("libtdx-attest", check_version=False) is False
    assert snp.permits("snpguest", check_version=False) is True
