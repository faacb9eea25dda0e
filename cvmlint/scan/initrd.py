"""The initrd: concatenated cpio segments (each plain or compressed), listed with libarchive.

    segment  a newc cpio archive ending in `TRAILER!!!`, or a compressed stream (gzip, xz, lzma,
             bzip2, lz4, zstd) holding one; the kernel unpacks them in order, skipping zero padding
             between them (early microcode and ACPI table overrides come first, uncompressed)

Nothing is extracted: names are read from the headers; compressed segments are decompressed
only as far as the listing needs, with a cap on the decompressed size.
"""

from __future__ import annotations

from cvmlint import limits
from cvmlint.errors import FormatError, reader
from cvmlint.image.source import Buffer

FMT = "initrd"


@reader("initrd", "archive")
def list_initrd(data: Buffer, what: str) -> list[str]:
    """Every path in every segment, in order, without a leading `./` or `/`."""
    import libarchive
    from libarchive import ffi
    from libarchive.exception import ArchiveError

    names: list[str] = []
    pos, unpacked = 0, 0
    for _ in range(limits.get("initrd-segments")):
        pos = _skip_zeros(data, pos)
        if pos >= len(data):
            return names
        try:
            with libarchive.memory_reader(bytes(data[pos:]), format_name="cpio") as archive:
                for entry in archive:
                    name = entry.pathname
                    if isinstance(name, bytes):  # libarchive-c gives bytes for a name it cannot decode
                        name = name.decode("utf-8", "surrogateescape")
                    if name != "TRAILER!!!":
                        names.append(name.removeprefix("./").lstrip("/"))
                    limits.check("initrd-entries", len(names), FMT, what, pos)
                    limits.tick(FMT, what, pos)
                    limits.check("initrd-bytes", ffi.filter_bytes(archive._pointer, 0) + unpacked, FMT, what, pos)
                consumed = archive.bytes_read
                unpacked += ffi.filter_bytes(archive._pointer, 0)
                compressed = ffi.filter_count(archive._pointer) > 1
        except ArchiveError as err:
            raise FormatError(FMT, what, pos, f"cpio segment unreadable: {err}") from None
        if compressed or consumed <= 0:
            return names  # a compressed stream runs to the end of the file (its reader reads ahead)
        pos += consumed
    raise limits.LimitExceeded(FMT, what, pos, "initrd-segments", limits.get("initrd-segments") + 1)


def _skip_zeros(data: Buffer, pos: int) -> int:
    while pos < len(data) and data[pos] == 0:
        chunk = data[pos : pos + 4096]
        stripped = chunk.lstrip(b"\0")
        pos += len(chunk) - len(stripped)
        if stripped:
            break
    return pos
