"""External tools used by tests, through one wrapper, and the cached real root trees they build from."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cvmlint.toolroot import ToolRoot

CACHE = Path(os.environ.get("CVMLINT_TEST_CACHE", "/var/cache/cvmlint-tests"))
PACKAGES = {
    "mkfs.erofs": "erofs-utils",
    "fsck.erofs": "erofs-utils",
    "veritysetup": "cryptsetup-bin",
    "cryptsetup": "cryptsetup-bin",
    "sfdisk": "fdisk",
    "sgdisk": "gdisk",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "mkfs.ext4": "e2fsprogs",
    "debugfs": "e2fsprogs",
    "mksquashfs": "squashfs-tools",
    "qemu-img": "qemu-utils",
    "debootstrap": "debootstrap",
    "mkswap": "util-linux",
    "sbsign": "sbsigntool",
    "openssl": "openssl",
    "objcopy": "binutils",
    "git": "git",
    "perl": "perl-base",
    "xz": "xz-utils",
    "linux-source-6.1-tarball": "linux-source-6.1",
    "make": "build-essential",
    "gcc": "build-essential",
    "qemu-system-x86_64": "qemu-system-x86",
    "iasl": "acpica-tools",
    "blkid": "util-linux",
    "swtpm": "swtpm",
    "swtpm_setup": "swtpm-tools",
    "tpm2_eventlog": "tpm2-tools",
    "mtype": "mtools",
}


def require(*tools: str) -> None:
    """Skip when a tool is missing, except in CI (CVMLINT_CI=1), where that is a failure."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        names = ", ".join(f"{t} ({PACKAGES.get(t, '?')})" for t in missing)
        if os.environ.get("CVMLINT_CI"):
            pytest.fail(f"required tools missing in CI: {names}")
        pytest.skip(f"missing tools: {names}")


def run(
    *argv: str | Path, ok: tuple[int, ...] = (0,), env: dict[str, str] | None = None, cwd: Path | None = None
) -> str:
    """Run a tool; fail the test with its (truncated) stderr when it exits otherwise."""
    require(str(argv[0]))
    full_env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", **(env or {})}
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=full_env, cwd=cwd)
    if result.returncode not in ok:
        err = "\n".join(result.stderr.splitlines()[-25:])
        raise AssertionError(f"{' '.join(map(str, argv))} exited {result.returncode}:\n{err}")
    return result.stdout


MINBASE_RECIPE = "debootstrap --variant=minbase bookworm"


def mirror() -> str:
    """The Debian mirror of this machine's apt configuration (never a host name written here)."""
    from cvmlint.apt import debian_mirror

    return debian_mirror()


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        if os.environ.get("CVMLINT_CI"):
            pytest.fail(f"{what} needs root")
        pytest.skip(f"{what} needs root")


KERNEL_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")


def kernel_source(*files: str) -> Path:
    """Files of Debian's linux-source-6.1 (paths below linux-source-6.1/), extracted once into the cache."""
    import hashlib

    if not KERNEL_TARBALL.exists():
        require("linux-source-6.1-tarball")  # not a command: skips here, fails in CI (test-setup installs it)
    stamp = f"{KERNEL_TARBALL.stat().st_size}-{KERNEL_TARBALL.stat().st_mtime_ns}"
    key = hashlib.sha256("\0".join(sorted(files)).encode()).hexdigest()[:8]
    target = CACHE / f"linux-source-6.1-{stamp}-{key}"
    if not (target / "done").exists():
        require("tar", "xz")
        target.mkdir(parents=True, exist_ok=True)
        run("tar", "-xJf", KERNEL_TARBALL, "-C", target, *[f"linux-source-6.1/{n}" for n in files])
        (target / "done").write_text("ok")
    return target / "linux-source-6.1"


def minbase_tree() -> Path:
    """A debootstrap'd Debian bookworm minbase tree, built once and cached by the recipe's hash."""
    key = hashlib.sha256(MINBASE_RECIPE.encode()).hexdigest()[:12]
    tree = CACHE / f"minbase-{key}"
    if (tree / "usr/lib/os-release").exists():
        return tree
    _need_root("building the minbase test tree")
    require("debootstrap")
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / f"minbase-{key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    run(*MINBASE_RECIPE.split(), tmp, mirror())
    tmp.rename(tree)
    return tree


TRIXIE = ToolRoot(
    "trixie",
    ("erofs-utils", "systemd-repart", "cryptsetup-bin", "dosfstools", "mtools", "fdisk", "squashfs-tools", "mkosi"),
)
"""mkosi 25.3, systemd-repart 257, erofs-utils 1.8."""
SID = ToolRoot("trixie", ("mkosi", "systemd-repart", "erofs-utils", "dosfstools", "mtools"), tools_suite="sid")
"""mkosi 27.1 and systemd-repart 262 from sid, on a trixie base."""


def tool_root(recipe: ToolRoot = TRIXIE) -> Path:
    """A cached tool root (see cvmlint.toolroot), made on first use."""
    if recipe.exists(CACHE):
        return recipe.path(CACHE)
    _need_root(f"making the {recipe.name} tool root")
    require("debootstrap", "unshare", "chroot")
    return recipe.ensure(CACHE, mirror())


def trixie_root() -> Path:
    """A Debian trixie chroot with newer image tools (erofs-utils 1.8, systemd-repart 257, mkosi 25.3)."""
    return tool_root(TRIXIE)


def run_trixie(root: Path, *argv: str, binds: tuple[Path, ...] = ()) -> str:
    """Run a command inside a tool root, in a private mount namespace."""
    from cvmlint.toolroot import run_in_root
    from cvmlint.tools import ToolError

    try:
        return run_in_root(root, argv, binds=binds).stdout
    except ToolError as err:
        raise AssertionError(str(err)) from None


def secure_boot_key() -> tuple[Path, Path]:
    """A Secure Boot signing key for the tests' builds (kernel and mkosi), made once and kept, so that
    the kernel built with it stays cached (CN=cvmlint test secure boot key)."""
    require("openssl")
    directory = CACHE / "secure-boot-test-key"
    key, cert = directory / "db.key", directory / "db.crt"
    if not cert.exists():
        directory.mkdir(parents=True, exist_ok=True)
        run(
            "openssl",
            "req",
            "-new",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "36500",
            "-sha256",
            "-subj",
            "/CN=cvmlint test secure boot key/O=cvmlint tests",
            "-keyout",
            key,
            "-out",
            cert,
        )
    return key, cert
