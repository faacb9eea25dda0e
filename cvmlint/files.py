"""Reading files on the host (recipes, policies, allowlists, scripts), bounded and by type.

A recipe or policy can name or link anything: `/dev/zero`, a FIFO, `/proc/kcore`, an 8 GB sparse
file. Only regular files are read, opened without blocking, and never beyond their limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cvmlint import limits
from cvmlint.errors import InputError


class Refused(InputError):
    """A file not read: `reason` says why (the message names the file and what it was for)."""

    def __init__(self, shown: str, what: str, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{shown}: cannot read {what}: {reason}")


_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def read_bounded(path: Path, limit: str, what: str, shown: str | None = None) -> bytes:
    """The bytes of a regular file (symlinks followed), refused when it is anything else or larger
    than the limit `limit`."""
    shown = shown or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise Refused(shown, what, str(err.strerror or err)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
            raise Refused(shown, what, f"it is {kind}, not a regular file")
        most = limits.get(limit)
        limits.note(limit, st.st_size)
        if st.st_size > most:
            raise Refused(
                shown,
                what,
                f"its {st.st_size} bytes are over the limit {limit} = {most} (raise it with --limit {limit}=N)",
            )
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, most + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > most:  # the file grew while read
                raise Refused(shown, what, f"it grew past the limit {limit} = {most} while read")
        return b"".join(chunks)
    except OSError as err:
        raise Refused(shown, what, str(err.strerror or err)) from None
    finally:
        os.close(fd)


def is_regular(path: Path) -> bool:
    """A regular file, symlinks followed (no error for what does not exist)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def present(path: Path) -> bool:
    """There, and not a directory: a device or FIFO in a file's place counts (reading it is then
    refused by its kind, not skipped as if absent)."""
    try:
        return not stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False
