#!/usr/bin/env python3
"""How long `cvmlint sbom` takes, and how large its documents are, next to a scan of the same image: the
median of --runs, alternating. syft and trivy, the SBOM tools people use, cannot read these images (a GPT
disk with an erofs root under dm-verity; trivy's VM mode is experimental), so the reference is the scan.

Images: the hardened test image (ESP + erofs root + verity) and the cloud test image (ext4 root, 146
packages), and any image given with --image NAME=PATH (the heavy tests' builds: tdx-base, mkosi's defaults).
Usage: python3 bench/sbom.py [--runs 5] [--image NAME=PATH ...]   (repository root)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import images_given, side_by_side  # noqa: E402

from tests import images  # noqa: E402

CVMLINT = str(Path(sys.executable).parent / "cvmlint")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", action="append", default=[], help="NAME=PATH of another image to time")
    args = parser.parse_args()
    disks = {"hardened image": images.hardened(), "cloud image": images.cloud()}
    disks |= images_given(args.image)
    for name, disk in disks.items():
        commands = {
            "sbom cyclonedx": [CVMLINT, "sbom", str(disk)],
            "sbom spdx": [CVMLINT, "sbom", "-f", "spdx", str(disk)],
            "scan": [CVMLINT, "scan", "-f", "json", str(disk)],
        }
        sizes = {
            fmt: len(subprocess.run([CVMLINT, "sbom", "-f", fmt, str(disk)], capture_output=True, check=True).stdout)
            for fmt in ("cyclonedx", "spdx")
        }
        medians = side_by_side(commands, args.runs, (0, 1))
        shown = ", ".join(f"{label} {seconds * 1000:.0f} ms" for label, seconds in medians.items())
        size = ", ".join(f"{fmt} {n / 1024:.0f} KiB" for fmt, n in sizes.items())
        print(f"{name} ({disk.stat().st_size >> 20} MiB): {shown}; documents: {size}")


if __name__ == "__main__":
    main()
