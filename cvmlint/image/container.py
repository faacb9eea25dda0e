"""Open an image file whatever its container: raw, qcow2, VHD, or a tar(.gz) wrapping disk.raw.

A tarball is streamed through libarchive into a sparse temporary file (runs of zeros become
holes), capped by the size its header declares; nothing is held in memory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cvmlint import limits
from cvmlint.errors import FormatError, InputError
from cvmlint.image.qcow2 import MAGIC as QCOW2_MAGIC
from cvmlint.image.qcow2 import Qcow2Source
from cvmlint.image.source import ByteSource, FileSource
from cvmlint.image.vhd import VhdSource, has_footer

CHUNK = 1 << 20


def container_kind(src: FileSource) -> str:
    """`qcow2`, `vhd`, `tar`, `tar.gz`, `tar.xz`, `tar.zst` or `raw`."""
    head = src.pread(0, 512)
    if head[:4] == QCOW2_MAGIC:
        return "qcow2"
    if has_footer(src):
        return "vhd"
    if head[257:262] == b"ustar":
        return "tar"
    if head[:2] == b"\x1f\x8b":
        return "tar.gz"
    if head[:6] == b"\xfd7zXZ\x00":
        return "tar.xz"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "tar.zst"
    return "raw"


@contextmanager
def open_image(path: str | Path, tmpdir: str | None = None) -> Iterator[tuple[ByteSource, str]]:
    """(the disk's bytes, the container kind); temporary files are removed on exit."""
    outer = FileSource(path)
    try:
        kind = container_kind(outer)
        if kind == "qcow2":
            yield Qcow2Source(outer), kind
        elif kind == "vhd":
            yield VhdSource(outer), kind
        elif kind.startswith("tar"):
            with _extract_disk(Path(path), tmpdir) as inner:
                yield inner, kind
        else:
            yield outer, kind
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
