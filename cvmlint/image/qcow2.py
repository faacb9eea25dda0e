"""qcow2 (versions 2 and 3) as a random-access byte source; backing files and encryption refused.

byte 0    "QFI\\xfb" | version (be32) | backing file offset (be64) | backing file size |
          cluster bits | virtual size (be64) | crypt method | L1 size | L1 offset (be64) |
          refcount table offset | refcount clusters | snapshots | snapshots offset
v3        incompatible / compatible / autoclear features (be64) | refcount order | header
          length | compression type (byte 104: 0 deflate, 1 zstd)
L1 entry  bits 9..55: L2 table offset        L2 entry bit 62: compressed, bit 0: reads as zeros
compressed L2 entry: host offset in the low (62 - (cluster_bits - 8)) bits, then the number
          of additional 512-byte sectors the compressed data spans
"""

from __future__ import annotations

import struct
import zlib
from collections import OrderedDict

from cvmlint import limits
from cvmlint.errors import FormatError, reader
from cvmlint.image.source import ByteSource, read_exact, unpack

FMT = "qcow2"
MAGIC = b"QFI\xfb"
_HEADER = struct.Struct(">4sIQIIQIIQQIIQ")
_V3 = struct.Struct(">QQQII")
OFFSET_MASK = 0x00FFFFFFFFFFFE00
INCOMPAT_DIRTY, INCOMPAT_CORRUPT, INCOMPAT_DATA_FILE, INCOMPAT_COMPRESSION, INCOMPAT_EXTL2 = 1, 2, 4, 8, 16
MAX_VIRTUAL = 1 << 50


