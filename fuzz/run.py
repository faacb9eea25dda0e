#!/usr/bin/env python3
"""Coverage-guided fuzzing of one reader with atheris (libFuzzer), under memory and time caps.

    python3 fuzz/run.py TARGET [--seconds N] [libFuzzer options such as -runs=N]
    python3 fuzz/run.py --list

Seeds come from `fuzz/seeds.py` (images made by the real tools, cached); new coverage is kept in
`fuzz/corpus/TARGET/` (not committed). A crash, an input over the memory cap (-rss_limit_mb) or over
the time cap (-timeout) stops the run and leaves the input as `fuzz/crashes/TARGET-*`: minimise it,
add it to tests/hostile/corpus/TARGET/ and fix the reader. The long campaign is
`python3 fuzz/run.py TARGET --seconds 3600` per reader family (see fuzz/README.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

MEMORY_CAP_MB = 1024
TIME_CAP_S = 20


def main() -> None:
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ or "CVMLINT_STRICT" not in os.environ:
        # glibc raises its mmap threshold after large frees, so a long run of 50-250 MB kernels grows the heap
        # without bound (one scan does not): pin it, so that the memory cap measures the readers. And strict
        # mode: a bug of ours (TypeError, KeyError, IndexError in a reader) is a crash, not a refusal.
        env = {"MALLOC_MMAP_THRESHOLD_": "131072", "CVMLINT_STRICT": "1", **os.environ}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--list", action="store_true", help="list the targets")
    parser.add_argument("--no-seeds", action="store_true", help="start from the corpus alone")
    args, extra = parser.parse_known_args()  # the rest (-runs=N, -jobs=N …) goes to libFuzzer

    import atheris

    # python-debian's copyright parser too: the copyright target's paths are mostly in it
    with atheris.instrument_imports(include=["cvmlint", "debian.copyright"]):
        import targets

        _import_readers()
    if args.list or not args.target:
        print("\n".join(targets.TARGETS))
        return
    if args.target not in targets.TARGETS:
        parser.error(f"no target {args.target!r}; --list shows them")
    corpus = HERE / "corpus" / args.target
    crashes = HERE / "crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(exist_ok=True)
    dirs = [str(corpus)]
    if not args.no_seeds:
        from seeds import seeds_for

        dirs.append(str(seeds_for(args.target)))
    regression = HERE.parent / "tests" / "hostile" / "corpus" / args.target
    if regression.is_dir():
        dirs.append(str(regression))
    extra = [a for a in extra if a != "--"]
    units = [f.stat().st_size for d in dirs for f in Path(d).glob("*") if f.is_file()]
    seeds = [f.stat().st_size for d in dirs[1:] for f in Path(d).glob("*") if f.is_file()]  # not the corpus
    max_len = max([262144, *seeds])  # a seed is never cut: the kernel seed is a whole real bzImage
    # libFuzzer keeps the whole corpus in memory: the cap on the process is cvmlint's cap plus the corpus
    rss_limit = MEMORY_CAP_MB + 2 * sum(units) // (1 << 20)
    argv = [
        sys.argv[0],
        f"-max_total_time={args.seconds}",
        f"-rss_limit_mb={rss_limit}",
        f"-malloc_limit_mb={MEMORY_CAP_MB}",
        f"-timeout={TIME_CAP_S}",
        f"-max_len={max_len}",
        f"-artifact_prefix={crashes}/{args.target}-",
        "-print_final_stats=1",
        *extra,
        *dirs,
    ]
    one = targets.run_one
    name = args.target

    def test_one_input(data: bytes) -> None:
        one(name, data)

    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


def _import_readers() -> None:
    """Load every module the targets reach, inside the instrumentation (targets import lazily)."""
    import debian.copyright  # noqa: F401

    import cvmlint.build.pinned
    import cvmlint.build.rebuild
    import cvmlint.image.container
    import cvmlint.image.erofs
    import cvmlint.image.ext4
    import cvmlint.image.fat
    import cvmlint.image.gpt
    import cvmlint.image.luks
    import cvmlint.image.qcow2
    import cvmlint.image.squashfs
    import cvmlint.image.verity
    import cvmlint.image.vhd
    import cvmlint.measure.authenticode
    import cvmlint.measure.compare
    import cvmlint.measure.eventlog
    import cvmlint.measure.grub
    import cvmlint.measure.predict
    import cvmlint.measure.stub
    import cvmlint.policy.loader
    import cvmlint.recipe.facts
    import cvmlint.sbom
    import cvmlint.scan.disk
    import cvmlint.scan.grub
    import cvmlint.scan.grub_boot
    import cvmlint.scan.initrd
    import cvmlint.scan.kernel
    import cvmlint.scan.pe
    import cvmlint.scan.rootfs  # noqa: F401


if __name__ == "__main__":
    main()
