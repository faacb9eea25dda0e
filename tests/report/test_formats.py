"""The CI formats on real runs: SARIF (validated against the SARIF 2.1.0 schema and GitHub's rules),
GitHub workflow commands with the step summary, JUnit, GitLab Code Quality, the text view, and several
formats from one run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from tests.conftest import ROOT

SCHEMA = ROOT / "tests/data/sarif-schema-2.1.0.json"
IMAGE_FACTS = ROOT / "policies/tests/facts/hardened-image.json"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repository's recipes and policies whose cvmlint.toml does not map the mkosi profile dev
    to the policy profile dev: `--mkosi-profile dev` then fails production, as a PR adding SSH would."""
    for name in ("recipes", "patches", "policies"):
        shutil.copytree(ROOT / name, tmp_path / name, symlinks=True, ignore=shutil.ignore_patterns("upstream"))
    text = (ROOT / "cvmlint.toml").read_text()
    (tmp_path / "cvmlint.toml").write_text(text.split("[mkosi-profile-implies]")[0])
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


def cvmlint(cwd: Path, *args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "cvmlint", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def schema_errors(log: Any) -> list[str]:
    """What the official SARIF 2.1.0 schema (OASIS errata 01, draft-04, formats checked) finds wrong."""
    import jsonschema

    validator = jsonschema.Draft4Validator(json.loads(SCHEMA.read_text()), format_checker=jsonschema.FormatChecker())
    return [error.message for error in validator.iter_errors(log)]


def validate_sarif(log: dict[str, Any]) -> None:
    """The SARIF 2.1.0 schema, and what GitHub code scanning asks beyond it."""
    assert schema_errors(log) == []
    assert len(log["runs"]) <= 20
    ids = [run["automationDetails"]["id"] for run in log["runs"]]
    assert len(ids) == len(set(ids))
    for run in log["runs"]:
        rules = run["tool"]["driver"]["rules"]
        assert len(rules) <= 25_000 and len(run["results"]) <= 25_000
        for rule in rules:
            assert len(rule["properties"]["tags"]) <= 20
            assert 0.1 <= float(rule["properties"]["security-severity"]) <= 10.0
            assert rule["helpUri"].startswith("https://") and rule["help"]["markdown"]
        for result in run["results"]:
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
            assert result["level"] in ("error", "warning", "note", "none")
            assert len(result.get("locations", [])) <= 1000
            for location in result.get("locations", []):
                uri = location["physicalLocation"]["artifactLocation"]["uri"]
                assert not uri.startswith("/") and ".." not in uri.split("/")
                region = location["physicalLocation"].get("region")
                assert region is None or region["startLine"] >= 1


def test_the_sarif_schema_rejects_what_is_not_sarif(project: Path) -> None:
    """A negative control: the schema the tests validate with refuses a wrong version, a result without
    its message, an unknown property and a level SARIF does not have; a real log passes."""
    import copy

    log = json.loads(cvmlint(project, "lint", "--mkosi-profile", "dev", "recipes/tdx-base", "-f", "sarif").stdout)
    assert schema_errors(log) == []
    assert json.loads(SCHEMA.read_text())["id"].endswith("/errata01/os/schemas/sarif-schema-2.1.0.json")
    damages: tuple[Callable[[dict[str, Any]], object], ...] = (
        lambda d: d.update(version="9.9"),
        lambda d: d["runs"][0]["results"][0].pop("message"),
        lambda d: d["runs"][0].update(surprise=True),
        lambda d: d["runs"][0]["results"][0].update(level="fatal"),
        lambda d: d.pop("runs"),
    )
    broken = []
    for damage in damages:
        bad = copy.deepcopy(log)
        damage(bad)
        broken.append(bool(schema_errors(bad)))
    assert broken == [True] * 5


def openssh_result(log: dict[str, Any]) -> dict[str, Any]:
    run = log["runs"][0]
    return next(r for r in run["results"] if r["ruleId"] == "CVM-PKG-004")


def test_sarif_of_a_pull_request_lint_lands_on_the_changed_line(project: Path) -> None:
    proc = cvmlint(project, "lint", "--mkosi-profile", "dev", "recipes/tdx-base", "-f", "sarif")
    assert proc.returncode == 1
    log = json.loads(proc.stdout)
    validate_sarif(log)
    result = openssh_result(log)
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "recipes/common/mkosi.profiles/dev.conf", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 5}
    assert result["level"] == "error" and "openssh-server" in result["message"]["text"]
    rule = log["runs"][0]["tool"]["driver"]["rules"][result["ruleIndex"]]
    assert rule["properties"]["security-severity"] == "9.5" and rule["defaultConfiguration"]["level"] == "error"
    unknown = [r for r in log["runs"][0]["results"] if r["level"] == "note"]
    assert unknown == []  # the recipe's kernel facts are known through cvmlint.toml


