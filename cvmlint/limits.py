"""The resource budget: every length, count, depth and size an input controls, in one table.

Each reader asks `check(name, value, …)` before it does the work the value asks for; past the limit
it raises `LimitExceeded` (a `FormatError` naming the structure and offset, and the limit and how to
raise it), which the scan turns into unknown facts where something else can still be read, or exit 2
where nothing can. The defaults are generous next to the largest real values seen (the `seen`
column, measured by bench/limits_seen.py; `CVMLINT_LIMIT_STATS=FILE` records them for any run).
A user raises a limit with `--limit NAME=VALUE` or `[limits]` in cvmlint.toml; `cvmlint limits`
lists them.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from cvmlint.errors import FormatError, InputError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class Limit:
    """One named limit."""

    name: str
    default: int
    what: str
    seen: str
    """The largest real value seen, and where."""
    unit: str = ""


TABLE: dict[str, Limit] = {
    lim.name: lim
    for lim in (
        Limit(
            "container-disk-bytes",
            256 * GiB,
            "a disk extracted from a tarball (written sparse)",
            "GCE's Debian 12 image: a 10 GiB disk.raw (not scanned here)",
            "bytes",
        ),
        Limit(
            "container-table-bytes",
            64 * MiB,
            "a qcow2 L1/L2 or refcount table, a VHD block allocation table",
            "qemu-img's 1 GiB test images: 8 bytes of L1; a 2 TiB disk needs 32 KiB",
            "bytes",
        ),
        Limit(
            "kernel-bytes",
            256 * MiB,
            "a kernel image, and its payload once decompressed",
            "Debian 6.1 cloud kernel: 51 MiB vmlinux",
            "bytes",
        ),
        Limit(
            "kernel-sections",
            4096,
            "section headers of a decompressed kernel or a module",
            "Debian 6.1 cloud vmlinux: 39",
        ),
        Limit(
            "kernel-config-bytes",
            8 * MiB,
            "a kernel configuration (file or IKCONFIG)",
            "Debian 6.1 cloud kernel's config: 120 KiB",
            "bytes",
        ),
        Limit("initrd-bytes", 1 * GiB, "an initrd, unpacked", "the UKI test image's initrd: 110 MiB unpacked", "bytes"),
        Limit("initrd-entries", 200_000, "entries in an initrd", "the Debian tdx-base build's initrd: 3,364"),
        Limit("initrd-segments", 64, "concatenated cpio segments of an initrd", "2 (microcode and the main archive)"),
        Limit(
            "module-bytes",
            256 * MiB,
            "a kernel module, read whole or decompressed to find its signature trailer",
            "the largest module of the Debian 6.1 cloud kernel: 4 MiB",
            "bytes",
        ),
        Limit(
            "package-database-bytes",
            256 * MiB,
            "the dpkg status database",
            "the Debian cloud test image's: 1.2 MiB",
            "bytes",
        ),
        Limit(
            "config-file-bytes",
            4 * MiB,
            "a configuration file of an image read as text (os-release, fstab, crypttab, units, loader entries)",
            "under 4 KiB in every test image",
            "bytes",
        ),
        Limit("pe-sections", 96, "sections of a PE image read (EFI binaries, UKIs)", "a UKI: 9 (systemd 252)"),
        Limit("pe-certificates", 16, "Authenticode certificates in a PE image", "1 (signed shim, GRUB, a UKI)"),
        Limit(
            "boot-reads",
            64,
            "files one boot reads through GRUB (kernel, initrds, configurations) for a measurement prediction",
            "3 (a kernel, an initrd, grub.cfg)",
        ),
        Limit(
            "grub-value-bytes",
            64 * KiB,
            "a GRUB variable or word after expansion (`set a=$a$a` doubles it)",
            "a kernel command line: under 300 bytes",
            "bytes",
        ),
        Limit("policy-interpolations", 64, "`{…}` in one policy message", "cvm-baseline: 3"),
        Limit(
            "pattern-instructions",
            20_000,
            "the RE2 program of one `matches` pattern of a policy (every file name is matched against it)",
            "cvm-baseline: 177",
        ),
        Limit(
            "json-integer-digits", 40, "digits of an integer in a bundle's or a record's JSON", "20 (a size in bytes)"
        ),
        Limit(
            "boot-file-bytes",
            256 * MiB,
            "one boot file read whole (PE, UKI, GRUB config)",
            "the UKI test image's UKI: 34 MiB",
            "bytes",
        ),
        Limit(
            "boot-files-bytes",
            512 * MiB,
            "all boot binaries of an ESP read into memory (each distinct file once)",
            "the UKI test image's UKI, shim and systemd-boot: under 40 MiB",
            "bytes",
        ),
        Limit(
            "console-bytes",
            64 * MiB,
            "what `cvmlint boot` reads from an image's serial console",
            "the tdx-base boot under TCG: 40 KiB",
            "bytes",
        ),
        Limit(
            "eventlog-bytes",
            16 * MiB,
            "an event log given to `measure --eventlog`",
            "OVMF's log of the UKI test boot: 9 KiB",
            "bytes",
        ),
        Limit(
            "grub-steps",
            100_000,
            "commands GRUB runs while `measure` follows one boot (function calls included)",
            "the grub-mkconfig test image: 55",
        ),
        Limit(
            "grub-read-bytes",
            4 * GiB,
            "bytes of the files GRUB opens while `measure` follows one boot",
            "the grub-mkconfig test image: 55 MiB (kernel and initrd)",
            "bytes",
        ),
        Limit("grub-config-bytes", 4 * MiB, "a grub.cfg", "the test images' grub.cfg: 300 bytes", "bytes"),
        Limit(
            "grub-files", 16, "GRUB configs followed through configfile/source", "2 (shim's stub and the real config)"
        ),
        Limit("grub-tokens", 200_000, "words in all GRUB configs of a boot", "the test images' grub.cfg: 32"),
        Limit("grub-depth", 32, "nesting of GRUB blocks (if/menuentry/submenu/function)", "3"),
        Limit(
            "directory-bytes",
            64 * MiB,
            "one directory's data (erofs, ext4)",
            "24 KiB (the largest directory of the Debian tdx-base build)",
            "bytes",
        ),
        Limit("directory-entries", 1_000_000, "entries of one directory", "686"),
        Limit(
            "tree-entries",
            5_000_000,
            "files in one file-system tree",
            "11,019 (the Debian cloud test image with gcc and python3)",
        ),
        Limit("path-depth", 256, "directory nesting", "11"),
        Limit("symlink-hops", 40, "symbolic links followed to resolve one path (the kernel's limit)", "1"),
        Limit(
            "xattr-bytes",
            1 * MiB,
            "names and values of one file's extended attributes (squashfs values stored once may be named by "
            "every attribute)",
            "under 200 bytes (security.capability in the test images)",
            "bytes",
        ),
        Limit(
            "fat-directory-entries",
            65_536,
            "entries of one FAT directory (FAT's own limit)",
            "ESP directories of the test images: under 10",
        ),
        Limit("gpt-entries", 1024, "GPT partition entries", "128 (the usual table)"),
        Limit(
            "recipe-file-bytes",
            1 * MiB,
            "one recipe configuration file",
            "5.7 KiB (mkosi's own mkosi-tools configuration)",
            "bytes",
        ),
        Limit(
            "recipe-files",
            500,
            "configuration files one recipe reads (includes, drop-ins, profiles)",
            "16 (our tdx-base with the dev profile)",
        ),
        Limit(
            "recipe-packages",
            20_000,
            "packages one recipe names (settings and scripts)",
            "67 (mkosi's mkosi-tools for Fedora)",
        ),
        Limit("recipe-tree-files", 100_000, "files in a recipe's extra and skeleton trees", "our recipes: 4"),
        Limit("script-bytes", 1 * MiB, "one recipe script", "901 bytes (our mkosi.finalize)", "bytes"),
        Limit(
            "policy-file-bytes", 1 * MiB, "a policy, an allowlist or a data file", "24 KiB (cvm-baseline.cvmp)", "bytes"
        ),
        Limit("policy-depth", 100, "nesting of a policy expression", "cvm-baseline: 6"),
        Limit(
            "include-depth",
            32,
            "includes within includes (policies, and mkosi's Include=)",
            "1 (our recipes and mkosi's own configurations)",
        ),
        Limit(
            "bundle-bytes",
            2 * GiB,
            "an evidence bundle: its tar file, or all its files together",
            "the bundle of a scan of our tdx-base image: 2.1 MiB",
            "bytes",
        ),
        Limit(
            "bundle-file-bytes",
            1 * GiB,
            "one file of an evidence bundle",
            "facts.json of the Debian cloud test image (11,019 files): 9 MiB",
            "bytes",
        ),
        Limit("bundle-files", 20_000, "files in an evidence bundle", "16 (a scan with the baseline policy)"),
        Limit("bundle-depth", 32, "directory nesting in an evidence bundle", "3 (policy/allowlists/…)"),
        Limit("key-bytes", 64 * KiB, "a PEM key file", "241 bytes (an Ed25519 private key)", "bytes"),
        Limit(
            "record-bytes",
            64 * MiB,
            "a build record (.build.json), and each recipe file it names when a rebuild hashes it",
            "our tdx-base's record: 64 KiB",
            "bytes",
        ),
        Limit(
            "timeout",
            900,
            "wall-clock seconds of one scan or lint; unfinished facts become unknown",
            "a full scan of the 1 GiB test image: 3 s",
            "seconds",
        ),
    )
}

_values: dict[str, int] = {}
_seen: dict[str, int] = {}
_deadline = 0.0


class LimitExceeded(FormatError):
    """A value the input controls is past its limit."""

    def __init__(self, fmt: str, structure: str, offset: int, name: str, value: int) -> None:
        self.limit = name
        if name == "timeout":
            problem = f"the run passed its wall-clock budget of {get(name)} s here (raise it with --timeout N)"
        else:
            problem = (
                f"{_show(value, name)} ({TABLE[name].what}) is over the limit {name} = {_show(get(name), name)} "
                f"(raise it with --limit {name}=N)"
            )
        super().__init__(fmt, structure, offset, problem)


def overrides() -> dict[str, int]:
    """The limits this run set (by option or configuration)."""
    return dict(_values)


def get(name: str) -> int:
    """The limit's value in force."""
    return _values.get(name, TABLE[name].default)


