#!/usr/bin/env python3
"""`cvmlint lint` figure of issue 5, side by side in one run.

`cvmlint lint` of the four shipped recipes (no argument: cvmlint.toml's list), wall time including
interpreter start-up, next to `python3 -c pass` on the same interpreter: median of --runs each
(goal: lint <= 0.25 s).

Usage: python3 bench/lint.py [--runs 11]   (from the repository root, cvmlint installed)
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import timed

CVMLINT = str(Path(sys.executable).parent / "cvmlint")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    timed([CVMLINT, "lint"])  # warm the page cache and the bytecode cache
    base, lint = [], []
    for _ in range(args.runs):
        base.append(timed([sys.executable, "-c", "pass"]))
        lint.append(timed([CVMLINT, "lint"]))
    a, b = statistics.median(base), statistics.median(lint)
    print(
        f"python3 -c pass {a * 1000:.1f} ms; cvmlint lint (4 recipes) {b * 1000:.1f} ms "
        f"(median of {args.runs}, best {min(lint) * 1000:.1f} ms); goal <= 250 ms"
    )


if __name__ == "__main__":
    main()
