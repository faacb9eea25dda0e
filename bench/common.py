"""What the benchmarks share: timing a command as a user runs it."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""Users run with the bytecode cache, so the benchmarks do too."""


def timed(argv: list[str], ok: tuple[int, ...] = (0,)) -> float:
    """Wall time of one run of `argv` from the repository root; it must exit with a code in `ok`."""
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, env=ENV)
    elapsed = time.perf_counter() - start
    assert proc.returncode in ok, proc.stderr.decode()[-400:]
    return elapsed


def side_by_side(commands: dict[str, list[str]], runs: int, ok: tuple[int, ...] = (0,)) -> dict[str, float]:
    """The median wall time of each command, run alternately `runs` times after one warm-up run each."""
    import statistics

    for argv in commands.values():
        timed(argv, ok)
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, argv in commands.items():
            times[label].append(timed(argv, ok))
    return {label: statistics.median(t) for label, t in times.items()}


def images_given(items: list[str]) -> dict[str, Path]:
    """--image NAME=PATH arguments."""
    return {name: Path(path) for name, path in (item.split("=", 1) for item in items)}