def note(name: str, value: int) -> None:
    """Record a value for CVMLINT_LIMIT_STATS (where the limit itself is enforced elsewhere)."""
    if _stats_file:
        _seen[name] = max(_seen.get(name, 0), value)


def seen() -> dict[str, int]:
    """The largest values recorded so far (a forked worker hands them back to its parent)."""
    return dict(_seen)


def merge_seen(values: dict[str, int]) -> None:
    """Take in the largest values a forked worker recorded."""
    for name, value in values.items():
        _seen[name] = max(_seen.get(name, 0), value)


def check(name: str, value: int, fmt: str, structure: str, offset: int = 0) -> None:
    """Raise LimitExceeded when `value` is past the limit `name`."""
    if _stats_file:
        _seen[name] = max(_seen.get(name, 0), value)
    if value > get(name):
        raise LimitExceeded(fmt, structure, offset, name, value)


def start_clock() -> None:
    """Start the wall-clock budget (the `timeout` limit) of this run."""
    global _deadline
    _deadline = time.monotonic() + get("timeout")


def tick(fmt: str, structure: str, offset: int = 0) -> None:
    """Called in long loops: past the run's wall-clock budget, the work in progress stops with
    LimitExceeded (what it would have established becomes unknown)."""
    if _deadline and time.monotonic() > _deadline:
        raise LimitExceeded(fmt, structure, offset, "timeout", int(time.monotonic() - _deadline + get("timeout")))