class Qcow2Source:
    """The virtual disk inside a qcow2 file."""

    @reader("qcow2", "header")
    def __init__(self, file: ByteSource) -> None:
        self.file = file
        self.name = f"{file.name} (qcow2)"
        raw = read_exact(file, 0, 104, FMT, "header")
        (
            magic,
            version,
            backing_off,
            backing_size,
            cluster_bits,
            size,
            crypt,
            l1_size,
            l1_off,
            _rc_off,
            _rc_clusters,
            _snaps,
            _snap_off,
        ) = unpack(_HEADER, raw, 0, FMT, "header")
        if magic != MAGIC:
            raise FormatError(FMT, "header", 0, "no 'QFI\\xfb' magic")
        if version not in (2, 3):
            raise FormatError(FMT, "header", 4, f"unsupported version {version}")
        if backing_off:
            name = file.pread(backing_off, min(backing_size, 1023)).decode("utf-8", "replace")
            raise FormatError(
                FMT,
                "header",
                8,
                f"has a backing file ({name!r}); convert it to a standalone image first (qemu-img convert -O qcow2)",
            )
        if crypt:
            raise FormatError(FMT, "header", 32, f"encrypted (method {crypt}); cvmlint reads no encrypted images")
        if not 9 <= cluster_bits <= 21:
            raise FormatError(FMT, "header", 20, f"cluster bits {cluster_bits} outside 9..21")
        if size > MAX_VIRTUAL:
            raise FormatError(FMT, "header", 24, f"virtual size {size} is implausible")
        self.zstd = False
        if version == 3:
            incompat, _compat, _autoclear, _order, hlen = unpack(_V3, raw, 72, FMT, "v3 header")
            if incompat & INCOMPAT_CORRUPT:
                raise FormatError(FMT, "header", 72, "marked corrupt by qemu")
            if incompat & INCOMPAT_DATA_FILE:
                raise FormatError(FMT, "header", 72, "keeps its data in an external file")
            if incompat & INCOMPAT_EXTL2:
                raise FormatError(FMT, "header", 72, "uses extended L2 entries (subclusters), not supported")
            if incompat & ~(INCOMPAT_DIRTY | INCOMPAT_COMPRESSION):
                raise FormatError(FMT, "header", 72, f"unknown incompatible features {incompat:#x}")
            if incompat & INCOMPAT_COMPRESSION and hlen > 104:
                self.zstd = read_exact(file, 104, 1, FMT, "compression type")[0] == 1
        self.cluster_bits = cluster_bits
        self.cluster = 1 << cluster_bits
        self.size = size
        per_l2 = self.cluster // 8
        needed = -(-size // (self.cluster * per_l2))
        if l1_size < needed:
            raise FormatError(FMT, "header", 36, f"L1 table of {l1_size} entries cannot map {size} bytes")
        if l1_off % self.cluster and l1_off % 512:
            raise FormatError(FMT, "L1 table", l1_off, "is not aligned")
        limits.check("container-table-bytes", l1_size * 8, FMT, f"L1 table ({l1_size} entries)", l1_off)
        l1 = read_exact(file, l1_off, l1_size * 8, FMT, f"L1 table ({l1_size} entries)")
        self.l1 = struct.unpack(f">{l1_size}Q", l1)
        self._l2: OrderedDict[int, tuple[int, ...]] = OrderedDict()
        self._clusters: OrderedDict[int, bytes] = OrderedDict()

    def _l2_table(self, offset: int, index: int) -> tuple[int, ...]:
        if offset not in self._l2:
            if offset % self.cluster or offset + self.cluster > self.file.size:
                raise FormatError(
                    FMT,
                    f"L1 entry {index}",
                    offset,
                    f"L2 table offset {offset} lies outside the file ({self.file.size} bytes) or is unaligned",
                )
            raw = read_exact(self.file, offset, self.cluster, FMT, f"L2 table of L1 entry {index}")
            self._l2[offset] = struct.unpack(f">{self.cluster // 8}Q", raw)
            if len(self._l2) > 64:
                self._l2.popitem(last=False)
        return self._l2[offset]

    def _cluster(self, index: int) -> bytes | None:
        """The guest cluster `index`, or None when it reads as zeros."""
        per_l2 = self.cluster // 8
        l1_index, l2_index = divmod(index, per_l2)
        l2_offset = self.l1[l1_index] & OFFSET_MASK
        if not l2_offset:
            return None
        entry = self._l2_table(l2_offset, l1_index)[l2_index]
        if entry & (1 << 62):
            return self._compressed(entry, index)
        if entry & 1:
            return None
        host = entry & OFFSET_MASK
        if not host:
            return None
        if host % self.cluster or host + self.cluster > self.file.size:
            raise FormatError(
                FMT,
                f"L2 entry of guest cluster {index}",
                l2_offset,
                f"data offset {host} lies outside the file ({self.file.size} bytes) or is unaligned",
            )
        return read_exact(self.file, host, self.cluster, FMT, f"guest cluster {index}")

    def _compressed(self, entry: int, index: int) -> bytes:
        if index in self._clusters:
            return self._clusters[index]
        x = 62 - (self.cluster_bits - 8)
        host = entry & ((1 << x) - 1)
        sectors = ((entry >> x) & ((1 << (self.cluster_bits - 8)) - 1)) + 1
        length = min(sectors * 512 - (host % 512), self.file.size - host)
        if host >= self.file.size or length <= 0:
            raise FormatError(FMT, f"compressed guest cluster {index}", host, "lies outside the file")
        raw = self.file.pread(host, length)
        try:
            if self.zstd:
                import zstandard

                with zstandard.ZstdDecompressor().stream_reader(raw) as reader:  # bounded: a bomb stops here
                    out = reader.read(self.cluster)
            else:
                out = zlib.decompressobj(-12).decompress(raw, self.cluster)
        except (zlib.error, Exception) as err:
            raise FormatError(FMT, f"compressed guest cluster {index}", host, f"does not decompress: {err}") from None
        if len(out) != self.cluster:
            raise FormatError(
                FMT, f"compressed guest cluster {index}", host, f"decompresses to {len(out)} bytes, not {self.cluster}"
            )
        self._clusters[index] = out
        if len(self._clusters) > 32:
            self._clusters.popitem(last=False)
        return out

    @reader("qcow2", "cluster")
    def pread(self, offset: int, length: int) -> bytes:
        """Guest bytes at `offset`."""
        if offset < 0 or offset >= self.size:
            return b""
        length = min(length, self.size - offset)
        out = bytearray()
        while length > 0:
            index, inner = divmod(offset, self.cluster)
            n = min(self.cluster - inner, length)
            data = self._cluster(index)
            out += bytes(n) if data is None else data[inner : inner + n]
            offset += n
            length -= n
        return bytes(out)
