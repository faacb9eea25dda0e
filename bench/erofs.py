#!/usr/bin/env python3
"""erofs figure of issue 3: read every file of the Debian minbase erofs (cvmlint) vs
`fsck.erofs --extract` to a tmpfs, side by side in one run, median of --runs each.

Usage: python3 bench/erofs.py [--tree DIR] [--runs 5]
Builds (and keeps in /var/tmp/cvmlint-bench) minbase images with mkfs.erofs: uncompressed and -zlz4.
The tree defaults to the test suite's cached debootstrap minbase (needs root to build it).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READ_ALL = """
import sys
from cvmlint.image.erofs import ErofsFileSystem
from cvmlint.image.source import FileSource
fs = ErofsFileSystem(FileSource(sys.argv[1]))
total = 0
for _, ino in fs.walk():
    if ino.is_reg:
        for chunk in fs.iter_data(ino):
            total += len(chunk)
print(total)
"""


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.tools import minbase_tree

    tree = args.tree or minbase_tree()
    work = Path("/var/tmp/cvmlint-bench")
    work.mkdir(parents=True, exist_ok=True)
    shm = Path("/dev/shm/cvmlint-bench-extract")
    for name, options in (("plain", []), ("lz4", ["-zlz4"])):
        image = work / f"minbase-{name}.erofs"
        if not image.exists():
            subprocess.run(["mkfs.erofs", "--quiet", *options, str(image), str(tree)], check=True)
        ours, theirs = [], []
        for _ in range(args.runs):
            shutil.rmtree(shm, ignore_errors=True)
            theirs.append(timed(["fsck.erofs", f"--extract={shm}", str(image)]))
            shutil.rmtree(shm, ignore_errors=True)
            ours.append(timed([sys.executable, "-c", READ_ALL, str(image)]))
        a, b = statistics.median(theirs), statistics.median(ours)
        print(
            f"minbase erofs {name:5}: fsck.erofs --extract {a:.2f} s, cvmlint read-all {b:.2f} s "
            f"(median of {args.runs}); ratio {b / a:.2f}"
        )
    shutil.rmtree(shm, ignore_errors=True)


if __name__ == "__main__":
    main()
