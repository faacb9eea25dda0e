#!/usr/bin/env python3
"""dm-verity figures of issue 3, side by side in one run.

1. Root-hash recompute of a 1 GiB random data file: `veritysetup verify` vs cvmlint's verify(),
   alternating, median of --runs each (goal: cvmlint <= 0.6 x veritysetup).
2. Peak resident memory of the whole process tree (parent + hashing workers, sampled from /proc)
   while cvmlint recomputes a 4 GiB data file (goal: <= 150 MB).

Usage: python3 bench/verity.py [--dir /var/tmp/cvmlint-bench] [--runs 5]
Needs veritysetup (cryptsetup-bin). The data files are kept in --dir for later runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CVMLINT = """
import sys
from cvmlint.image.verity import verify
from cvmlint.image.source import FileSource
r = verify(FileSource(sys.argv[1]), FileSource(sys.argv[2]))
assert r.tree_valid, r.problems
print(r.root_hash)
"""


def prepare(directory: Path, name: str, size: int, random: bool) -> tuple[Path, Path, str]:
    data, hashes, root_file = directory / f"{name}.data", directory / f"{name}.hash", directory / f"{name}.root"
    if not root_file.exists():
        with open(data, "wb") as fh:
            if random:
                for _ in range(size // (64 << 20)):
                    fh.write(os.urandom(64 << 20))
            else:
                fh.truncate(size)
        out = subprocess.run(
            ["veritysetup", "format", str(data), str(hashes)], capture_output=True, text=True, check=True
        ).stdout
        root_file.write_text(next(line.split()[-1] for line in out.splitlines() if line.startswith("Root hash")))
    return data, hashes, root_file.read_text().strip()


def timed(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - start, out.strip()


def tree_rss_kb(pid: int) -> int:
    total = 0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        pids += [int(c) for c in children]
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def peak_rss(argv: list[str]) -> tuple[int, float]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    peak, start = 0, time.perf_counter()
    while proc.poll() is None:
        with contextlib.suppress(OSError):
            peak = max(peak, tree_rss_kb(proc.pid))
        time.sleep(0.01)
    return peak, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/cvmlint-bench"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    data, hashes, root = prepare(args.dir, "random-1g", 1 << 30, True)
    subprocess.run(["cat", str(data), str(hashes)], stdout=subprocess.DEVNULL, check=True)  # warm the cache
    ours, theirs = [], []
    for _ in range(args.runs):
        t, _ = timed(["veritysetup", "verify", str(data), str(hashes), root])
        theirs.append(t)
        t, got = timed([sys.executable, "-c", CVMLINT, str(data), str(hashes)])
        assert got == root, f"root hash {got} != veritysetup's {root}"
        ours.append(t)
    a, b = statistics.median(theirs), statistics.median(ours)
    print(
        f"1 GiB, sha256, 4 KiB blocks: veritysetup verify {a:.2f} s, cvmlint {b:.2f} s "
        f"(median of {args.runs}); ratio {b / a:.2f} (goal <= 0.6)"
    )
    data4, hashes4, _root4 = prepare(args.dir, "sparse-4g", 4 << 30, False)
    peak, seconds = peak_rss([sys.executable, "-c", CVMLINT, str(data4), str(hashes4)])
    print(f"4 GiB: peak RSS of cvmlint's process tree {peak / 1024:.0f} MB in {seconds:.1f} s (goal <= 150 MB)")


if __name__ == "__main__":
    main()
