#!/usr/bin/env python3
"""Issue 13 figure: what the resource checks and reader guards cost on real work, side by side.

The same commands run alternately with the code of BASE (before the budget; default 5608fc8) and
of the working tree, from the same virtual environment, median of --runs each: a `--no-verity` scan
and a full scan of the hardened test image, and `lint` of the four recipes.

Usage: python3 bench/hostile_cost.py [--runs 7] [--base COMMIT]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from tests import images  # noqa: E402


def timed(code: Path, argv: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": str(code)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cvmlint", *argv], cwd=ROOT, env=env, capture_output=True)
    assert proc.returncode in (0, 1), proc.stderr.decode()[-400:]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--base", default="5608fc8")
    args = parser.parse_args()
    image = str(images.hardened())
    commands = {
        "scan --no-verity": ["scan", "--no-verity", "--profile", "tdx-base", image],
        "scan (full)": ["scan", "--profile", "tdx-base", image],
        "lint (4 recipes)": ["lint"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(base), args.base], check=True)
        try:
            trees = {"base": base, "now": ROOT}
            times: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.runs):
                for name, argv in commands.items():
                    for which, code in trees.items():
                        times.setdefault((name, which), []).append(timed(code, argv))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=True)
    print(f"median of {args.runs}; base {args.base} vs the working tree")
    for name in commands:
        old, new = (statistics.median(times[(name, w)]) for w in ("base", "now"))
        spread = statistics.pstdev(times[(name, "base")])
        print(f"  {name:18} base {old:6.3f} s  now {new:6.3f} s  ratio {new / old:5.2f}  (base spread {spread:.3f} s)")


if __name__ == "__main__":
    main()
