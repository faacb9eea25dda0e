#!/usr/bin/env python3
"""What a reproducibility check costs: `cvmlint build --check-reproducible` on the Debian tdx-base, the
first build (mkosi, the packages downloaded into its own cache) next to the second (the recorded
packages fetched, mkosi offered only those, the two images compared), in the same run.

Needs what the heavy build tests need (root, the build tool root, the CVM kernel: built and cached on
first use). Usage: python3 bench/rebuild.py [--runs 1]   (repository root, as root)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from tests.build.conftest import copy_project  # noqa: E402
from tests.tools import CACHE, run, secure_boot_key, tool_root  # noqa: E402


def kernel_deb(work: Path) -> Path:
    from cvmlint.build.mkosi import BUILD_ROOT

    tool_root(BUILD_ROOT)
    key, cert = secure_boot_key()
    run("sh", ROOT / "patches/build-kernel.sh", work, env={"SB_KEY": str(key), "SB_CERT": str(cert),
        "CACHE": str(CACHE / "kernel")})  # fmt: skip
    return next(work.glob("linux-image-6.1.0-cvm_*.deb"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    os.environ["CVMLINT_CACHE"] = str(CACHE)
    with tempfile.TemporaryDirectory(prefix="bench-rebuild-") as tmp:
        deb = kernel_deb(Path(tmp) / "kernel")
        for n in range(args.runs):
            project = copy_project(Path(tmp) / f"project-{n}", deb)
            started = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "cvmlint", "build", "-d", "debian", "--check-reproducible", "-f", "json",
                 "recipes/tdx-base"],
                cwd=project, capture_output=True, text=True,
            )  # fmt: skip
            wall = time.monotonic() - started
            if not proc.stdout.strip():
                sys.exit(f"the build failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
            doc = json.loads(proc.stdout)
            again = doc["rebuild"]
            seconds = again["seconds"]
            second = seconds["fetch"] + seconds["build"] + seconds["compare"]
            print(
                f"run {n + 1}: first build: mkosi {doc['build_seconds']:.0f} s; second: packages fetched "
                f"{seconds['fetch']:.0f} s + mkosi {seconds['build']:.0f} s + comparison {seconds['compare']:.0f} s "
                f"= {second:.0f} s ({second / doc['build_seconds']:.2f}x the first build's mkosi); whole command "
                f"{wall:.0f} s; {len(doc['inputs']['packages'])} packages pinned; reproducible: "
                f"{again['reproducible']} (exit {proc.returncode})"
            )


if __name__ == "__main__":
    main()
