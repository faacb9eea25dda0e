"""FAT12/16/32 (the EFI system partition): directory walk with long names, files by cluster chain.

    byte 0    jump, OEM name
    byte 11   BPB: bytes/sector, sectors/cluster, reserved sectors, FAT count, root entries (12/16),
              total sectors (16-bit), media, sectors/FAT (12/16), …, total sectors (32-bit)
    byte 36   FAT32: sectors/FAT (32-bit), flags, version, root directory cluster, FSInfo, backup
    byte 510  0x55 0xAA
FAT32 has a zero 16-bit FAT size; otherwise < 4085 clusters is FAT12, else FAT16 (Linux's rule).
Directory entries are 32 bytes; long names precede their short entry as attribute-0x0F entries.
"""

from __future__ import annotations

import posixpath
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from cvmlint import limits
from cvmlint.errors import FormatError, reader
from cvmlint.image.source import Buffer, ByteSource, read_exact, unpack

FMT = "fat"
_BPB = struct.Struct("<3s8sHBHBHHBHHHII")
_FAT32 = struct.Struct("<IHHIHH")
_DIRENT = struct.Struct("<11sBBBHHHHHHHI")
ATTR_DIR = 0x10
ATTR_VOLUME = 0x08
ATTR_LFN = 0x0F


@dataclass(frozen=True)
class FatEntry:
    """A file or directory in the FAT file system."""

    path: str
    name: str
    is_dir: bool
    size: int
    first_cluster: int
    mtime: datetime | None
    offset: int
    """Byte offset of the directory entry in the partition."""


