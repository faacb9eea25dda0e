"""Mounts from the text of /etc/fstab and of systemd mount units: shared by the image scanner and
the recipe reader, which only differ in where the text comes from."""

from __future__ import annotations

from collections.abc import Callable

from cvmlint.facts.model import Mount
from cvmlint.facts.provenance import Provenance

VOLATILE = frozenset(
    {
        "tmpfs",
        "ramfs",
        "swap",
        # kernel pseudo file systems: views of kernel state, never storage
        "proc",
        "sysfs",
        "devtmpfs",
        "devpts",
        "mqueue",
        "cgroup",
        "cgroup2",
        "debugfs",
        "securityfs",
        "configfs",
        "hugetlbfs",
        "tracefs",
        "bpf",
        "efivarfs",
        "fusectl",
        "pstore",
        "binfmt_misc",
        "autofs",
        "nsfs",
        "rpc_pipefs",
        "selinuxfs",
        "smackfs",
        "resctrl",
        "nfsd",
    }
)
"""File systems whose content does not survive a reboot: memory, and the kernel's pseudo file systems."""
Locate = Callable[[int], Provenance]
"""Line number -> where that line is."""


def crypttab_names(text: str) -> set[str]:
    """The volume names /etc/crypttab opens."""
    return {f[0] for f in (line.split() for line in text.splitlines()) if f and not f[0].startswith("#")}


def encrypted(what: str, crypt: set[str]) -> bool:
    return what.startswith("/dev/mapper/") and what.removeprefix("/dev/mapper/") in crypt


def fstab_mounts(text: str, crypt: set[str], locate: Locate) -> list[Mount]:
    """Every fstab line but the root and swap."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#") or len(fields) < 3:
            continue
        what, path, fstype = fields[0], fields[1], fields[2]
        if path == "/" or fstype == "swap":
            continue
        out.append(
            Mount(
                path=path,
                fstype=fstype,
                what=what,
                options=fields[3] if len(fields) > 3 else "",
                persistent=fstype not in VOLATILE,
                encrypted=encrypted(what, crypt),
                where=locate(number),
            )
        )
    return out


def unit_mount(text: str, crypt: set[str], locate: Locate) -> Mount | None:
    """The [Mount] section of a mount unit, or None without a Where=."""
    section, values, lines = "", {}, {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Mount]" and "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            values[key.strip()], lines[key.strip()] = value.strip(), number
    if not values.get("Where"):
        return None
    fstype, what = values.get("Type", ""), values.get("What", "")
    return Mount(
        path=values["Where"],
        fstype=fstype,
        what=what,
        options=values.get("Options", ""),
        persistent=fstype not in VOLATILE,
        encrypted=encrypted(what, crypt),
        where=locate(lines["Where"]),
    )


def unit_installed(text: str) -> bool:
    """The unit has an [Install] section that wants it somewhere (enabled by presets at build)."""
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Install]" and line.split("=", 1)[0].strip() in ("WantedBy", "RequiredBy", "UpheldBy"):
            return True
    return False
