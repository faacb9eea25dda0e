#!/usr/bin/env python3
"""How long `cvmlint measure` takes next to a scan of the same image, median of --runs, alternating.

Images: the two measured-boot test images (shim -> systemd-boot -> UKI, shim -> GRUB -> kernel; ESP only),
the hardened test image (ESP + erofs root + verity), the Debian 13 image whose grub.cfg grub-mkconfig wrote
(GRUB reads ext4 there), and any image given with --image NAME=PATH (the heavy tests' builds: tdx-base,
mkosi's defaults). A scan here is `scan --no-verity` (its work without the root hash) and the full scan.
Usage: python3 bench/measure.py [--runs 7] [--image NAME=PATH ...]   (repository root)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import images_given, side_by_side  # noqa: E402

from tests import grub_mkconfig_image, images, measure_images  # noqa: E402

CVMLINT = str(Path(sys.executable).parent / "cvmlint")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--image", action="append", default=[], help="NAME=PATH of another image to time")
    args = parser.parse_args()
    disks = {
        "UKI image": measure_images.image("uki"),
        "GRUB image": measure_images.image("grub"),
        "hardened image": images.hardened(),
        "grub-mkconfig image": grub_mkconfig_image.image(),
    }
    disks |= images_given(args.image)
    for name, disk in disks.items():
        commands = {
            "measure": [CVMLINT, "measure", str(disk)],
            "scan --no-verity": [CVMLINT, "scan", "--no-verity", "-f", "json", str(disk)],
            "scan": [CVMLINT, "scan", "-f", "json", str(disk)],
        }
        medians = side_by_side(commands, args.runs, (0, 1))
        shown = ", ".join(f"{label} {seconds * 1000:.0f} ms" for label, seconds in medians.items())
        print(f"{name} ({disk.stat().st_size >> 20} MiB): {shown}")


if __name__ == "__main__":
    main()
