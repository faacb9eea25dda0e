"""`cvmlint lint` end to end: the four shipped recipes pass; the dev profile fails production; a
recipe that breaks a rule fails it at the line that declares the breach."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

RECIPES = ["tdx-base", "tdx-gpu", "sev-snp-base", "sev-snp-gpu"]
IMAGE_ONLY = {"CVM-FS-004", "CVM-VER-003", "CVM-BOOT-003", "CVM-BOOT-005", "CVM-KERN-005", "CVM-BUILD-003"}


def lint(*args: str, cwd: Path = ROOT) -> tuple[int, Any, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "cvmlint", "lint", "--format", "json", *args], cwd=cwd, capture_output=True, text=True
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None, proc.stderr


def by_rule(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["rule"]: r for r in report["results"]}


def locations(result: dict[str, Any]) -> list[str]:
    return [f"{f['message']} @ {f.get('location', '')}" for f in result["findings"]]


def test_the_shipped_recipes_pass() -> None:
    code, reports, err = lint()
    assert code == 0, err
    assert [r["target"]["name"] for r in reports] == [f"recipes/{n}" for n in RECIPES]
    for report in reports:
        results = by_rule(report)
        assert {k for k, r in results.items() if r["status"] == "skipped"} == IMAGE_ONLY
        assert all(r["reasons"] == ["applies to image only"] for k, r in results.items() if k in IMAGE_ONLY)
        assert {r["status"] for k, r in results.items() if k not in IMAGE_ONLY} == {"pass"}
    assert err == ""  # no warnings either


def test_the_dev_mkosi_profile_implies_the_dev_policy_profile() -> None:
    """cvmlint.toml maps the mkosi profile `dev` to the policy profile `dev`, added to the recipe's `tdx-base`."""
    code, report, err = lint("--mkosi-profile", "dev", "recipes/tdx-base")
    assert code == 0, err
    assert report["policy"]["profiles"] == ["tdx-base", "dev"]
    assert by_rule(report)["CVM-PKG-004"]["status"] == "skipped"


def test_dev_content_fails_production_without_the_implied_profile(project: Path) -> None:
    code, report, _ = lint("--mkosi-profile", "dev", "recipes/tdx-base", cwd=project)
    assert code == 1
    assert report["policy"]["profiles"] == ["tdx-base"]
    results = by_rule(report)
    line = next(
        n
        for n, text in enumerate((ROOT / "recipes/common/mkosi.profiles/dev.conf").read_text().splitlines(), start=1)
        if "openssh-server" in text
    )
    assert locations(results["CVM-PKG-004"]) == [
        f"SSH server package openssh-server is installed @ recipes/common/mkosi.profiles/dev.conf:{line}"
    ]
    assert (
        f"package openssh-server is not on the allowlist @ recipes/common/mkosi.profiles/dev.conf:{line}"
        in locations(results["CVM-PKG-001"])
    )
    code, report, _ = lint("--mkosi-profile", "dev", "--profile", "dev", "recipes/tdx-base", cwd=project)
    assert code == 0 and report["policy"]["profiles"] == ["tdx-base", "dev"]  # --profile adds, never replaces


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repository's recipes, patches and cvmlint.toml, to break one thing at a time."""
    for rel in ("recipes/common", "recipes/tdx-base", "patches"):
        shutil.copytree(ROOT / rel, tmp_path / rel, symlinks=True, ignore=shutil.ignore_patterns("upstream", "*.sh"))
    (tmp_path / "cvmlint.toml").write_text(
        '[[recipe]]\npath = "recipes/tdx-base"\nprofiles = ["tdx-base"]\n'
        'patches = "patches"\nkernel-config = "patches/kernel.config"\n'
    )
    return tmp_path


def edit(path: Path, old: str, new: str) -> int:
    """Replace text in a file; the line number where the new text starts."""
    text = path.read_text()
    assert old in text, (path, old)
    text = text.replace(old, new, 1)
    path.write_text(text)
    return text[: text.index(new)].count("\n") + 1


def test_an_ext4_root_fails_at_its_format_line(project: Path) -> None:
    line = edit(project / "recipes/common/mkosi.repart/10-root.conf", "Format=erofs", "Format=ext4")
    code, report, _ = lint(cwd=project)
    assert code == 1
    result = by_rule(report[0] if isinstance(report, list) else report)["CVM-FS-001"]
    assert result["status"] == "fail"
    assert any(loc.endswith(f"@ recipes/common/mkosi.repart/10-root.conf:{line}") for loc in locations(result))


def test_no_verity_pair_fails_verity_rules(project: Path) -> None:
    (project / "recipes/common/mkosi.repart/11-root-verity.conf").unlink()
    code, report, err = lint(cwd=project)
    results = by_rule(report)
    assert code == 1 and results["CVM-VER-001"]["status"] == "fail"
    assert results["CVM-VER-002"]["status"] == "fail"  # no roothash= will be on the command line
    assert "VerityMatchKey=root has 1 Verity=data and 0 Verity=hash" in err


def test_missing_lockdown_fails_at_the_command_line(project: Path) -> None:
    boot = project / "recipes/common/mkosi.conf.d/10-boot.conf"
    edit(boot, " lockdown=integrity", "")
    line = next(n for n, text in enumerate(boot.read_text().splitlines(), 1) if text.startswith("KernelCommandLine="))
    code, report, _ = lint(cwd=project)
    result = by_rule(report)["CVM-BOOT-001"]
    assert code == 1 and result["status"] == "fail"
    assert locations(result) == [
        f"lockdown is none on the kernel command line @ recipes/common/mkosi.conf.d/10-boot.conf:{line}"
    ]


