"""The README's console examples are what the commands print: each runs on what the repository ships
(the image of the scan example is one the tests build; the build example is checked by the heavy build
test) and its output is compared with the example, modulo digests and times (tests/readme.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.readme import Example, console_examples, matches

EXAMPLES = console_examples(ROOT / "README.md")
NEEDS_IMAGE = "cvmlint scan hardened-grub.raw"
NEEDS_BUILD = "cvmlint build"
NEEDS_BOOT = "cvmlint boot"
"""Checked by the heavy build test, on the image it built."""


def run_example(example: Example, cwd: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "GITHUB_STEP_SUMMARY")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    proc = subprocess.run(["sh", "-c", example.command], cwd=cwd, capture_output=True, text=True, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout.splitlines()


def check(example: Example, cwd: Path) -> None:
    actual = run_example(example, cwd)
    assert matches(example.expected, actual), (
        f"README.md:{example.line}: `{example.command}` prints otherwise; it prints:\n" + "\n".join(actual)
    )


def test_the_readme_has_console_examples() -> None:
    commands = [e.command for e in EXAMPLES]
    assert any(c.startswith("cvmlint lint") for c in commands)
    assert NEEDS_IMAGE in commands and any(c.startswith(NEEDS_BUILD) for c in commands)


@pytest.mark.parametrize(
    "example",
    [e for e in EXAMPLES if e.command != NEEDS_IMAGE and not e.command.startswith((NEEDS_BUILD, NEEDS_BOOT))],
    ids=lambda e: f"line {e.line}",
)
def test_a_console_example_prints_what_the_readme_shows(example: Example) -> None:
    check(example, ROOT)


@pytest.mark.slow
def test_the_scan_example_prints_what_the_readme_shows(tmp_path: Path) -> None:
    from tests import images

    (tmp_path / "hardened-grub.raw").symlink_to(images.hardened())
    check(next(e for e in EXAMPLES if e.command == NEEDS_IMAGE), tmp_path)


def test_the_comparison_ignores_only_what_it_should() -> None:
    shown = ("head", "…", "kernel 6.1.0-…-cloud (93 s, sha256 0123456789abcdef)", "tail")
    assert matches(shown, ["head", "x", "y", "kernel 6.1.0-57-cloud (4 s, sha256 fedcba9876543210)", "tail"])
    assert matches(shown, ["head", "kernel 6.1.0-1-cloud (0.5 s, sha256 0123456789abcdef)", "tail"])
    assert not matches(shown, ["head", "kernel 6.1.0-57-cloud (93 s, sha256 0123456789abcdef)", "tail", "more"])
    assert not matches(shown, ["head", "kernel 6.2.0-57-cloud (93 s, sha256 0123456789abcdef)", "tail"])
    assert not matches(("19 pass, 5 skipped",), ["20 pass, 6 skipped"])