def configure(settings: dict[str, str | int], where: str, override: bool = True) -> None:
    """Set limits from `NAME=VALUE` options or a `[limits]` table (VALUE may end in K, M, G); a table
    read after the command line (`override=False`) does not change what the command line set."""
    for name, raw in settings.items():
        if name not in TABLE:
            raise InputError(f"{where}: no limit named {name!r} (`cvmlint limits` lists them)")
        value = parse_value(raw, f"{where}: limit {name}")
        if override or name not in _values:
            _values[name] = value


def parse_value(raw: str | int, what: str) -> int:
    """An integer, or a number followed by K, M or G (binary)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        text = str(raw).strip()
        scale = {"K": KiB, "M": MiB, "G": GiB}.get(text[-1:].upper(), 1)
        digits = text[:-1] if scale > 1 else text
        if not digits.isdigit() or len(digits) > 15:
            raise InputError(f"{what}: {raw!r} is not a count or a size such as 512M")
        value = int(digits) * scale
    if value <= 0:
        raise InputError(f"{what}: must be positive")
    return value


def parse_options(options: list[str]) -> dict[str, str | int]:
    """`--limit NAME=VALUE` options."""
    out: dict[str, str | int] = {}
    for option in options:
        name, sep, value = option.partition("=")
        if not sep:
            raise InputError(f"--limit {option}: expected NAME=VALUE")
        out[name.strip()] = value
    return out


def _show(value: int, name: str) -> str:
    if TABLE[name].unit == "bytes" and value >= GiB and value % GiB == 0:
        return f"{value // GiB} GiB"
    if TABLE[name].unit == "bytes" and value >= MiB and value % MiB == 0:
        return f"{value // MiB} MiB"
    return str(value)


def render() -> str:
    """The table `cvmlint limits` prints."""
    rows = [(n, _show(get(n), n) + (" *" if n in _values else ""), lim.what, lim.seen) for n, lim in TABLE.items()]
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [
        f"{n:{width[0]}}  {v:>{width[1]}}  {what}\n    largest seen: {seen}" for n, v, what, seen in rows
    ]  # two lines each: readable at 80 columns
    return "\n".join(lines) + "\n" + ("* set by this run\n" if _values else "")


_stats_file = os.environ.get("CVMLINT_LIMIT_STATS", "")


def write_stats() -> None:
    """Merge this run's largest values into CVMLINT_LIMIT_STATS (a JSON object), when it is set."""
    if not _stats_file:
        return
    try:
        with open(_stats_file) as fh:
            old = json.load(fh)
    except (OSError, ValueError):
        old = {}
    merged = {k: max(old.get(k, 0), v) for k, v in _seen.items()} | {k: v for k, v in old.items() if k not in _seen}
    with open(_stats_file, "w") as fh:
        json.dump(merged, fh, indent=1, sort_keys=True)
