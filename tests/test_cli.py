"""The CLI in-process: commands, formats, exit codes, errors without tracebacks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from cvmlint import __version__
from cvmlint.commands.common import OutputFormat, reporter_for
from cvmlint.facts import Items, Package, Provenance, load_facts_file
from cvmlint.facts.model import DebVersion
from cvmlint.policy import evaluate, load_policy
from tests.conftest import ROOT, run_cli

IMAGE = ROOT / "policies/tests/facts/hardened-image.json"


cli = run_cli


def variant(tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    doc = json.loads(IMAGE.read_text())
    change(doc["facts"])
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(doc))
    return path


def test_version(capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli(capsys, "--version") == (0, f"cvmlint {__version__}\n", "")


def test_policy_check_of_the_shipped_policies(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli(capsys, "policy", "check", str(ROOT / "policies"))
    assert code == 0 and err == ""
    assert "ok: policy cvm-baseline 1.0, 28 rules, 5 profiles" in out


def test_policy_check_reports_like_a_compiler(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.cvmp"
    bad.write_text('policy "b" version "1"\nrule R-1 "t" {\n  require rootfs.fromat == "erofs"\n}\n')
    code, out, err = cli(capsys, "policy", "check", str(bad))
    assert code == 2 and out == ""
    assert f"{bad}:3:18: error: unknown fact 'rootfs.fromat'; did you mean 'rootfs.format'?" in err
    assert err.splitlines()[2].endswith("^^^^^^")
    assert "Traceback" not in err


def test_policy_check_of_an_empty_dir(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(capsys, "policy", "check", str(tmp_path))
    assert code == 2 and "no *.cvmp policy files" in err


def test_policy_explain(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(capsys, "policy", "explain", "CVM-FS-001")
    assert code == 0
    assert out.startswith("CVM-FS-001: Root file system is read-only erofs\n  severity:    critical")
    assert "reads on image: rootfs.format, rootfs.partition, rootfs.read_only" in out
    code, _, err = cli(capsys, "policy", "explain", "CVM-FS-01")
    assert code == 2 and "Tip: did you mean CVM-FS-001?" in err


def test_policy_facts_lists_the_catalogue(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(capsys, "policy", "facts")
    assert code == 0
    assert "packages[…].version" in out and "kernel.contains(str)" in out


def test_policy_test(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(capsys, "policy", "test", "--strict")
    assert code == 0 and "79 of 79 cases passed" in out


def test_policy_test_reports_a_failing_case(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "facts").mkdir()
    (tmp_path / "facts/f.json").write_text(IMAGE.read_text())
    (tmp_path / "t.toml").write_text(
        f'policy = "{ROOT}/policies/cvm-baseline.cvmp"\nbase = "facts/f.json"\n'
        '[[case]]\nname = "wrong on purpose"\nexpect = { "CVM-FS-001" = "fail" }\n'
    )
    code, out, _ = cli(capsys, "policy", "test", str(tmp_path))
    assert code == 1 and "FAIL t.toml: wrong on purpose" in out and "CVM-FS-001: expected fail, got pass" in out


def test_facts_summary_and_json(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(capsys, "facts", str(IMAGE))
    assert code == 0 and "packages     13 items from root:/var/lib/dpkg/status" in out
    code, out, _ = cli(capsys, "facts", str(IMAGE), "--json")
    assert code == 0 and json.loads(out) == json.loads(IMAGE.read_text())


def test_check_passes_the_hardened_image(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(capsys, "check", str(IMAGE), "--profile", "tdx-base")
    assert code == 0 and "25 pass, 3 skipped; exit 0" in out


def test_check_fails_with_locations(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = variant(tmp_path, lambda f: f["rootfs"].update(format="ext4"))
    code, out, _ = cli(capsys, "check", str(path), "--profile", "tdx-base", "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["schema"] == "cvmlint.results/1" and doc["exit_code"] == 1
    fs = next(r for r in doc["results"] if r["rule"] == "CVM-FS-001")
    assert fs["status"] == "fail" and fs["findings"][0]["message"] == "root file system is ext4 on root"


def test_unknown_fails_by_default_and_warn_lets_it_pass(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = variant(tmp_path, lambda f: f.update(verity={"unknown": "not computed: --no-verity"}))
    assert cli(capsys, "check", str(path), "--profile", "tdx-base")[0] == 1
    assert cli(capsys, "check", str(path), "--profile", "tdx-base", "--unknown", "warn")[0] == 0


def test_fail_on_threshold(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = variant(tmp_path, lambda f: f["verity"].update(uuids_match=False))  # CVM-VER-003 is low
    assert cli(capsys, "check", str(path), "--profile", "tdx-base")[0] == 1
    assert cli(capsys, "check", str(path), "--profile", "tdx-base", "--fail-on", "medium")[0] == 0


def test_output_file_and_waivers(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = variant(tmp_path, lambda f: f["verity"].update(uuids_match=False))
    waivers = tmp_path / "w.toml"
    waivers.write_text(
        '[[waiver]]\nrule = "CVM-VER-003"\nreason = "legacy partitioning"\n'
        'approver = "sec@example.com"\nexpires = 2999-01-01\n'
    )
    out_file = tmp_path / "report.json"
    code, out, _ = cli(
        capsys,
        "check",
        str(path),
        "--profile",
        "tdx-base",
        "-f",
        "json",
        "--waivers",
        str(waivers),
        "-o",
        str(out_file),
    )
    assert code == 0 and out == ""
    doc = json.loads(out_file.read_text())
    ver = next(r for r in doc["results"] if r["rule"] == "CVM-VER-003")
    assert ver["status"] == "waived" and "sec@example.com" in ver["note"]


@pytest.mark.parametrize("content", [b"\x00\x01garbage", b'{"schema": "cvmlint.facts/1", "target": 3}'])
def test_malformed_input_is_exit_2_without_traceback(capsys, tmp_path: Path, content: bytes) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    code, out, err = cli(capsys, "check", str(bad))
    assert code == 2 and out == "" and "Traceback" not in err and str(bad) in err


def test_usage_errors_are_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli(capsys, "check", str(IMAGE), "--format", "xml")[0] == 2
    assert cli(capsys, "check", str(IMAGE), "--profile", "nope")[0] == 2
    assert cli(capsys, "check", "/nonexistent.json")[0] == 2


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_every_output_format_renders(fmt: OutputFormat) -> None:
    policy = load_policy(ROOT / "policies/cvm-baseline.cvmp", ["tdx-base"])
    facts = load_facts_file(IMAGE)
    htop = Package(
        name="htop",
        version=DebVersion("3.3.0-4"),
        where=Provenance(partition="root", file="/var/lib/dpkg/status", line=9),
    )
    assert isinstance(facts.packages, Items)
    packages = Items([*facts.packages, htop])
    report = evaluate(policy, dataclasses.replace(facts, packages=packages))
    text = reporter_for(fmt, color=False).render(report, 1)
    assert "CVM-PKG-001" in text and "htop" in text
