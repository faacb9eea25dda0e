#!/usr/bin/env python3
"""Issue 9 figure: `cvmlint facts RECIPE --json` next to `mkosi --json summary` of the same recipe.

Both are timed as a user runs them, interpreter start-up included, median of --runs each, in one
run. mkosi runs in the cached tool roots the tests make (mkosi 25.3 from trixie, 27.1 from sid);
entering a root (unshare + chroot) is timed alone with `true` and subtracted, so the mkosi figure
is mkosi's own work.

Usage: python3 bench/facts_vs_mkosi.py [--runs 9] [--recipe recipes/tdx-base]   (repository root, as root)
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import timed  # noqa: E402

from tests.tools import SID, TRIXIE, tool_root  # noqa: E402

CVMLINT = str(Path(sys.executable).parent / "cvmlint")


def in_root(root: Path, *argv: str) -> list[str]:
    script = (
        f"mount --rbind {ROOT} {root}{ROOT} 2>/dev/null || (mkdir -p {root}{ROOT} && "
        f'mount --bind {ROOT} {root}{ROOT}); exec chroot {root} "$@"'
    )
    return ["unshare", "-m", "sh", "-c", script, "sh", *argv]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--recipe", default="recipes/tdx-base")
    args = parser.parse_args()
    recipe = str(ROOT / args.recipe)
    commands = {"cvmlint facts": [CVMLINT, "facts", "--json", recipe]}
    roots = {"25.3": tool_root(TRIXIE), "27.1": tool_root(SID)}
    for version, root in roots.items():
        (root / str(ROOT).lstrip("/")).mkdir(parents=True, exist_ok=True)
        commands[f"enter root {version}"] = in_root(root, "true")
        commands[f"mkosi {version} summary"] = in_root(root, "mkosi", "-C", recipe, "--json", "summary")
    for argv in commands.values():
        timed(argv)  # warm caches
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, argv in commands.items():
            times[name].append(timed(argv))
    median = {name: statistics.median(t) for name, t in times.items()}
    ours = median["cvmlint facts"]
    print(f"{args.recipe}, median of {args.runs} runs:")
    print(f"  cvmlint facts --json          {ours * 1000:7.1f} ms")
    for version in roots:
        own = median[f"mkosi {version} summary"] - median[f"enter root {version}"]
        print(
            f"  mkosi {version} --json summary  {own * 1000:7.1f} ms  (root entry "
            f"{median[f'enter root {version}'] * 1000:.1f} ms subtracted); cvmlint/mkosi = {ours / own:.2f}"
        )


if __name__ == "__main__":
    main()
