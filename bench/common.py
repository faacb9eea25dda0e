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