def test_a_finding_moved_by_an_unrelated_edit_keeps_its_fingerprint(project: Path) -> None:
    before = openssh_result(
        json.loads(cvmlint(project, "lint", "--mkosi-profile", "dev", "recipes/tdx-base", "-f", "sarif").stdout)
    )
    conf = project / "recipes/common/mkosi.profiles/dev.conf"
    conf.write_text("# an unrelated comment\n# and another\n" + conf.read_text())
    after = openssh_result(
        json.loads(cvmlint(project, "lint", "--mkosi-profile", "dev", "recipes/tdx-base", "-f", "sarif").stdout)
    )
    assert after["locations"][0]["physicalLocation"]["region"]["startLine"] == 7
    assert after["partialFingerprints"] == before["partialFingerprints"]


def test_sarif_of_an_image_with_waivers_and_unknowns(tmp_path: Path) -> None:
    waivers = tmp_path / "w.toml"
    waivers.write_text(
        '[[waiver]]\nrule = "CVM-PKG-001"\nreason = "reviewed in ticket 42"\n'
        'approver = "alice@example.com"\nexpires = 2099-01-01\n'
    )
    facts = json.loads(IMAGE_FACTS.read_text())
    facts["facts"]["packages"]["items"].append(
        {
            "name": "htop",
            "version": "3.3.0-4",
            "origin": "dpkg",
            "where": {"partition": "root", "file": "/var/lib/dpkg/status", "line": 900},
        }
    )
    facts["facts"]["verity"] = {"unknown": "not computed: --no-verity"}
    (tmp_path / "f.json").write_text(json.dumps(facts))
    proc = cvmlint(tmp_path, "check", "f.json", "--profile", "tdx-base", "--waivers", waivers, "-f", "sarif")
    log = json.loads(proc.stdout)
    validate_sarif(log)
    run = log["runs"][0]
    assert run["artifacts"][0]["location"]["uri"] == "tdx-base.raw"
    assert run["artifacts"][0]["hashes"]["sha-256"] == "ab" * 32
    htop = next(r for r in run["results"] if r["ruleId"] == "CVM-PKG-001")
    assert htop["locations"][0]["logicalLocations"] == [
        {"fullyQualifiedName": "root:/var/lib/dpkg/status:900", "kind": "resource"}
    ]
    assert htop["suppressions"][0]["status"] == "accepted"
    assert "reviewed in ticket 42 (approved by alice@example.com" in htop["suppressions"][0]["justification"]
    notes = [r for r in run["results"] if r["level"] == "note" and r["ruleId"] == "CVM-VER-001"]
    assert notes and "not computed: --no-verity" in notes[0]["message"]["text"]


def test_github_annotations_cap_and_step_summary(project: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    conf = project / "recipes/common/mkosi.conf"
    conf.write_text(
        conf.read_text().replace(
            "        tzdata\n", "        tzdata\n" + "".join(f"        extra-{i}\n" for i in range(14))
        )
    )
    proc = cvmlint(project, "lint", "recipes/tdx-base", "-f", "github", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 1
    errors = [line for line in proc.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 10
    assert errors[0].startswith("::error file=recipes/common/mkosi.conf,line=")
    assert ",title=CVM-PKG-001 (high)::package extra-0 is not on the allowlist" in errors[0]
    assert any(
        line.startswith("::notice title=cvmlint::4 more findings are not annotated")
        for line in proc.stdout.splitlines()
    )
    table = summary.read_text()
    assert table.count("| error | CVM-PKG-001 |") == 14 and "recipe `recipes/tdx-base`" in table


def test_junit_and_gitlab(project: Path) -> None:
    proc = cvmlint(
        project,
        "lint",
        "--mkosi-profile",
        "dev",
        "-f",
        "junit",
        "-o",
        "r.xml",
        "-f",
        "gitlab",
        "-o",
        "cq.json",
        "-f",
        "text",
    )
    assert proc.returncode == 1
    assert "FAIL    CVM-PKG-004  critical" in proc.stdout and "\x1b[" not in proc.stdout  # the text view
    suites = ET.parse(project / "r.xml").getroot()
    assert [s.get("name") for s in suites] == [
        f"recipe recipes/{n}" for n in ("tdx-base", "tdx-gpu", "sev-snp-base", "sev-snp-gpu")
    ]
    first = suites[0]
    assert first.get("tests") == "28" and first.get("failures") == "2" and first.get("skipped") == "6"
    failing = [c for c in first if c.find("failure") is not None]
    assert {(c.get("name") or "").split()[0] for c in failing} == {"CVM-PKG-001", "CVM-PKG-004"}
    failure = failing[1].find("failure")
    assert failure is not None and "at recipes/common/mkosi.profiles/dev.conf:5" in (failure.text or "")
    issues = json.loads((project / "cq.json").read_text())
    assert {i["check_name"] for i in issues} == {"CVM-PKG-001", "CVM-PKG-004"}
    ssh = next(i for i in issues if i["check_name"] == "CVM-PKG-004")
    assert ssh["severity"] == "blocker"
    assert ssh["location"] == {"path": "recipes/common/mkosi.profiles/dev.conf", "lines": {"begin": 5}}
    # the shared dev.conf's findings are the same in the four recipes: one issue each
    assert len(issues) == 6 and len({i["fingerprint"] for i in issues}) == 6
