"""The default terminal view: what needs attention, one summary line per target; --verbose for every
rule; colour only on a terminal without NO_COLOR; a narrow terminal does not cut a location."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.report.test_formats import cvmlint, project  # noqa: F401  (the fixture)

LOCATION = "recipes/common/mkosi.profiles/dev.conf:5"


def on_a_terminal(cwd: Path, *args: str, env: dict[str, str]) -> str:
    """Run cvmlint with its output on a pseudo-terminal; what it wrote there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cvmlint", *args],
        cwd=cwd,
        stdout=follower,
        stderr=follower,
        env={**{k: v for k, v in os.environ.items() if k != "NO_COLOR"}, **env},
    )
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=120)
    os.close(leader)
    return out.decode()


def test_four_passing_recipes_print_four_lines() -> None:
    proc = cvmlint(ROOT, "lint")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 4 and all(": PASS " in line for line in lines), proc.stdout
    assert sum(-(-len(line) // 80) for line in lines) <= 24  # one 80×24 screen, wrapped lines included


def test_a_failure_shows_each_finding_once_grouped_by_rule(project: Path) -> None:  # noqa: F811
    proc = cvmlint(project, "lint", "--mkosi-profile", "dev", "recipes/tdx-base")
    assert proc.returncode == 1
    out = proc.stdout
    assert "PASS " not in out.replace(": PASS ", "")  # passing rules are not listed
    assert out.index("CVM-PKG-004") < out.index("openssh-server is installed") < out.index("CVM-PKG-001")
    assert out.count(f"at {LOCATION}\n") == 2  # once under each of the two rules it fails
    assert (
        out.rstrip().splitlines()[-1].strip()
        == "summary: 20 pass, 2 fail, 6 skipped; failing: 1 critical, 1 high; exit 1"
    )
    verbose = cvmlint(project, "lint", "--mkosi-profile", "dev", "--verbose", "recipes/tdx-base").stdout
    assert "PASS    CVM-FS-001" in verbose and "SKIPPED" in verbose.upper()


def test_colour_on_a_terminal_unless_no_color_and_narrow_terminals_keep_locations(project: Path) -> None:  # noqa: F811
    args = ("lint", "--mkosi-profile", "dev", "recipes/tdx-base")
    coloured = on_a_terminal(project, *args, env={"COLUMNS": "40", "TERM": "xterm"})
    assert "\x1b[" in coloured
    plain = on_a_terminal(project, *args, env={"COLUMNS": "40", "TERM": "xterm", "NO_COLOR": "1"})
    assert "\x1b[" not in plain
    assert f"at {LOCATION}\r\n" in plain  # whole, on its own line, though wider than the terminal
