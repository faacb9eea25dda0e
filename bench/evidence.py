#!/usr/bin/env python3
"""Issue 11 figures: what an evidence bundle adds to a full scan of a ~1 GiB image, and its size.

The image: the hardened GRUB test image with 900 MiB of random data added to its root (tests/images.py,
cached). Side by side, median of --runs each: `sha256sum` of the image (the reference: what hashing
the file alone costs), `cvmlint scan`, and `cvmlint scan --evidence DIR --sign-key KEY` (the whole
file and every partition hashed in one extra pass, then facts, results, policy, HTML, OSCAL written and
signed).

Usage: python3 bench/evidence.py [--runs 5]   (repository root, as root: builds the test image once)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import timed  # noqa: E402

from tests import images  # noqa: E402
from tests.tools import CACHE  # noqa: E402

CVMLINT = str(Path(sys.executable).parent / "cvmlint")


def big_image() -> Path:
    blob = CACHE / "bench-blob-900M"
    if not blob.exists():
        subprocess.run(["dd", "if=/dev/urandom", f"of={blob}", "bs=1M", "count=900", "status=none"], check=True)
    return images.hardened("bench-1g", variant=images.Variant(extra_files={"/opt/blob": blob}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    image = big_image()
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "k.pem"
        subprocess.run([CVMLINT, "evidence", "keygen", str(key)], check=True, capture_output=True)
        bundle = Path(tmp) / "bundle"
        commands = {
            "sha256sum": ["sha256sum", str(image)],
            "scan": [CVMLINT, "scan", "--profile", "tdx-base", str(image)],
            "scan --evidence": [
                CVMLINT,
                "scan",
                "--profile",
                "tdx-base",
                "--evidence",
                str(bundle),
                "--sign-key",
                str(key),
                str(image),
            ],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                shutil.rmtree(bundle, ignore_errors=True)
                times[name].append(timed(argv, ok=(0, 1)))
        size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    median = {name: statistics.median(t) for name, t in times.items()}
    added = median["scan --evidence"] - median["scan"]
    print(f"image {image.stat().st_size / 2**20:.0f} MiB; median of {args.runs} runs")
    for name, value in median.items():
        print(f"  {name:16} {value:6.2f} s")
    print(
        f"  evidence adds {added:.2f} s to the scan ({added / median['sha256sum']:.2f}x a sha256sum of the "
        f"image); bundle {size / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()
