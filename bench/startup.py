#!/usr/bin/env python3
"""Start-up figures of issue 2, side by side in one run.

Measures the wall time (median of N runs) of:
  python3 -c pass                       the floor
  python3 -c "import argparse"          what an argparse CLI pays
  cvmlint --version
  cvmlint policy check policies/        goal: <= 0.25 s
and, inside one process after the imports, load_policy() of the default policy (parse + check +
data files; goal <= 50 ms): the first call, including loading the cached LALR grammar, and the
median of later calls.

Usage: python3 bench/startup.py [--runs N] [--cvmlint PATH]
Byte code is allowed (PYTHONDONTWRITEBYTECODE is dropped, one warm-up run writes the .pyc files),
as a pip-installed cvmlint has it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

IN_PROCESS = """
import time, statistics
import lark, cvmlint.policy.parser
from cvmlint.policy.loader import load_policy
from cvmlint._resources import default_policy_path
path = default_policy_path()
t = time.perf_counter(); cvmlint.policy.parser._parser(); load_policy(path); cold = time.perf_counter() - t
warm = []
for _ in range(20):
    t = time.perf_counter(); load_policy(path); warm.append(time.perf_counter() - t)
print(cold, statistics.median(warm))
"""


def wall(cmd: list[str], runs: int) -> tuple[float, float]:
    """(median, minimum) wall time; the minimum is the least disturbed by other load on the machine."""
    subprocess.run(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm-up, writes .pyc
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    beside = Path(sys.executable).parent / "cvmlint"  # not a pyenv shim: those add ~100 ms of bash
    parser.add_argument("--cvmlint", default=str(beside) if beside.exists() else shutil.which("cvmlint"))
    args = parser.parse_args()
    python = sys.executable
    rows = [
        ("python3 -c pass", [python, "-c", "pass"]),
        ("python3 -c 'import argparse'", [python, "-c", "import argparse"]),
        ("cvmlint --version", [args.cvmlint, "--version"]),
        ("cvmlint policy check policies/", [args.cvmlint, "policy", "check", str(ROOT / "policies")]),
    ]
    floor = None
    print(f"{'command':40} {'median':>9} {'min':>9} {'median vs python':>17}   ({args.runs} runs each)")
    for label, cmd in rows:
        t, low = wall(cmd, args.runs)
        floor = floor or t
        print(f"{label:40} {t * 1000:6.1f} ms {low * 1000:6.1f} ms {t / floor:16.2f}x")
    out = subprocess.run([python, "-c", IN_PROCESS], env=ENV, capture_output=True, text=True, check=True)
    cold, warm = (float(x) for x in out.stdout.split())
    print(f"{'load_policy(default), first call':40} {cold * 1000:7.1f} ms")
    print(f"{'load_policy(default), later calls':40} {warm * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
