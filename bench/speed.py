#!/usr/bin/env python3
"""Issue 14's four figures, each next to its reference in the same run.

1. `cvmlint lint` (the four shipped recipes, cvmlint.toml) vs the venv's `python -c pass`, and
   `cvmlint lint RECIPE` vs `mkosi --json summary` of that recipe (mkosi 25.3 in the tests' trixie
   tool root; entering the root is timed alone with `true` and subtracted).
   Goals: lint <= 0.10 s on the issue's machine, where `python -c pass` was 0.009 s; one recipe
   <= 0.25 x mkosi.
2. `cvmlint scan --no-verity` of the hardened test image vs `python -c pass` (goal <= 0.30 s there).
3. Full `cvmlint scan` of the 1 GiB-root test image vs `veritysetup verify` of its root partition
   (extracted to files beforehand, not timed). Goal <= 0.9 x veritysetup.
4. Peak memory of the full scan: the largest single process of its tree (ru_maxrss of the children
   a wrapper waited for). Goal <= 80 MiB.

Median of --runs each, the commands alternating. Byte code allowed, as an installed cvmlint has it.
Usage: python3 bench/speed.py [--runs 7] [--only lint,scan,full,memory]   (repository root, as root)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import ENV, timed  # noqa: E402
from evidence import big_image  # noqa: E402
from facts_vs_mkosi import in_root  # noqa: E402
from scan import extract  # noqa: E402

from tests import images  # noqa: E402

CVMLINT = str(Path(sys.executable).parent / "cvmlint")
PASS = [sys.executable, "-c", "pass"]
RECIPE = str(ROOT / "recipes" / "tdx-base")

PEAK = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
assert proc.returncode in (0, 1), proc.returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def medians(commands: dict[str, tuple[list[str], tuple[int, ...]]], runs: int) -> dict[str, float]:
    for argv, ok in commands.values():
        timed(argv, ok)  # warm the page cache and the bytecode cache
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (argv, ok) in commands.items():
            times[name].append(timed(argv, ok))
    return {name: statistics.median(t) for name, t in times.items()}


def lint_figure(runs: int) -> None:
    from tests.tools import TRIXIE, tool_root

    root = tool_root(TRIXIE)
    (root / str(ROOT).lstrip("/")).mkdir(parents=True, exist_ok=True)
    m = medians(
        {
            "pass": (PASS, (0,)),
            "lint": ([CVMLINT, "lint"], (0, 1)),
            "lint one": ([CVMLINT, "lint", RECIPE], (0, 1)),
            "enter": (in_root(root, "true"), (0,)),
            "mkosi": (in_root(root, "mkosi", "-C", RECIPE, "--json", "summary"), (0,)),
        },
        runs,
    )
    mkosi = m["mkosi"] - m["enter"]
    print(
        f"1. lint of 4 recipes {m['lint'] * 1000:.0f} ms; python -c pass {m['pass'] * 1000:.0f} ms "
        f"(ratio {m['lint'] / m['pass']:.1f}; goal ratio 11.1 = 0.10/0.009)"
    )
    print(
        f"   lint of recipes/tdx-base {m['lint one'] * 1000:.0f} ms; mkosi 25.3 --json summary "
        f"{mkosi * 1000:.0f} ms (root entry {m['enter'] * 1000:.0f} ms subtracted): "
        f"ratio {m['lint one'] / mkosi:.2f} (goal <= 0.25)"
    )


def quick_scan_figure(runs: int) -> None:
    image = str(images.hardened())
    m = medians(
        {"pass": (PASS, (0,)), "scan": ([CVMLINT, "scan", "--no-verity", "--format", "json", image], (1,))}, runs
    )
    print(
        f"2. scan --no-verity of the hardened image {m['scan'] * 1000:.0f} ms; python -c pass "
        f"{m['pass'] * 1000:.0f} ms (ratio {m['scan'] / m['pass']:.1f}; goal ratio 33 = 0.30/0.009)"
    )


def full_scan_figure(runs: int, work: Path) -> None:
    image = big_image()
    roothash = image.with_suffix(".roothash").read_text().strip()
    parts = extract(image, work)
    subprocess.run(["cat", str(image)], stdout=subprocess.DEVNULL, check=True)
    verify = ["veritysetup", "verify", str(parts["root-x86-64"]), str(parts["root-x86-64-verity"]), roothash]
    m = medians({"verify": (verify, (0,)), "scan": ([CVMLINT, "scan", "--format", "json", str(image)], (0, 1))}, runs)
    print(
        f"3. full scan of {image.name} ({image.stat().st_size >> 20} MiB) {m['scan']:.2f} s; veritysetup "
        f"verify of its root {m['verify']:.2f} s: ratio {m['scan'] / m['verify']:.2f} (goal <= 0.9)"
    )


def memory_figure(runs: int) -> None:
    peaks = {}
    for name, image in (("hardened", images.hardened()), ("1 GiB", big_image())):
        argv = [sys.executable, "-c", PEAK, CVMLINT, "scan", "--format", "json", str(image)]
        peaks[name] = max(int(subprocess.run(argv, capture_output=True, env=ENV, check=True).stdout) for _ in range(3))
    print(
        "4. peak memory of a full scan (largest process, max of 3): "
        + ", ".join(f"{name} image {kib / 1024:.0f} MiB" for name, kib in peaks.items())
        + " (goal <= 80 MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", default="lint,scan,full,memory")
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/cvmlint-bench"))
    args = parser.parse_args()
    only = set(args.only.split(","))
    work = args.dir / f"speed-{images.BUILDER_KEY}"
    work.mkdir(parents=True, exist_ok=True)
    print(f"median of {args.runs} runs each")
    if "lint" in only:
        lint_figure(args.runs)
    if "scan" in only:
        quick_scan_figure(args.runs)
    if "full" in only:
        full_scan_figure(args.runs, work)
    if "memory" in only:
        memory_figure(args.runs)


if __name__ == "__main__":
    main()
