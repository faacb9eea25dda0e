"""What the real programs make of a recipe, for the security invariant and the differential fuzzer:

kernel   the command line split by the kernel's own `next_arg` (lib/cmdline.c of linux-source-6.1,
         compiled here), from the line mkosi's `finalize_cmdline` writes (its steps reproduced on a
         copy of the recipe's trees made with tar and cp, RemoveFiles= applied with pathlib's glob as
         mkosi applies it), for each way the line can reach the kernel (a UKI, a GRUB `linux` line, a
         type-1 `options` line)
apt      the packages `apt-get --simulate install` installs for the names mkosi passes it (the tool
         root's package lists), dependencies included
repart   the partition layout systemd-repart writes (tests/recipe/differential.py)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.kernel_cmdline import kernel_params, kernel_splitter, last_value
from tests.tools import run_trixie

__all__ = ["apt_installs", "image_tree", "kernel_params", "kernel_splitter", "last_value", "mkosi_lines"]
ROOTHASH = "roothash=" + "0" * 64
"""A stand-in root hash, the same as cvmlint's (a quote left open swallows it into a value: the same text)."""


# ---- mkosi's command line ---------------------------------------------------------------------------
def image_tree(summary: dict[str, Any], work: Path) -> Path:
    """The recipe's trees as mkosi copies them into the image (skeleton, then extra), RemoveFiles= applied."""
    root = work / "image-root"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for tree in [*summary.get("SkeletonTrees", []), *summary.get("ExtraTrees", [])]:
        source, target = Path(tree["Source"]), (tree.get("Target") or "/").lstrip("/")
        dest = root / target
        dest.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            subprocess.run(["cp", "-a", "--no-target-directory", str(source), str(dest)], check=True)
        elif source.is_file():
            subprocess.run(["tar", "-xf", str(source), "-C", str(dest)], check=True, capture_output=True)
    for pattern in summary.get("RemoveFiles", []):  # mkosi: context.root.glob(pattern.lstrip("/")), then rmtree
        for path in list(root.glob(pattern.lstrip("/"))):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    return root


def mkosi_lines(summary: dict[str, Any], root: Path, roothash: bool) -> dict[str, bytes] | str:
    """The line the kernel gets, for each way it can reach it (`uki`, `grub`, `bls`), as mkosi's
    finalize_cmdline and its boot-entry writers make it; or why it cannot be said (a symlink out of the
    tree: mkosi would read the build host's file)."""
    cmdline: list[str] = []
    for rel in ("etc/kernel/cmdline", "usr/lib/kernel/cmdline"):
        path = root / rel
        if path.is_symlink() or any(p.is_symlink() for p in path.parents if p != root and root in p.parents):
            return f"{rel} is a symlink: read on the build host"
        if path.exists():
            cmdline = [path.read_text().strip()]
            break
    if roothash:
        cmdline.append(ROOTHASH)
    cmdline += summary["KernelCommandLine"]
    joined = " ".join(cmdline)
    loader = str(summary["Bootloader"]).removesuffix("-signed")
    uki = str(summary["UnifiedKernelImages"])
    kinds = {"grub": "grub", "systemd-boot": "bls"}
    if uki in ("signed", "unsigned", "enabled", "yes") or loader == "uki":
        ways = ["uki"]
    elif uki in ("none", "disabled", "no"):
        ways = [kinds.get(loader, "uki")]
    else:
        ways = list(dict.fromkeys(["uki", kinds.get(loader, "uki")]))
    lines: dict[str, bytes] = {}
    for way in ways:
        if way == "uki":
            lines[way] = joined.encode()
            continue
        first = re.split(r"\r\n|\n|\r", joined, maxsplit=1)[0]
        if way == "grub":  # mkosi puts finalize_root() first; GRUB passes plain words joined by spaces
            words = ([ROOTHASH] if roothash else []) + first.split()
            first = "BOOT_IMAGE=/vmlinuz-0.0.0-cvm " + " ".join(words)
        lines[way] = first.encode()
    return lines


# ---- apt --------------------------------------------------------------------------------------------
def apt_installs(tool_root: Path, names: list[str]) -> set[str] | str:
    """The packages `apt-get --simulate install` would install for `names` (with their dependencies,
    without recommends), in the tool root; or apt's refusal."""
    if not names:
        return set()
    with tempfile.TemporaryDirectory(prefix="cvmlint-apt-") as tmp:
        (Path(tmp) / "status").write_text("")  # a fresh image: nothing installed yet
        argv = ["apt-get", "--simulate", "-o", "Debug::NoLocking=1", "-o", f"Dir::State::status={tmp}/status"]
        try:
            out = run_trixie(tool_root, *argv, "--no-install-recommends", "install", *names, binds=(Path(tmp),))
        except AssertionError as err:
            return f"apt refuses: {str(err).splitlines()[-1]}"
    return {m.group(1).split(":")[0] for m in re.finditer(r"^Inst (\S+)", out, re.M)}
