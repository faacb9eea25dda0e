"""Differential fuzzing of recipe reading: random recipe trees, read by cvmlint and by the real programs.

Each tree is made from mkosi's settings and the corners that fooled readers before: sections in any
order, drop-ins with [Match], profiles (selected by the recipe or on the command line), specifiers,
continuation lines, comments with `#` inside values, odd blanks (form feed, vertical tab, U+2028 …),
repart files with comments ending in a backslash, CR line ends and drop-ins, command lines with quotes
and `--`, /etc/kernel/cmdline in an extra tree, RemoveFiles= globs, and package names as apt reads
them. For each tree and each mkosi (25.3, 27.1):

    view       cvmlint's facts against `mkosi --json summary` (tests/recipe/differential.py)
    layout     cvmlint's partitions against what systemd-repart writes
    invariant  every pass of CVM-VER-001/002, CVM-FS-001, CVM-BOOT-001/002, CVM-PKG-004 against the
               real programs' reading (tests/recipe/truth.py)

    python3 fuzz/recipe_diff.py --seconds 3600 [--seed N] [--keep DIR]

A tree with a difference is kept in DIR (default fuzz/recipe-finds/) with what differed; a summary (trees,
trees per minute, differences by class) is printed as JSON at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

PACKAGES = [
    "systemd", "udev", "kmod", "bash", "openssh-server", "openssh-server:amd64", "openssh-server=1:10.0p1-7",
    "openssh-server/trixie", "ssh", "task-ssh-server", "dropbear-bin", "openssh-server-", "openssh-*",
    "dbus",
]  # fmt: skip
PARAMS = [
    "console=ttyS0", "lockdown=integrity", "module.sig_enforce=1", 'x="a', 'b"', "--", 'lockdown="integrity"',
    'lockdown=integ"rity"', "quiet", "lockdown=none", "module-sig_enforce=1", "lockdown=confidentiality",
    "ro",
]  # fmt: skip
BLANKS = ["\f", "\v", "\x1c", "\x85", "\u2028", "\t", " "]
SEPARATORS = ["\n", "\r\n", "\r"]


class Tree:
    """One random recipe, written into `directory`."""

    def __init__(self, rng: random.Random, directory: Path) -> None:
        self.rng, self.dir = rng, directory
        self.profiles: tuple[str, ...] = ()

    def pick(self, items: list[str], most: int) -> list[str]:
        return [self.rng.choice(items) for _ in range(self.rng.randint(0, most))]

    def value_lines(self, key: str, items: list[str], space: bool = False) -> str:
        how = self.rng.choice(["newline", "comma"] + (["space"] if space else []))
        if how == "newline" and items:
            return f"{key}=\n" + "".join(f"        {i}\n" for i in items)
        return f"{key}=" + ("," if how == "comma" else " ").join(items) + "\n"

    def write(self) -> None:
        rng = self.rng
        content = self.value_lines("Packages", ["systemd", *self.pick(PACKAGES, 3)])
        if rng.random() < 0.7:
            content += self.value_lines("KernelCommandLine", self.pick(PARAMS, 5), space=True)
        if rng.random() < 0.5:
            content += f"Bootloader={rng.choice(['systemd-boot', 'grub', 'uki', 'none'])}\n"
        if rng.random() < 0.5:
            content += f"UnifiedKernelImages={rng.choice(['auto', 'none', 'unsigned'])}\n"
        if rng.random() < 0.3:
            content += f"RemoveFiles={rng.choice(['/etc/kernel/cmdline', '/*/cmdline', '/etc/**', '/etc/kernel'])}\n"
        if rng.random() < 0.2:
            content += f"@Bootable={rng.choice(['yes', 'no', 'auto'])}\n"
        sections = {
            "Distribution": "Distribution=debian\nRelease=trixie\nArchitecture=x86-64\n",
            "Output": "Format=disk\nImageId=fuzz\n",
            "Content": content,
        }
        if rng.random() < 0.2:
            sections["Config"] = "Profiles=dev\n"
        order = list(sections)
        rng.shuffle(order)
        text = "".join(f"[{name}]\n{sections[name]}" for name in order)
        if rng.random() < 0.3:
            text = text.replace("\n", " # a comment\n", 1)
        self.file("mkosi.conf", text)
        if rng.random() < 0.4:
            self.file("mkosi.profiles/dev.conf", "[Content]\nPackages=openssh-server\n")
            if rng.random() < 0.5:
                self.profiles = ("dev",)
        if rng.random() < 0.3:
            match = rng.choice(
                ["Profiles=dev", "Distribution=debian", "Release=bookworm", "ImageId=fu*", "Format=disk"]
            )
            self.file("mkosi.conf.d/10-extra.conf", f"[Match]\n{match}\n\n[Content]\nPackages=openssh-server\n")
        if rng.random() < 0.4:
            lines = self.pick(PARAMS, 4)
            joiner = rng.choice([" ", "\n"])
            self.file("mkosi.extra/etc/kernel/cmdline", joiner.join(lines) + "\n")
        self.repart()

    def repart(self) -> None:
        rng = self.rng
        fmt = rng.choice(["erofs", "erofs", "ext4", "squashfs"])
        verity = rng.random() < 0.7
        eol = rng.choice(SEPARATORS)
        lines = ["[Partition]", "Type=root", f"Format={fmt}", "CopyFiles=/"]
        if fmt == "erofs" or verity:
            lines.append("Minimize=best")
        if verity:
            lines += ["Verity=data", "VerityMatchKey=root"]
        if rng.random() < 0.3:
            lines.append("# a comment ending in a backslash \\")
            lines.append(rng.choice(["Verity=off", "Format=ext4", "ReadOnly=no"]))
        if rng.random() < 0.3:
            blank = rng.choice(BLANKS)
            lines.append(f"# note{blank}{rng.choice(['Verity=data', 'Format=erofs', 'VerityMatchKey=root'])}")
        self.file("mkosi.repart/10-root.conf", eol.join(lines) + eol)
        if verity:
            hash_lines = ["[Partition]", "Type=root-verity", "Verity=hash", "VerityMatchKey=root", "Minimize=best"]
            self.file("mkosi.repart/11-root-verity.conf", "\n".join(hash_lines) + "\n")
        if rng.random() < 0.2:
            self.file(
                "mkosi.repart/10-root.conf.d/override.conf", f"[Partition]\nFormat={rng.choice(['ext4', 'erofs'])}\n"
            )

    def file(self, rel: str, text: str) -> None:
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))


def check(tree: Path, profiles: tuple[str, ...], versions: dict[str, Path], splitter: Path, work: Path) -> list[str]:
    """Every difference between cvmlint and the real programs on one tree, as `class: detail`."""
    from tests.recipe.differential import (
        Case,
        cvmlint_layout,
        cvmlint_view,
        mkosi_summary,
        mkosi_view,
        repart_layout,
        repart_view,
    )
    from tests.recipe.test_invariant import RULES, lint_statuses, truth

    case = Case(tree.name, tree, tree.parent, profiles=profiles)
    found: list[str] = []
    try:
        statuses, _ = lint_statuses(case)
    except Exception as err:  # cvmlint refuses the tree: mkosi must too
        statuses = {"error": f"{type(err).__name__}: {err}"}
    for version, root in versions.items():
        os.environ["CVMLINT_MKOSI_RESOURCES"] = str(root / "usr/lib/python3/dist-packages/mkosi/resources")
        if "error" not in statuses and version == "25" and any("mkosi 25" in w for w in cvmlint_view(case)[1]):
            continue  # a documented version difference, warned at its line
        try:
            summary = mkosi_summary(root, case)
        except AssertionError as err:
            if "error" not in statuses:
                found.append(f"refusal/{version}: mkosi refuses, cvmlint reads it: {str(err).splitlines()[-1][:160]}")
            continue
        if "error" in statuses:
            found.append(f"refusal/{version}: cvmlint refuses, mkosi reads it: {statuses['error'][:160]}")
            continue
        ours, warnings = cvmlint_view(case)
        theirs = mkosi_view(summary, case, work / f"view-{version}")
        for key, value in ours.items():
            if value != "unknown" and key in theirs and theirs[key] != value:
                found.append(f"view/{key}/{version}: cvmlint {value!r} mkosi {theirs[key]!r}")
        if summary["Format"] == "disk" and summary["RepartDirectories"]:
            layout = repart_layout(root, summary["RepartDirectories"], work / f"repart-{version}")
            if not layout.error and cvmlint_layout(case) != repart_view(layout, case, root):
                found.append(
                    f"layout/{version}: cvmlint {cvmlint_layout(case)} repart {repart_view(layout, case, root)}"
                )
            if layout.error and not any("systemd-repart refuses" in w for w in warnings):
                found.append(f"layout/{version}: repart refuses ({layout.error[:120]}), cvmlint says nothing")
        real = truth(case, root, work / f"truth-{version}", splitter)
        for rule in RULES:
            if statuses.get(rule) == "pass" and real.get(rule):
                found.append(f"invariant/{rule}/{version}: lint passes, {real[rule]}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--trees", type=int, default=0, help="stop after this many trees")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--keep", type=Path, default=ROOT / "fuzz/recipe-finds")
    args = parser.parse_args()
    from tests.recipe.test_differential import VERSIONS
    from tests.recipe.truth import kernel_splitter
    from tests.tools import tool_root

    versions = {v: tool_root(r) for v, r in VERSIONS.items()}
    splitter = kernel_splitter()
    rng = random.Random(args.seed)
    classes: Counter[str] = Counter()
    trees = kept = 0
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cvmlint-recipe-fuzz-") as tmp:
        while time.monotonic() - start < args.seconds and (not args.trees or trees < args.trees):
            directory = Path(tmp) / f"tree-{trees:05d}"
            generated = Tree(rng, directory)
            generated.write()
            work = Path(tmp) / "work"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            try:
                found = check(directory, generated.profiles, versions, splitter, work)
            except Exception:
                found = ["crash: " + traceback.format_exc().splitlines()[-1]]
            trees += 1
            for item in found:
                classes[item.split(":")[0].rsplit("/", 1)[0]] += 1
            if found:
                kept += 1
                key = hashlib.sha256("".join(sorted(found)).encode()).hexdigest()[:10]
                dest = args.keep / key
                if not dest.exists():
                    shutil.copytree(directory, dest, symlinks=True)
                    (dest / "FOUND.txt").write_text("\n".join([f"profiles: {generated.profiles}", *found]) + "\n")
            shutil.rmtree(directory, ignore_errors=True)
    minutes = (time.monotonic() - start) / 60
    print(
        json.dumps(
            {
                "seed": args.seed,
                "trees": trees,
                "minutes": round(minutes, 1),
                "trees_per_minute": round(trees / minutes, 1) if minutes else 0,
                "trees_with_differences": kept,
                "differences_by_class": dict(classes.most_common()),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
