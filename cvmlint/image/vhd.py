"""VHD (Virtual PC / Azure) fixed and dynamic disks as a random-access byte source.

footer (last 512 bytes, big-endian): "conectix" | features | version | data offset (u64;
all-ones for fixed disks) | time | creator | creator version | creator OS | original size |
current size (u64) | geometry | disk type (2 fixed, 3 dynamic, 4 differencing) | checksum
dynamic header at the data offset: "cxsparse" | … | BAT offset (u64) | version | max table
entries | block size | checksum | parent … ; the BAT holds one be32 sector number per block
(all-ones: not allocated); a block is a sector bitmap followed by its data
"""

from __future__ import annotations

import struct

from cvmlint import limits
from cvmlint.errors import FormatError, reader
from cvmlint.image.source import ByteSource, read_exact, unpack

FMT = "vhd"
_FOOTER = struct.Struct(">8sIIQI4sI4sQQIII16sB")
_DYNAMIC = struct.Struct(">8sQQIIII")
UNALLOCATED = 0xFFFFFFFF


def _checksum_ok(raw: bytes, at: int) -> bool:
    stored = int.from_bytes(raw[at : at + 4], "big")
    return (~sum(raw[:at] + raw[at + 4 :])) & 0xFFFFFFFF == stored


def has_footer(file: ByteSource) -> bool:
    """Whether the file ends with a VHD footer."""
    return file.size >= 512 and file.pread(file.size - 512, 8) == b"conectix"


class VhdSource:
    """The virtual disk inside a VHD file."""

    @reader("vhd", "footer")
    def __init__(self, file: ByteSource) -> None:
        self.file = file
        self.name = f"{file.name} (vhd)"
        at = file.size - 512
        raw = read_exact(file, at, 512, FMT, "footer")
        (
            cookie,
            _feat,
            _ver,
            data_offset,
            _time,
            _app,
            _appver,
            _os,
            _orig,
            size,
            _geo,
            disk_type,
            _csum,
            _uuid,
            _saved,
        ) = unpack(_FOOTER, raw, 0, FMT, "footer")
        if cookie != b"conectix":
            raise FormatError(FMT, "footer", at, "no 'conectix' cookie")
        if not _checksum_ok(raw, 64):
            raise FormatError(FMT, "footer", at + 64, "checksum mismatch")
        self.size = size
        self.dynamic = disk_type == 3
        if disk_type == 4:
            raise FormatError(FMT, "footer", at + 60, "differencing disk: it needs its parent image; merge it first")
        if disk_type == 2:
            if size > at:
                raise FormatError(FMT, "footer", at + 48, f"fixed disk of {size} bytes in a {file.size}-byte file")
            return
        if disk_type != 3:
            raise FormatError(FMT, "footer", at + 60, f"unknown disk type {disk_type}")
        dyn = read_exact(file, data_offset, 1024, FMT, "dynamic disk header")
        (dcookie, _doff, bat_offset, _dver, entries, block_size, _dcs) = unpack(
            _DYNAMIC, dyn, 0, FMT, "dynamic disk header"
        )
        if dcookie != b"cxsparse":
            raise FormatError(FMT, "dynamic disk header", data_offset, "no 'cxsparse' cookie")
        if not _checksum_ok(dyn, 36):
            raise FormatError(FMT, "dynamic disk header", data_offset + 36, "checksum mismatch")
        if block_size < 512 or block_size & (block_size - 1) or block_size > 1 << 28:
            raise FormatError(FMT, "dynamic disk header", data_offset + 32, f"block size {block_size} is implausible")
        if entries * block_size < size:
            raise FormatError(
                FMT, "dynamic disk header", data_offset + 28, f"{entries} blocks cannot hold {size} bytes"
            )
        self.block_size = block_size
        self.bitmap = -(-(block_size // 512) // 8 // 512) * 512 or 512
        limits.check(
            "container-table-bytes", entries * 4, FMT, f"block allocation table ({entries} entries)", bat_offset
        )
        bat = read_exact(file, bat_offset, entries * 4, FMT, f"block allocation table ({entries} entries)")
        self.bat = struct.unpack(f">{entries}I", bat)

    @reader("vhd", "block")
    def pread(self, offset: int, length: int) -> bytes:
        """Guest bytes at `offset`."""
        if offset < 0 or offset >= self.size:
            return b""
        length = min(length, self.size - offset)
        if not self.dynamic:
            return self.file.pread(offset, length)
        out = bytearray()
        while length > 0:
            index, inner = divmod(offset, self.block_size)
            n = min(self.block_size - inner, length)
            sector = self.bat[index]
            if sector == UNALLOCATED:
                out += bytes(n)
            else:
                host = sector * 512 + self.bitmap + inner
                if host + n > self.file.size - 512:
                    raise FormatError(FMT, f"block {index}", sector * 512, "lies outside the file")
                out += read_exact(self.file, host, n, FMT, f"data of block {index}")
            offset += n
            length -= n
        return bytes(out)