def test_apt_in_packages_fails_at_its_line(project: Path) -> None:
    conf = "recipes/tdx-base/mkosi.conf.d/10-ubuntu.conf"
    line = edit(project / conf, "        trustauthority-cli\n", "        trustauthority-cli\n        apt\n") + 1
    code, report, _ = lint(cwd=project)
    results = by_rule(report)
    assert code == 1
    assert locations(results["CVM-PKG-002"]) == [f"package manager apt is installed (declared) @ {conf}:{line}"]
    assert f"package apt is not on the allowlist @ {conf}:{line}" in locations(results["CVM-PKG-001"])


def test_a_script_that_installs_gcc(project: Path) -> None:
    script = project / "recipes/tdx-base/mkosi.postinst.chroot"
    script.write_text("#!/bin/sh\nset -e\napt-get install -y gcc\n")
    script.chmod(0o755)
    code, report, _ = lint(cwd=project)
    result = by_rule(report)["CVM-PKG-003"]
    assert code == 1 and result["status"] == "fail"
    assert all(loc.endswith("@ recipes/tdx-base/mkosi.postinst.chroot:3") for loc in locations(result))


def test_without_project_entry_the_kernel_rules_say_scan_time(project: Path) -> None:
    (project / "cvmlint.toml").unlink()
    code, report, _ = lint("--profile", "tdx-base", "recipes/tdx-base", cwd=project)
    results = by_rule(report)
    assert code == 1
    assert results["CVM-KERN-001"]["status"] == "unknown"
    assert "cvmlint.toml names no kernel patch series" in " ".join(results["CVM-KERN-001"]["reasons"])
    assert results["CVM-KERN-002"]["status"] == "unknown"
    assert "checked at scan time" in " ".join(results["CVM-KERN-002"]["reasons"])


def test_an_override_that_masks_verity_fails_the_three_critical_rules() -> None:
    """The false pass of issue 9: an image's own 10-root.conf (ext4) beats the shared one, and a symlink to
    /dev/null masks the shared verity partition; systemd-repart builds a writable root without verity."""
    code, report, err = lint("tests/recipe/corpus/repart-override-masked")
    assert code == 1, err
    results = by_rule(report)
    assert {k: results[k]["status"] for k in ("CVM-FS-001", "CVM-VER-001", "CVM-VER-002")} == {
        "CVM-FS-001": "fail",
        "CVM-VER-001": "fail",
        "CVM-VER-002": "fail",
    }
    where = "tests/recipe/corpus/repart-override-masked/mkosi.repart/10-root.conf:3"
    assert locations(results["CVM-FS-001"]) == [
        f"root file system is ext4 on 10-root @ {where}",
        f"root file system ext4 can be mounted read-write @ {where}",
    ]


def test_facts_takes_the_mkosi_command_line() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cvmlint",
            "facts",
            "--json",
            "-d",
            "fedora",
            "-r",
            "42",
            "--architecture",
            "arm64",
            "tests/recipe/corpus/cli-distribution",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)["facts"]
    assert [p["name"] for p in facts["packages"]["items"]] == ["systemd", "fedora-only"]
    assert (facts["os"]["distribution"], facts["os"]["release"], facts["os"]["architecture"]) == (
        "fedora",
        "42",
        "arm64",
    )


def test_warnings_of_a_shared_file_print_once(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes", symlinks=True)
    shutil.copy(ROOT / "cvmlint.toml", tmp_path)
    shutil.copytree(ROOT / "patches", tmp_path / "patches", symlinks=True)
    conf = tmp_path / "recipes/common/mkosi.conf"
    conf.write_text(conf.read_text() + "\n[Notes]\nfree text\n")
    _, _, err = lint(cwd=tmp_path)
    assert err.count("unknown section [Notes]") == 1


def test_an_unpinned_seed_or_source_date_epoch_fails_the_reproducibility_rule(project: Path) -> None:
    conf = project / "recipes/common/mkosi.conf"
    seed = next(line for line in conf.read_text().splitlines() if line.startswith("Seed="))
    edit(conf, seed + "\n", "")
    code, report, _ = lint(cwd=project)
    result = by_rule(report)["CVM-BUILD-002"]
    assert code == 1 and result["status"] == "fail"
    assert [loc.split(" @ ")[0] for loc in locations(result)] == [
        "Seed= is not set: mkosi draws a random seed for every build, so UUIDs, the verity salt and the root hash "
        "change"
    ]
    # mkosi.seed pins it again, as mkosi reads it; Seed=random does not
    (project / "recipes/tdx-base/mkosi.seed").write_text("0e3c1b2a-1111-4222-8333-444455556666\n")
    assert by_rule(lint(cwd=project)[1])["CVM-BUILD-002"]["status"] == "pass"
    (project / "recipes/tdx-base/mkosi.conf").write_text(
        (project / "recipes/tdx-base/mkosi.conf").read_text() + "Seed=random\n"
    )
    assert by_rule(lint(cwd=project)[1])["CVM-BUILD-002"]["status"] == "fail"


def test_source_date_epoch_may_come_from_the_recipes_environment(project: Path) -> None:
    conf = project / "recipes/common/mkosi.conf"
    epoch = next(line for line in conf.read_text().splitlines() if line.startswith("SourceDateEpoch="))
    edit(conf, epoch + "\n", "")
    results = by_rule(lint(cwd=project)[1])
    assert results["CVM-BUILD-002"]["status"] == "fail"
    assert "SourceDateEpoch= is not set" in locations(results["CVM-BUILD-002"])[0]
    edit(conf, "[Content]\n", "[Build]\nEnvironment=SOURCE_DATE_EPOCH=1767225600\n\n[Content]\n")
    assert by_rule(lint(cwd=project)[1])["CVM-BUILD-002"]["status"] == "pass"
