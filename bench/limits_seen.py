#!/usr/bin/env python3
"""The largest value each resource limit meets on real inputs (for the `seen` column of cvmlint/limits.py).

Scans the cached test images (hardened GRUB and UKI, the Debian cloud image with gcc and python3, the
1 GiB variant), any built tdx-base image given as an argument, and lints this repository's recipes
(every mkosi profile) and mkosi's own mkosi-vm/-tools/-initrd from the trixie tool root, with
CVMLINT_LIMIT_STATS set; prints each limit with its default and the largest value met.

Usage: python3 bench/limits_seen.py [IMAGE …]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from cvmlint.limits import TABLE  # noqa: E402
from tests.tools import CACHE  # noqa: E402

CVMLINT = [sys.executable, "-m", "cvmlint"]


def main() -> None:
    images = sorted(CACHE.glob("images-*/*.raw"), key=lambda p: p.stat().st_mtime)[-12:]
    images += [Path(a) for a in sys.argv[1:]]
    images = [
        p
        for p in images
        if p.name in ("hardened-grub.raw", "hardened-uki.raw", "cloud.raw", "bench-1g.raw")
        or p in map(Path, sys.argv[1:])
    ]
    resources = next(iter(sorted(CACHE.glob("toolroot-trixie-*/usr/lib/python3/dist-packages/mkosi/resources"))), None)
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.json"
        env = {**os.environ, "CVMLINT_LIMIT_STATS": str(stats)}
        for image in dict.fromkeys(images):
            subprocess.run([*CVMLINT, "scan", "--no-verity", str(image)], env=env, capture_output=True, check=False)
        for profile in ([], ["--mkosi-profile", "dev"]):
            subprocess.run([*CVMLINT, "lint", *profile], cwd=ROOT, env=env, capture_output=True, check=False)
        if resources is not None:
            for name in ("mkosi-vm", "mkosi-tools", "mkosi-initrd"):
                for distribution in ("debian", "ubuntu", "fedora", "arch"):
                    subprocess.run(
                        [*CVMLINT, "lint", "-d", distribution, str(resources / name)],
                        cwd=ROOT,
                        env=env,
                        capture_output=True,
                        check=False,
                    )
        subprocess.run(
            [*CVMLINT, "policy", "test", "policies/tests"], cwd=ROOT, env=env, capture_output=True, check=False
        )
        seen = json.loads(stats.read_text()) if stats.exists() else {}
    print(f"{len(set(images))} images, our recipes (2 profile sets), mkosi's own configurations × 4 distributions")
    for name, limit in TABLE.items():
        print(f"  {name:24} limit {limit.default:>14}  largest seen {seen.get(name, '-'):>12}")


if __name__ == "__main__":
    main()
