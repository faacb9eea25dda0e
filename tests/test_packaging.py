"""The wheel carries grammar/ and policies/: installed into a fresh venv, it works outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)], check=True, cwd=tmp_path
    )
    wheels = list(dist.glob("cvmlint-*.whl"))
    assert len(wheels) == 1
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, str(wheels[0])], check=True, cwd=tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    cvmlint = str(venv / "bin/cvmlint")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cvmlint, *args], cwd=outside, env=env, capture_output=True, text=True)

    where = subprocess.run(
        [str(venv / "bin/python"), "-c", "import cvmlint; print(cvmlint.__file__)"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(venv)), where
    check = run("policy", "check")
    assert check.returncode == 0, check.stderr
    assert "ok: policy cvm-baseline 1.0" in check.stdout
    tests = run("policy", "test", "--strict")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert run("--version").stdout.strip().startswith("cvmlint ")
