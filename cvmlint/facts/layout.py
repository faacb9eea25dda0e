"""What a recipe's trees and an image's root mean alike: file kinds, where mount units live, which
partitions systemd mounts by their type. Both fact makers use these, so a recipe and the image built
from it are judged by one table."""

from __future__ import annotations

import stat

UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
"""Where systemd looks for mount units, in its order of precedence."""

AUTO_MOUNTS = {"var": "/var", "home": "/home", "srv": "/srv", "tmp": "/var/tmp"}
"""Discoverable-Partitions type -> where systemd-gpt-auto-generator mounts it."""

_KINDS = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


def file_kind(mode: int) -> str:
    """`file`, `dir`, `symlink`, `char`, `block`, `fifo` or `socket`.

    Type bits that name no kind count as `file`, so the rules about regular files still look at it
    (a hostile image must not hide a set-id program behind an invalid type)."""
    return _KINDS.get(stat.S_IFMT(mode), "file")
