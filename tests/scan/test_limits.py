"""The resource budget as a user meets it: a limit lowered below a real image's value refuses it by
name, a raised one lets it through, cvmlint.toml's [limits] applies unless the command line says
otherwise, and a run past its wall-clock budget leaves unknowns that say so."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cvmlint import limits
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def cvmlint(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "cvmlint", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300
    )
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_a_lowered_limit_refuses_a_real_image_by_name(hardened_grub: Path) -> None:
    proc = cvmlint("--limit", "gpt-entries=64", "scan", "--no-verity", hardened_grub)
    assert proc.returncode == 2
    assert "128 (GPT partition entries) is over the limit gpt-entries = 64" in proc.stderr
    assert cvmlint("--limit", "gpt-entries=128", "scan", "--no-verity", hardened_grub).returncode in (0, 1)


def test_project_limits_apply_and_the_command_line_wins(tmp_path: Path) -> None:
    for name in ("recipes", "policies", "patches"):
        shutil.copytree(ROOT / name, tmp_path / name, symlinks=True)
    text = (ROOT / "cvmlint.toml").read_text() + "\n[limits]\nrecipe-packages = 5\n"
    (tmp_path / "cvmlint.toml").write_text(text)
    proc = cvmlint("lint", "recipes/tdx-base", cwd=tmp_path)
    assert proc.returncode == 1 and "over the limit recipe-packages = 5" in proc.stdout
    assert cvmlint("--limit", "recipe-packages=20000", "lint", "recipes/tdx-base", cwd=tmp_path).returncode == 0
    (tmp_path / "cvmlint.toml").write_text(text.replace("recipe-packages", "recipe-packagez"))
    proc = cvmlint("lint", "recipes/tdx-base", cwd=tmp_path)
    assert proc.returncode == 2 and "no limit named 'recipe-packagez'" in proc.stderr


def test_the_wall_clock_budget_makes_unfinished_facts_unknown(hardened_grub: Path) -> None:
    from cvmlint.policy import evaluate, load_policy
    from cvmlint.scan import ScanOptions, scan_image

    policy = load_policy(ROOT / "policies/cvm-baseline.cvmp", ["tdx-base"])
    try:
        limits.configure({"timeout": 1}, "test")
        limits._deadline = time.monotonic() - 1  # the budget is spent before the walk starts
        with scan_image(hardened_grub, ScanOptions(verity=False)) as facts:
            report = evaluate(policy, facts)
    finally:
        limits._values.clear()
        limits._deadline = 0.0
    setuid = next(r for r in report.results if r.rule_id == "CVM-FS-004")  # walks every file of the root
    assert setuid.status.value == "unknown"
    assert any("passed its wall-clock budget of 1 s" in reason for reason in setuid.reasons), setuid.reasons


def test_limits_lists_every_limit() -> None:
    out = cvmlint("limits").stdout
    assert all(name in out for name in limits.TABLE) and "largest seen" in out
