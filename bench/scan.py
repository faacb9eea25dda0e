#!/usr/bin/env python3
"""`cvmlint scan` figures of issue 4, side by side in one run, on the hardened test image.

1. Full scan (root hash recomputed, every rule) vs `veritysetup verify` + `fsck.erofs` on the same
   partitions (extracted to files beforehand, not timed): median of --runs each.
2. `--no-verity` scan wall time on the hardened image and on a 4 GiB sparse image holding the same
   partitions at its end (goal: < 1 s, independent of the image size).
3. Peak RSS of a full scan, parent and hashing workers (goal: <= 150 MB).

Usage: python3 bench/scan.py [--runs 5]   (as root: builds the test image with tests/images.py)
The cvmlint runs are the installed command (`cvmlint` next to this Python), as a user runs it.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.verity import tree_rss_kb
from cvmlint.image.gpt import read_partition_table
from cvmlint.image.source import FileSource

CVMLINT = str(Path(sys.executable).parent / "cvmlint")
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(argv: list[str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=ENV)
    elapsed = time.perf_counter() - start
    assert proc.returncode in ok, f"{argv[0]} exited {proc.returncode}: {proc.stderr[-500:]}"
    return elapsed


def extract(image: Path, directory: Path) -> dict[str, Path]:
    """The ESP, root and verity partitions as files (dd), for the reference tools."""
    out = {}
    for p in read_partition_table(FileSource(image)).partitions:
        dest = directory / f"{p.type_name}.img"
        if not dest.exists():
            subprocess.run(
                [
                    "dd",
                    f"if={image}",
                    f"of={dest}",
                    "bs=1M",
                    f"skip={p.start}",
                    f"count={p.size}",
                    "iflag=skip_bytes,count_bytes",
                    "status=none",
                ],
                check=True,
            )
        out[p.type_name] = dest
    return out


def at_the_end(image: Path, size: int, dest: Path) -> Path:
    """A sparse `size`-byte copy of `image` with every partition moved to the end of the disk."""
    if dest.exists():
        return dest
    dump = subprocess.run(["sfdisk", "--dump", str(image)], capture_output=True, text=True, check=True).stdout
    parts = read_partition_table(FileSource(image)).partitions
    shift = (size - (2 << 20) - image.stat().st_size) // 512 // 2048 * 2048  # in sectors
    lines = []
    for line in dump.splitlines():
        if line.startswith(("last-lba", "device", "first-lba")):
            continue
        if "start=" in line:
            line = line.split(" : ", 1)[1]  # drop the device name
            start = int(line.split("start=")[1].split(",")[0])
            line = line.replace(line.split(",")[0], f"start={start + shift}", 1)
        lines.append(line)
    with open(dest, "wb") as fh:
        fh.truncate(size)
    subprocess.run(["sfdisk", "-q", str(dest)], input="\n".join(lines) + "\n", text=True, check=True)
    for p in parts:
        subprocess.run(
            [
                "dd",
                f"if={image}",
                f"of={dest}",
                "bs=1M",
                f"skip={p.start}",
                f"count={p.size}",
                f"seek={p.start + shift * 512}",
                "iflag=skip_bytes,count_bytes",
                "oflag=seek_bytes",
                "conv=notrunc,sparse",
                "status=none",
            ],
            check=True,
        )
    return dest


def tree_pss_kb(pid: int) -> int:
    """Proportional set size of a process and its children: shared pages (forked workers) counted once."""
    total = 0
    pids = [pid] + [
        int(c)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for c in ((task / "children").read_text().split() if (task / "children").exists() else [])
    ]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def peak_memory(argv: list[str]) -> tuple[int, int, float]:
    """Peak summed RSS and peak summed PSS of the process tree, sampled every 10 ms."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, env=ENV)
    rss = pss = 0
    start = time.perf_counter()
    while proc.poll() is None:
        with contextlib.suppress(OSError):
            rss, pss = max(rss, tree_rss_kb(proc.pid)), max(pss, tree_pss_kb(proc.pid))
        time.sleep(0.01)
    return rss, pss, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/cvmlint-bench"))
    args = parser.parse_args()
    from tests import images

    image = images.hardened()
    roothash = image.with_suffix(".roothash").read_text()
    work = args.dir / f"scan-{images.BUILDER_KEY}"
    work.mkdir(parents=True, exist_ok=True)
    parts = extract(image, work)
    big = at_the_end(image, 4 << 30, work / "hardened-4g.raw")
    subprocess.run(["cat", str(image)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache

    ours, theirs, quick, quick_big = [], [], [], []
    for _ in range(args.runs):
        theirs.append(
            timed(["veritysetup", "verify", str(parts["root-x86-64"]), str(parts["root-x86-64-verity"]), roothash])
            + timed(["fsck.erofs", str(parts["root-x86-64"])])
        )
        ours.append(timed([CVMLINT, "scan", "--format", "json", str(image)], ok=(1,)))
        quick.append(timed([CVMLINT, "scan", "--no-verity", "--format", "json", str(image)], ok=(1,)))
        quick_big.append(timed([CVMLINT, "scan", "--no-verity", "--format", "json", str(big)], ok=(1,)))
    a, b = statistics.median(theirs), statistics.median(ours)
    print(
        f"full scan of {image.name} ({image.stat().st_size >> 20} MiB): veritysetup verify + fsck.erofs "
        f"{a:.2f} s, cvmlint scan {b:.2f} s (median of {args.runs}); ratio {b / a:.2f}"
    )
    print(
        f"--no-verity: {statistics.median(quick):.2f} s on {image.stat().st_size >> 20} MiB, "
        f"{statistics.median(quick_big):.2f} s on the 4 GiB sparse image (median of {args.runs}; "
        f"best {min(quick):.2f} / {min(quick_big):.2f}; goal < 1 s)"
    )
    rss, pss, seconds = peak_memory([CVMLINT, "scan", "--format", "json", str(image)])
    print(
        f"full scan: peak memory of cvmlint's process tree (parent + 2 hashing workers) {pss / 1024:.0f} MB PSS, "
        f"{rss / 1024:.0f} MB RSS summed (pages shared after fork counted per process), in {seconds:.1f} s "
        f"(goal <= 150 MB)"
    )


if __name__ == "__main__":
    main()