class FatFileSystem:
    """A FAT file system on a byte source (an ESP partition)."""

    @reader("fat", "boot sector")
    def __init__(self, src: ByteSource) -> None:
        self.src = src
        boot = read_exact(src, 0, 512, FMT, "boot sector")
        (
            _jmp,
            _oem,
            bps,
            spc,
            reserved,
            nfats,
            root_entries,
            total16,
            _media,
            fat16,
            _spt,
            _heads,
            _hidden,
            total32,
        ) = unpack(_BPB, boot, 0, FMT, "BIOS parameter block")
        if boot[510:512] != b"\x55\xaa":
            raise FormatError(FMT, "boot sector", 510, "no 0x55 0xAA signature")
        if bps not in (512, 1024, 2048, 4096) or spc == 0 or spc & (spc - 1) or nfats == 0 or reserved == 0:
            raise FormatError(
                FMT,
                "BIOS parameter block",
                11,
                f"implausible geometry: {bps} bytes/sector, "
                f"{spc} sectors/cluster, {nfats} FATs, {reserved} reserved sectors",
            )
        total = total16 or total32
        fat_sectors = fat16
        root_cluster = 0
        if fat16 == 0:
            fat_sectors, _flags, _ver, root_cluster, _fsinfo, _backup = unpack(_FAT32, boot, 36, FMT, "FAT32 BPB")
        if total * bps > src.size:
            raise FormatError(
                FMT,
                "BIOS parameter block",
                19,
                f"{total} sectors of {bps} bytes do not fit in {src.name} ({src.size} bytes)",
            )
        self.sector: int = bps
        self.cluster_size: int = bps * spc
        self.fat_offset: int = reserved * bps
        root_sectors = (root_entries * 32 + bps - 1) // bps
        self.root_offset: int = (reserved + nfats * fat_sectors) * bps
        self.root_size: int = root_entries * 32
        self.data_offset: int = self.root_offset + root_sectors * bps
        if self.data_offset > total * bps:
            raise FormatError(FMT, "BIOS parameter block", 11, "FATs and root directory extend past the volume")
        self.clusters: int = (total * bps - self.data_offset) // self.cluster_size
        # As Linux decides: FAT32 when the 16-bit FAT size is zero (mkfs.fat makes small FAT32
        # volumes too), else FAT12 below 4085 clusters and FAT16 above.
        self.bits = 32 if fat16 == 0 else 12 if self.clusters < 4085 else 16
        if self.bits == 16 and self.clusters >= 65525:
            raise FormatError(FMT, "BIOS parameter block", 22, f"{self.clusters} clusters are too many for FAT16")
        if fat_sectors * bps * 8 < (self.clusters + 2) * self.bits:
            raise FormatError(FMT, "FAT", self.fat_offset, f"{fat_sectors} sectors cannot map {self.clusters} clusters")
        self.root_cluster: int = root_cluster
        self._fat_cache: dict[int, bytes] = {}
        self._entries: memoryview | None = None

    # -- allocation table
    def _fat_sector(self, index: int) -> bytes:
        if index not in self._fat_cache:
            if len(self._fat_cache) > 4096:
                self._fat_cache.clear()
            self._fat_cache[index] = read_exact(
                self.src, self.fat_offset + index * self.sector, self.sector, FMT, "FAT sector"
            )
        return self._fat_cache[index]

    def _fat_bytes(self, offset: int, length: int) -> bytes:
        out = b""
        while length > 0:
            sec, inner = divmod(offset, self.sector)
            chunk = self._fat_sector(sec)[inner : inner + length]
            out += chunk
            offset += len(chunk)
            length -= len(chunk)
        return out

    def _table(self) -> memoryview | None:
        """The whole FAT as 16/32-bit entries when it is small enough to hold (a few MiB)."""
        if self._entries is None and self.bits != 12:
            size = (self.clusters + 2) * self.bits // 8
            if size <= 32 << 20:
                raw = read_exact(self.src, self.fat_offset, size, FMT, "FAT")
                self._entries = memoryview(raw).cast("I" if self.bits == 32 else "H")
        return self._entries

    def next_cluster(self, cluster: int) -> int | None:
        """The FAT entry of `cluster`: the next cluster, or None at the end of the chain."""
        table = self._table()
        if table is not None and cluster < len(table):
            value = table[cluster] & 0x0FFFFFFF if self.bits == 32 else table[cluster]
            end, bad = (0x0FFFFFF8, 0x0FFFFFF7) if self.bits == 32 else (0xFFF8, 0xFFF7)
        elif self.bits == 32:
            value = int.from_bytes(self._fat_bytes(cluster * 4, 4), "little") & 0x0FFFFFFF
            end, bad = 0x0FFFFFF8, 0x0FFFFFF7
        elif self.bits == 16:
            value = int.from_bytes(self._fat_bytes(cluster * 2, 2), "little")
            end, bad = 0xFFF8, 0xFFF7
        else:
            raw = int.from_bytes(self._fat_bytes(cluster * 3 // 2, 2), "little")
            value = raw >> 4 if cluster & 1 else raw & 0xFFF
            end, bad = 0xFF8, 0xFF7
        if value >= end:
            return None
        if value == bad or value < 2 or value >= self.clusters + 2:
            what = "bad-cluster mark" if value == bad else "free" if value == 0 else f"cluster {value}"
            raise FormatError(
                FMT,
                f"cluster chain at cluster {cluster}",
                self.fat_offset,
                f"entry is {what}, not a valid next cluster",
            )
        return value

    def chain(self, first: int, limit_bytes: int | None = None) -> list[int]:
        """The clusters of a chain, with loops and over-long chains refused."""
        if first < 2 or first >= self.clusters + 2:
            raise FormatError(FMT, "cluster chain", self.data_offset, f"first cluster {first} is out of range")
        out: list[int] = []
        seen: set[int] = set()
        cur: int | None = first
        cap = self.clusters if limit_bytes is None else limit_bytes // self.cluster_size + 1
        table: Sequence[int] = self._table() or ()
        mask, end = (0x0FFFFFFF, 0x0FFFFFF7) if self.bits == 32 else (0xFFFF, 0xFFF7)
        valid_end, size = min(end, self.clusters + 2), len(table)
        while cur is not None:
            if cur < size and 2 <= table[cur] & mask < valid_end and cur not in seen and len(out) < cap:
                seen.add(cur)  # the common case, inline: a valid next cluster in the held table
                out.append(cur)
                cur = table[cur] & mask
                continue
            if cur in seen:
                raise FormatError(
                    FMT, f"cluster chain from cluster {first}", self.fat_offset, f"loops back to cluster {cur}"
                )
            seen.add(cur)
            out.append(cur)
            if len(out) > cap:
                raise FormatError(
                    FMT,
                    f"cluster chain from cluster {first}",
                    self.fat_offset,
                    f"longer than the {cap} clusters the entry's size allows",
                )
            cur = self.next_cluster(cur)
        return out

    def cluster_offset(self, cluster: int) -> int:
        """Byte offset of a data cluster."""
        return self.data_offset + (cluster - 2) * self.cluster_size

    # -- directories
    def _dir_bytes(self, first_cluster: int) -> tuple[bytes, Callable[[int], int]]:
        """A directory's bytes, and where byte `pos` of them lies in the partition (its clusters need not
        be contiguous)."""
        if first_cluster == 0:
            if self.bits == 32:
                first_cluster = self.root_cluster
            else:
                base = self.root_offset
                return read_exact(self.src, base, self.root_size, FMT, "root directory"), lambda pos: base + pos
        clusters = self.chain(first_cluster, limits.get("fat-directory-entries") * 32)
        data = b"".join(
            read_exact(self.src, self.cluster_offset(c), self.cluster_size, FMT, "directory cluster") for c in clusters
        )
        size = self.cluster_size
        return data, lambda pos: self.cluster_offset(clusters[pos // size]) + pos % size

    @reader("fat", "directory")
    def listdir(self, first_cluster: int, parent: str) -> Iterator[FatEntry]:
        """The entries of one directory (0 = root), long names resolved; `.` and `..` skipped."""
        data, place = self._dir_bytes(first_cluster)
        lfn: dict[int, str] = {}
        for pos in range(0, len(data) - 31, 32):
            raw = data[pos : pos + 32]
            if raw[0] == 0:
                break
            if raw[0] == 0xE5:
                lfn.clear()
                continue
            name11, attr, nt, _tenth, _ctime, _cdate, _adate, hi, mtime, mdate, lo, size = unpack(
                _DIRENT, raw, 0, FMT, "directory entry"
            )
            if attr == ATTR_LFN:
                seq = raw[0] & 0x1F
                part = (raw[1:11] + raw[14:26] + raw[28:32]).decode("utf-16-le", "replace")
                lfn[seq] = part.split("\0", 1)[0].rstrip("\uffff")
                continue
            if attr & ATTR_VOLUME:
                lfn.clear()
                continue
            short = _short_name(name11, nt)
            name = "".join(lfn[k] for k in sorted(lfn)) if lfn else short
            lfn.clear()
            if short in (".", ".."):
                continue
            if "/" in name or name in ("", ".", ".."):
                raise FormatError(FMT, "directory entry", place(pos), f"invalid name {name!r}")
            cluster = (hi << 16 | lo) if self.bits == 32 else lo
            yield FatEntry(
                posixpath.join(parent, name),
                name,
                bool(attr & ATTR_DIR),
                size,
                cluster,
                _timestamp(mdate, mtime),
                place(pos),
            )

    @reader("fat", "directory tree")
    def walk(self) -> Iterator[FatEntry]:
        """Every file and directory, depth first, with directory loops refused."""
        stack: list[tuple[int, str, int]] = [(0, "/", 0)]
        seen: set[int] = set()
        while stack:
            cluster, path, depth = stack.pop()
            limits.check("path-depth", depth, FMT, f"directory {path}")
            for entry in self.listdir(cluster, path):
                yield entry
                if entry.is_dir:
                    if entry.first_cluster in seen or entry.first_cluster in (0, self.root_cluster):
                        raise FormatError(
                            FMT,
                            f"directory {entry.path}",
                            entry.offset,
                            "contains itself or an ancestor (directory loop)",
                        )
                    seen.add(entry.first_cluster)
                    stack.append((entry.first_cluster, entry.path, depth + 1))

    @reader("fat", "path")
    def lookup(self, path: str) -> FatEntry | None:
        """The entry at `path` (case-insensitive, as FAT is), or None."""
        parts = [p for p in path.split("/") if p]
        cluster, current = 0, "/"
        entry: FatEntry | None = None
        for i, part in enumerate(parts):
            entry = next((e for e in self.listdir(cluster, current) if e.name.lower() == part.lower()), None)
            if entry is None or (i < len(parts) - 1 and not entry.is_dir):
                return None
            cluster, current = entry.first_cluster, entry.path
        return entry

    @reader("fat", "file")
    def read(self, entry: FatEntry, max_size: int | None = None) -> Buffer:
        """The whole content of a file (refused above `max_size`, by default the boot-file-bytes limit)."""
        if entry.is_dir:
            raise FormatError(FMT, f"file {entry.path}", entry.offset, "is a directory")
        if max_size is None:
            limits.check("boot-file-bytes", entry.size, FMT, f"file {entry.path}", entry.offset)
        elif entry.size > max_size:
            raise FormatError(
                FMT,
                f"file {entry.path}",
                entry.offset,
                f"size {entry.size} exceeds the {max_size}-byte limit for reading into memory",
            )
        if entry.size == 0:
            return b""
        clusters = self.chain(entry.first_cluster, entry.size)
        if len(clusters) * self.cluster_size < entry.size:
            raise FormatError(
                FMT,
                f"file {entry.path}",
                entry.offset,
                f"size {entry.size} but its chain has only {len(clusters)} clusters",
            )
        if clusters == list(range(clusters[0], clusters[0] + len(clusters))):  # contiguous: one read, one copy
            return read_exact(self.src, self.cluster_offset(clusters[0]), entry.size, FMT, f"data of {entry.path}")
        out = bytearray()
        run_start = prev = clusters[0]
        for c in [*clusters[1:], None]:
            if c is not None and c == prev + 1:
                prev = c
                continue
            count = prev - run_start + 1  # one read per run of consecutive clusters
            out += read_exact(
                self.src, self.cluster_offset(run_start), count * self.cluster_size, FMT, f"data of {entry.path}"
            )
            if c is not None:
                run_start = prev = c
        del out[entry.size :]
        return out  # a bytearray: a bytes() copy of a kernel or UKI costs tens of MB at peak


def _short_name(raw: bytes, nt: int) -> str:
    base = raw[:8].decode("latin-1").rstrip(" ")
    ext = raw[8:11].decode("latin-1").rstrip(" ")
    if base.startswith("\x05"):
        base = "\xe5" + base[1:]
    if nt & 0x08:
        base = base.lower()
    if nt & 0x10:
        ext = ext.lower()
    return f"{base}.{ext}" if ext else base


def _timestamp(date: int, time: int) -> datetime | None:
    try:
        return datetime(
            1980 + (date >> 9), (date >> 5) & 0xF, date & 0x1F, time >> 11, (time >> 5) & 0x3F, (time & 0x1F) * 2
        )
    except ValueError:
        return None
