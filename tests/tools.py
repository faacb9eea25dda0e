"""External tools used by tests, through one wrapper, and the cached real root trees they build from."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("CVMLINT_TEST_CACHE", "/var/cache/cvmlint-tests"))
PACKAGES = {
    "mkfs.erofs": "erofs-utils", "fsck.erofs": "erofs-utils", "veritysetup": "cryptsetup-bin",
    "cryptsetup": "cryptsetup-bin", "sfdisk": "fdisk", "sgdisk": "gdisk", "mkfs.vfat": "dosfstools",
    "mcopy": "mtools", "mkfs.ext4": "e2fsprogs", "debugfs": "e2fsprogs", "mksquashfs": "squashfs-tools",
    "qemu-img": "qemu-utils", "debootstrap": "debootstrap", "mkswap": "util-linux", "sbsign": "sbsigntool",
    "openssl": "openssl", "objcopy": "binutils", "git": "git", "perl": "perl-base", "xz": "xz-utils",
    "linux-source-6.1-tarball": "linux-source-6.1",
}


def require(*tools: str) -> None:
    """Skip when a tool is missing, except in CI (CVMLINT_CI=1), where that is a failure."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        names = ", ".join(f"{t} ({PACKAGES.get(t, '?')})" for t in missing)
        if os.environ.get("CVMLINT_CI"):
            pytest.fail(f"required tools missing in CI: {names}")
        pytest.skip(f"missing tools: {names}")


def run(*argv: str | Path, ok: tuple[int, ...] = (0,), env: dict[str, str] | None = None,
        cwd: Path | None = None) -> str:
    """Run a tool; fail the test with its (truncated) stderr when it exits otherwise."""
    require(str(argv[0]))
    full_env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", **(env or {})}
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=full_env, cwd=cwd)
    if result.returncode not in ok:
        err = "\n".join(result.stderr.splitlines()[-25:])
        raise AssertionError(f"{' '.join(map(str, argv))} exited {result.returncode}:\n{err}")
    return result.stdout


MINBASE_RECIPE = "debootstrap --variant=minbase bookworm http://deb.debian.org/debian"


def minbase_tree() -> Path:
    """A debootstrap'd Debian bookworm minbase tree, built once and cached by the recipe's hash."""
    key = hashlib.sha256(MINBASE_RECIPE.encode()).hexdigest()[:12]
    tree = CACHE / f"minbase-{key}"
    if (tree / "usr/lib/os-release").exists():
        return tree
    if os.geteuid() != 0:
        if os.environ.get("CVMLINT_CI"):
            pytest.fail("building the minbase test tree needs root")
        pytest.skip("building the minbase test tree needs root")
    require("debootstrap")
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / f"minbase-{key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    argv = MINBASE_RECIPE.split()
    run(*argv[:-2], argv[-2], tmp, argv[-1])
    tmp.rename(tree)
    return tree


TRIXIE_PACKAGES = ("erofs-utils systemd-repart cryptsetup-bin dosfstools mtools fdisk squashfs-tools")
TRIXIE_RECIPE = f"debootstrap --variant=minbase trixie http://deb.debian.org/debian + apt-get install {TRIXIE_PACKAGES}"


def trixie_root() -> Path:
    """A Debian trixie chroot with newer image tools (erofs-utils 1.8, systemd-repart 257), cached."""
    key = hashlib.sha256(TRIXIE_RECIPE.encode()).hexdigest()[:12]
    root = CACHE / f"trixie-{key}"
    if (root / "usr/bin/systemd-repart").exists():
        return root
    if os.geteuid() != 0:
        if os.environ.get("CVMLINT_CI"):
            pytest.fail("building the trixie tool chroot needs root")
        pytest.skip("building the trixie tool chroot needs root")
    require("debootstrap", "unshare", "chroot")
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / f"trixie-{key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    run("debootstrap", "--variant=minbase", "trixie", tmp, "http://deb.debian.org/debian")
    run("chroot", tmp, "sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
        f"--no-install-recommends {TRIXIE_PACKAGES}")
    tmp.rename(root)
    return root


def run_trixie(root: Path, *argv: str) -> str:
    """Run a command inside the trixie chroot, with /proc and /dev in a private mount namespace."""
    script = (f"mount -t proc proc {root}/proc && mount --rbind /dev {root}/dev && "
              f"exec chroot {root} \"$@\"")
    return run("unshare", "-m", "sh", "-c", script, "trixie", *argv)
