"""Random-access byte sources: an image file, a slice of one (a partition), bytes in memory.

Every reader reads through `read_exact`, which checks the range against the source's real size
and turns a short read into a FormatError naming the structure and its offset.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from cvmlint.errors import FormatError, InputError

Buffer = bytes | bytearray
"""File content held in memory: large reads stay bytearrays (a bytes() copy doubles the peak)."""


class ByteSource(Protocol):
    """A read-only, random-access run of bytes of known size."""

    name: str
    size: int

    def pread(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes at `offset` (fewer only at the end)."""
        ...


class FileSource:
    """A regular file or block device, opened read-only; never written."""

    def __init__(self, path: str | Path) -> None:
        self.name = str(path)
        try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
            self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError as err:
            raise InputError(f"{path}: cannot open: {err.strerror}") from None
        mode = os.fstat(self._fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
            os.close(self._fd)
            kind = "a character device" if stat.S_ISCHR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "neither"
            raise InputError(f"{path}: not an image: only a regular file or a block device is read ({kind})")
        self.size = os.lseek(self._fd, 0, os.SEEK_END)

    @classmethod
    def adopt(cls, fd: int, name: str) -> FileSource:
        """A source over an open descriptor (a duplicate of it: the caller keeps its own)."""
        source = cls.__new__(cls)
        source.name, source._fd = name, os.dup(fd)
        source.size = os.lseek(source._fd, 0, os.SEEK_END)
        return source

    def pread(self, offset: int, length: int) -> bytes:
        """Bytes at `offset`, read with pread(2)."""
        if length <= 0 or offset >= self.size:
            return b""
        return os.pread(self._fd, min(length, self.size - offset), offset)

    def fileno(self) -> int:
        """The file descriptor (for mmap by the verity hasher)."""
        return self._fd

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BytesSource:
    """Bytes held in memory (a file read out of a file system, a test sample)."""

    def __init__(self, data: bytes, name: str = "<bytes>") -> None:
        self.name = name
        self._data = data
        self.size = len(data)

    def pread(self, offset: int, length: int) -> bytes:
        """A slice of the bytes."""
        if offset < 0:
            return b""
        return self._data[offset : offset + max(0, length)]


class SliceSource:
    """A window of another source, such as one partition of a disk image."""

    def __init__(
        self, parent: ByteSource, start: int, length: int, name: str, fmt: str = "image", structure: str = "slice"
    ) -> None:
        if start < 0 or length < 0 or start + length > parent.size:
            raise FormatError(
                fmt,
                structure,
                start,
                f"spans bytes {start}..{start + length} but {parent.name} has only {parent.size} bytes",
            )
        self.parent = parent
        self.start = start
        self.size = length
        self.name = name

    def pread(self, offset: int, length: int) -> bytes:
        """Bytes at `offset` within the window."""
        if offset < 0 or offset >= self.size:
            return b""
        return self.parent.pread(self.start + offset, min(length, self.size - offset))

    def absolute(self, offset: int) -> int:
        """The offset in the outermost source."""
        parent = self.parent
        total = self.start + offset
        while isinstance(parent, SliceSource):
            total += parent.start
            parent = parent.parent
        return total


def read_exact(src: ByteSource, offset: int, length: int, fmt: str, structure: str) -> bytes:
    """Exactly `length` bytes at `offset`, or a FormatError saying what was cut off."""
    if offset < 0 or length < 0 or offset + length > src.size:
        raise FormatError(fmt, structure, offset, f"needs {length} bytes but {src.name} ends at byte {src.size}")
    data = src.pread(offset, length)
    if len(data) != length:
        raise FormatError(fmt, structure, offset, f"short read: {len(data)} of {length} bytes")
    return data


def unpack(layout: struct.Struct, data: bytes, offset: int, fmt: str, structure: str) -> tuple[Any, ...]:
    """`layout.unpack_from(data, offset)` with a FormatError instead of struct.error."""
    if offset < 0 or offset + layout.size > len(data):
        raise FormatError(fmt, structure, offset, f"needs {layout.size} bytes, {max(0, len(data) - offset)} left")
    return layout.unpack_from(data, offset)


class FileMode:
    """The file-type predicates of an inode with a POSIX `mode` (erofs, ext4)."""

    mode: int

    @property
    def is_dir(self) -> bool:
        """A directory."""
        return stat.S_ISDIR(self.mode)

    @property
    def is_reg(self) -> bool:
        """A regular file."""
        return stat.S_ISREG(self.mode)

    @property
    def is_symlink(self) -> bool:
        """A symbolic link."""
        return stat.S_ISLNK(self.mode)


def first_bytes(pieces: Iterable[bytes], length: int) -> bytes:
    """The first `length` bytes of a stream of pieces, reading no further than needed."""
    out = bytearray()
    for piece in pieces:
        out += piece
        if len(out) >= length:
            break
    return bytes(out[:length])
