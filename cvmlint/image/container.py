"""Open an image file whatever its container: raw, qcow2, VHD, or a tar(.gz) wrapping disk.raw.

A tarball is streamed through libarchive into a sparse temporary file (runs of zeros become
holes), capped by the size its header declares; nothing is held in memory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from cvmlint import limits
from cvmlint.errors import FormatError, InputError
from cvmlint.image.qcow2 import MAGIC as QCOW2_MAGIC
from cvmlint.image.qcow2 import Qcow2Source
from cvmlint.image.source import ByteSource, FileSource
from cvmlint.image.vhd import VhdSource, has_footer

CHUNK = 1 << 20


@dataclass(frozen=True)
class Container:
    """One container an image file can come in: how its first bytes say so, and how its disk is opened."""

    kind: str
    recognise: Callable[[bytes, FileSource], bool]
    open: Callable[[FileSource, str | None], AbstractContextManager[ByteSource]]


def _tar(head: bytes, src: FileSource) -> bool:
    return head[257:262] == b"ustar"


def _starts(magic: bytes) -> Callable[[bytes, FileSource], bool]:
    return lambda head, src: head.startswith(magic)


def _disk_in_archive(outer: FileSource, tmpdir: str | None) -> AbstractContextManager[ByteSource]:
    return _extract_disk(Path(outer.name), tmpdir)


CONTAINERS: tuple[Container, ...] = (
    Container("qcow2", _starts(QCOW2_MAGIC), lambda outer, _: nullcontext(Qcow2Source(outer))),
    Container("vhd", lambda head, src: has_footer(src), lambda outer, _: nullcontext(VhdSource(outer))),
    Container("tar", _tar, _disk_in_archive),
    Container("tar.gz", _starts(b"\x1f\x8b"), _disk_in_archive),
    Container("tar.xz", _starts(b"\xfd7zXZ\x00"), _disk_in_archive),
    Container("tar.zst", _starts(b"\x28\xb5\x2f\xfd"), _disk_in_archive),
)
"""Every container cvmlint opens, in the order they are recognised; anything else is a raw disk."""
RAW = Container("raw", lambda head, src: True, lambda outer, _: nullcontext(outer))


def container_of(src: FileSource) -> Container:
    """The container an image file comes in (RAW when none)."""
    head = src.pread(0, 512)
    return next((c for c in CONTAINERS if c.recognise(head, src)), RAW)


@contextmanager
def open_image(path: str | Path, tmpdir: str | None = None) -> Iterator[tuple[ByteSource, str]]:
    """(the disk's bytes, the container kind); temporary files are removed on exit."""
    outer = FileSource(path)
    try:
        container = container_of(outer)
        with container.open(outer, tmpdir) as disk:
            yield disk, container.kind
    finally:
        outer.close()


@contextmanager
def _extract_disk(path: Path, tmpdir: str | None) -> Iterator[FileSource]:
    import libarchive

    fd, name = tempfile.mkstemp(prefix="cvmlint-disk-", suffix=".raw", dir=tmpdir)
    os.unlink(name)  # nameless from the start: nothing is left behind however the run ends, even by SIGKILL
    try:
        found = ""
        with libarchive.file_reader(str(path)) as archive:
            for entry in archive:
                if not entry.isfile or os.path.basename(entry.pathname) not in ("disk.raw", "disk.img"):
                    continue
                declared = entry.size or 0
                limits.check("container-disk-bytes", declared, "tar", f"member {entry.pathname}")
                _copy_sparse(entry, fd, declared, entry.pathname)
                found = entry.pathname
                break
        if not found:
            raise InputError(f"{path}: the archive holds no disk.raw")
        source = FileSource.adopt(fd, f"{path}:{found}")
        try:
            yield source
        finally:
            source.close()
    except libarchive.ArchiveError as err:
        raise FormatError("tar", "archive", 0, f"cannot be read: {err}") from None
    finally:
        os.close(fd)


def _copy_sparse(entry: object, fd: int, declared: int, member: str) -> None:
    written = 0
    zero = bytes(CHUNK)
    for block in entry.get_blocks(CHUNK):  # type: ignore[attr-defined]  # NOTE: libarchive-c is untyped
        written += len(block)
        limits.tick("tar", f"member {member}", written)
        if written > declared:
            raise FormatError("tar", f"member {member}", written, f"holds more than the {declared} bytes it declares")
        if block == zero[: len(block)]:
            os.lseek(fd, len(block), os.SEEK_CUR)
        else:
            os.write(fd, block)
    os.ftruncate(fd, written)
    if written != declared:
        raise FormatError("tar", f"member {member}", written, f"ends after {written} of {declared} bytes")
