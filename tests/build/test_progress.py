"""Long jobs say what they are doing: off a terminal, each step is a line with the seconds since the job
began; `cvmlint build --setup` says each of its steps."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cvmlint.commands.common import step_display


def test_plain_progress_lines_carry_the_elapsed_time(capsys: pytest.CaptureFixture[str]) -> None:
    with step_display("setup") as progress:
        progress("debootstrap trixie")
        progress("installing mkosi")
    lines = capsys.readouterr().err.splitlines()
    assert [re.sub(r"\[ *\d+\.\d s\]", "[T]", line) for line in lines] == [
        "cvmlint: setup: [T] debootstrap trixie",
        "cvmlint: setup: [T] installing mkosi",
    ]


@pytest.mark.heavy
def test_setup_says_what_it_does(build_root: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cvmlint", "build", "--setup"],
        capture_output=True,
        text=True,
        env={**os.environ, "CVMLINT_CACHE": os.environ["CVMLINT_CACHE"]},
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"cvmlint: setup: \[ *\d+\.\d s\] the tool root .* is made already", done.stderr), done.stderr
    assert done.stdout.startswith("build tool root: ")
