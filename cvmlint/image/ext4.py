"""ext2/3/4, read-only: superblock, group descriptors, inodes, extent trees and block maps,
inline data, linear and htree directories, symlinks, extended attributes.

    byte 1024  superblock: inode/block counts, first data block, log block size, blocks and
               inodes per group, magic 53 ef at 56, inode size at 88, features at 92/96/100,
               64-bit counts and descriptor size from 254/336, checksum at 1020 (metadata_csum)
    block after the superblock's: group descriptors (32 bytes, or s_desc_size with 64bit)
    inode n:   group (n-1) // inodes_per_group, slot (n-1) % inodes_per_group in its inode table
    i_block:   60 bytes: an extent tree (magic 0a f3), 15 block pointers, inline data or a symlink
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from cvmlint import limits
from cvmlint.errors import FormatError, reader
from cvmlint.image import codecs
from cvmlint.image.source import ByteSource, FileMode, first_bytes, read_exact, unpack
from cvmlint.image.tree import InodeTree, zeros

FMT = "ext4"
MAGIC = 0xEF53
INCOMPAT_FILETYPE = 0x2
INCOMPAT_RECOVER = 0x4
INCOMPAT_JOURNAL_DEV = 0x8
INCOMPAT_META_BG = 0x10
INCOMPAT_EXTENTS = 0x40
INCOMPAT_64BIT = 0x80
INCOMPAT_MMP = 0x100
INCOMPAT_FLEX_BG = 0x200
INCOMPAT_EA_INODE = 0x400
INCOMPAT_CSUM_SEED = 0x2000
INCOMPAT_LARGEDIR = 0x4000
INCOMPAT_INLINE_DATA = 0x8000
INCOMPAT_ENCRYPT = 0x10000
INCOMPAT_CASEFOLD = 0x20000
SUPPORTED_INCOMPAT = (
    INCOMPAT_FILETYPE
    | INCOMPAT_RECOVER
    | INCOMPAT_META_BG
    | INCOMPAT_EXTENTS
    | INCOMPAT_64BIT
    | INCOMPAT_MMP
    | INCOMPAT_FLEX_BG
    | INCOMPAT_CSUM_SEED
    | INCOMPAT_LARGEDIR
    | INCOMPAT_INLINE_DATA
    | INCOMPAT_CASEFOLD
)
RO_COMPAT_METADATA_CSUM = 0x400
FLAG_INDEX = 0x1000
FLAG_EXTENTS = 0x80000
FLAG_INLINE_DATA = 0x10000000
EXTENT_MAGIC = 0xF30A
MAX_EXTENT_DEPTH = 5
ROOT_INO = 2
_EXT_HEADER = struct.Struct("<HHHHI")
_EXT_INDEX = struct.Struct("<IIHH")
_EXT_LEAF = struct.Struct("<IHHI")
_DIRENT = struct.Struct("<IHBB")
_XATTR = struct.Struct("<BBHIII")
XATTR_PREFIXES = {
    1: "user.",
    2: "system.posix_acl_access",
    3: "system.posix_acl_default",
    4: "trusted.",
    6: "security.",
    7: "system.",
    8: "system.richacl",
}


@dataclass(frozen=True)
class Ext4Superblock:
    """The fields of the superblock a reader needs."""

    block_size: int
    blocks: int
    inodes: int
    first_data_block: int
    blocks_per_group: int
    inodes_per_group: int
    inode_size: int
    desc_size: int
    feature_compat: int
    feature_incompat: int
    feature_ro_compat: int
    first_meta_bg: int
    uuid: str
    label: str
    checksum_ok: bool | None

    @property
    def groups(self) -> int:
        """Number of block groups."""
        return -(-(self.blocks - self.first_data_block) // self.blocks_per_group)


@dataclass(frozen=True)
class Ext4Inode(FileMode):
    """One inode, as stored."""

    number: int
    offset: int
    mode: int
    uid: int
    gid: int
    size: int
    links: int
    flags: int
    mtime: int
    block: bytes
    """The 60-byte i_block area."""
    file_acl: int
    extra: bytes
    """The in-inode area after the 128-byte base (extra fields, then in-inode xattrs)."""

    @property
    def rdev(self) -> tuple[int, int]:
        """(major, minor) of a device node."""
        old, new = struct.unpack_from("<II", self.block, 0)
        if old:
            return (old >> 8) & 0xFF, old & 0xFF
        return (new & 0xFFF00) >> 8, (new & 0xFF) | ((new >> 12) & 0xFFF00)


class Ext4FileSystem(InodeTree):
    """An ext2/3/4 file system on a byte source."""

    FMT = FMT

    @reader("ext4", "superblock")
    def __init__(self, src: ByteSource) -> None:
        self.src = src
        self.sb = self._superblock()
        self.bs = self.sb.block_size
        self._inode = lru_cache(maxsize=4096)(self._read_inode)
        self._descs: dict[int, bytes] = {}

    def _superblock(self) -> Ext4Superblock:
        raw = read_exact(self.src, 1024, 1024, FMT, "superblock")
        magic = int.from_bytes(raw[56:58], "little")
        if magic != MAGIC:
            raise FormatError(FMT, "superblock", 1080, f"bad magic {magic:#06x} (expected 0xef53)")
        inodes, blocks_lo, _r, _fb, _fi, first_data, log_bs = struct.unpack_from("<7I", raw, 0)
        blocks_per_group, _cpg, inodes_per_group = struct.unpack_from("<3I", raw, 32)
        rev = int.from_bytes(raw[76:80], "little")
        inode_size = int.from_bytes(raw[88:90], "little") if rev >= 1 else 128
        compat, incompat, ro_compat = struct.unpack_from("<3I", raw, 92)
        desc_size = int.from_bytes(raw[254:256], "little") if incompat & INCOMPAT_64BIT else 32
        first_meta_bg = int.from_bytes(raw[260:264], "little")
        blocks_hi = int.from_bytes(raw[336:340], "little") if incompat & INCOMPAT_64BIT else 0
        if log_bs > 6:
            raise FormatError(FMT, "superblock", 1048, f"block size 1024 << {log_bs} is too large")
        bs = 1024 << log_bs
        unknown = incompat & ~SUPPORTED_INCOMPAT
        if unknown:
            names = {INCOMPAT_ENCRYPT: "encrypt", INCOMPAT_EA_INODE: "ea_inode", INCOMPAT_JOURNAL_DEV: "journal_dev"}
            what = ", ".join(names.get(1 << b, f"bit {b}") for b in range(32) if unknown & (1 << b))
            raise FormatError(FMT, "superblock", 1120, f"unsupported incompatible feature(s): {what}")
        if not (128 <= inode_size <= bs and inode_size & (inode_size - 1) == 0):
            raise FormatError(FMT, "superblock", 1112, f"inode size {inode_size} is implausible")
        if desc_size < 32 or desc_size > 1024 or desc_size & (desc_size - 1):
            raise FormatError(FMT, "superblock", 1278, f"group descriptor size {desc_size} is implausible")
        if blocks_per_group == 0 or inodes_per_group == 0 or inodes_per_group > bs * 8:
            raise FormatError(FMT, "superblock", 1056, "zero blocks or inodes per group")
        blocks = blocks_lo | blocks_hi << 32
        if blocks * bs > self.src.size:
            raise FormatError(
                FMT,
                "superblock",
                1028,
                f"{blocks} blocks of {bs} bytes exceed {self.src.name} ({self.src.size} bytes): truncated image",
            )
        checksum_ok = None
        if ro_compat & RO_COMPAT_METADATA_CSUM:
            stored = int.from_bytes(raw[1020:1024], "little")
            checksum_ok = codecs.crc32c_raw(0xFFFFFFFF, raw[:1020]) == stored
            if not checksum_ok:
                raise FormatError(FMT, "superblock", 2044, f"checksum mismatch (stored {stored:#010x})")
        import uuid as _uuid

        return Ext4Superblock(
            bs,
            blocks,
            inodes,
            first_data,
            blocks_per_group,
            inodes_per_group,
            inode_size,
            desc_size,
            compat,
            incompat,
            ro_compat,
            first_meta_bg,
            str(_uuid.UUID(bytes=raw[104:120])),
            raw[120:136].split(b"\0")[0].decode("utf-8", "replace"),
            checksum_ok,
        )

    # -- group descriptors and inodes -----------------------------------------------------------
    def _descriptor(self, group: int) -> bytes:
        if group >= self.sb.groups:
            raise FormatError(FMT, f"group {group}", 0, f"beyond the {self.sb.groups} block groups")
        per_block = self.bs // self.sb.desc_size
        table_block = self.sb.first_data_block + 1
        desc_block = table_block + group // per_block
        if self.sb.feature_incompat & INCOMPAT_META_BG and group // per_block >= self.sb.first_meta_bg:
            meta_group = group // per_block * per_block
            desc_block = (
                self.sb.first_data_block
                + meta_group * self.sb.blocks_per_group
                + (1 if self._has_super(meta_group) else 0)
            )
        if desc_block not in self._descs:
            self._descs[desc_block] = self._block(desc_block, "group descriptor block")
        inner = (group % per_block) * self.sb.desc_size
        return self._descs[desc_block][inner : inner + self.sb.desc_size]

    @staticmethod
    def _has_super(group: int) -> bool:
        if group in (0, 1):
            return True
        for base in (3, 5, 7):
            n = base
            while n < group:
                n *= base
            if n == group:
                return True
        return False

    def _block(self, number: int, what: str) -> bytes:
        if number >= self.sb.blocks or number < 0:
            raise FormatError(
                FMT, what, number * self.bs, f"block {number} is beyond the {self.sb.blocks} blocks of the file system"
            )
        return read_exact(self.src, number * self.bs, self.bs, FMT, what)

    @reader("ext4", "inode")
    def inode(self, number: int) -> Ext4Inode:
        """The inode with that number (validated)."""
        result: Ext4Inode = self._inode(number)
        return result

    def _read_inode(self, number: int) -> Ext4Inode:
        if not 1 <= number <= self.sb.inodes:
            raise FormatError(FMT, f"inode {number}", 0, f"outside 1..{self.sb.inodes}")
        group, index = divmod(number - 1, self.sb.inodes_per_group)
        desc = self._descriptor(group)
        table = int.from_bytes(desc[8:12], "little")
        if self.sb.desc_size >= 64:
            table |= int.from_bytes(desc[0x28:0x2C], "little") << 32
        offset = table * self.bs + index * self.sb.inode_size
        if table >= self.sb.blocks:
            raise FormatError(FMT, f"group {group} descriptor", 0, f"inode table block {table} is beyond the end")
        raw = read_exact(self.src, offset, self.sb.inode_size, FMT, f"inode {number}")
        mode, uid_lo, size_lo = struct.unpack_from("<HHI", raw, 0)
        mtime = int.from_bytes(raw[16:20], "little")
        gid_lo, links = struct.unpack_from("<HH", raw, 24)
        flags = int.from_bytes(raw[32:36], "little")
        file_acl = int.from_bytes(raw[104:108], "little") | int.from_bytes(raw[118:120], "little") << 32
        size = size_lo | int.from_bytes(raw[108:112], "little") << 32
        uid = uid_lo | int.from_bytes(raw[120:122], "little") << 16
        gid = gid_lo | int.from_bytes(raw[122:124], "little") << 16
        return Ext4Inode(number, offset, mode, uid, gid, size, links, flags, mtime, raw[40:100], file_acl, raw[128:])

    # -- data -------------------------------------------------------------------------------------
    @reader("ext4", "file data")
    def head(self, ino: Ext4Inode, length: int) -> bytes:
        """The first `length` bytes of a file (less if it is shorter), reading little more."""
        return first_bytes(self.iter_data(ino, piece=max(length, 4096)), length)

    @reader("ext4", "file data")
    def read_at(self, ino: Ext4Inode, offset: int, length: int) -> bytes:
        """Bytes [offset, offset+length) of a file."""
        out, pos = bytearray(), 0
        for chunk in self.iter_data(ino, piece=1 << 16):
            end = pos + len(chunk)
            if end > offset and pos < offset + length:
                out += chunk[max(0, offset - pos) : offset + length - pos]
            pos = end
            if pos >= offset + length:
                break
        return bytes(out)

    @reader("ext4", "file data")
    def iter_data(self, ino: Ext4Inode, limit: int | None = None, piece: int = 1 << 20) -> Iterator[bytes]:
        """A file's content in pieces, in order; holes and unwritten extents read as zeros."""
        if limit is not None and ino.size > limit:
            raise FormatError(
                FMT, f"inode {ino.number}", ino.offset + 4, f"size {ino.size} exceeds the {limit}-byte limit"
            )
        if ino.size == 0:
            return
        if ino.flags & FLAG_INLINE_DATA:
            yield self._inline(ino)[: ino.size]
            return
        mapping = self._extents(ino) if ino.flags & FLAG_EXTENTS else self._blockmap(ino)
        pos = 0
        for logical, physical, count in mapping:
            start = logical * self.bs
            if start >= ino.size:
                break
            if start < pos:
                raise FormatError(FMT, f"block map of inode {ino.number}", ino.offset, "extents overlap or go back")
            if start > pos:
                yield from zeros(min(start, ino.size) - pos)
                pos = start
            length = min(count * self.bs, ino.size - start)
            if physical is None:
                yield from zeros(length)
            else:
                if physical + count > self.sb.blocks:
                    raise FormatError(
                        FMT,
                        f"extent of inode {ino.number}",
                        ino.offset,
                        f"blocks {physical}..{physical + count} lie past the end of the file system",
                    )
                done = 0
                while done < length:
                    n = min(piece, length - done)
                    yield read_exact(self.src, physical * self.bs + done, n, FMT, f"data of inode {ino.number}")
                    done += n
            pos = start + length
        if pos < ino.size:
            yield from zeros(ino.size - pos)

    def read(self, ino: Ext4Inode, limit: int = 1 << 30) -> bytes:
        """A whole file's content (refused above `limit`)."""
        return b"".join(self.iter_data(ino, limit))

    def _extents(self, ino: Ext4Inode) -> Iterator[tuple[int, int | None, int]]:
        """(logical block, physical block or None for unwritten, count), in logical order."""
        yield from self._extent_node(ino, ino.block, MAX_EXTENT_DEPTH + 1, set())

    def _extent_node(
        self, ino: Ext4Inode, node: bytes, depth_left: int, seen: set[int]
    ) -> Iterator[tuple[int, int | None, int]]:
        what = f"extent tree of inode {ino.number}"
        magic, entries, maximum, depth, _gen = unpack(_EXT_HEADER, node, 0, FMT, what)
        if magic != EXTENT_MAGIC:
            raise FormatError(FMT, what, ino.offset + 40, f"bad extent header magic {magic:#06x}")
        if entries > maximum or 12 + 12 * entries > len(node) or depth >= depth_left:
            raise FormatError(FMT, what, ino.offset + 40, f"bogus header: {entries}/{maximum} entries, depth {depth}")
        for k in range(entries):
            if depth == 0:
                first, length, hi, lo = unpack(_EXT_LEAF, node, 12 + 12 * k, FMT, what)
                unwritten = length > 32768
                count = length - 32768 if unwritten else length
                yield first, None if unwritten else (hi << 32 | lo), count
            else:
                _first, lo, hi, _unused = unpack(_EXT_INDEX, node, 12 + 12 * k, FMT, what)
                child = hi << 32 | lo
                if child in seen:
                    raise FormatError(FMT, what, child * self.bs, "an index block appears twice (loop)")
                seen.add(child)
                yield from self._extent_node(ino, self._block(child, what), depth, seen)

    def _blockmap(self, ino: Ext4Inode) -> Iterator[tuple[int, int | None, int]]:
        pointers = struct.unpack_from("<15I", ino.block, 0)
        total = -(-ino.size // self.bs)
        per = self.bs // 4
        logical = 0
        for p in pointers[:12]:
            if logical >= total:
                return
            yield logical, p or None, 1
            logical += 1
        for level, p in enumerate(pointers[12:], start=1):
            span = per**level
            if logical >= total:
                return
            if p == 0:
                yield logical, None, min(span, total - logical)
                logical += span
                continue
            yield from self._indirect(ino, p, level, logical, total)
            logical += span

    def _indirect(
        self, ino: Ext4Inode, block: int, level: int, logical: int, total: int
    ) -> Iterator[tuple[int, int | None, int]]:
        per = self.bs // 4
        entries = struct.unpack_from(f"<{per}I", self._block(block, f"indirect block of inode {ino.number}"), 0)
        span = per ** (level - 1)
        for i, p in enumerate(entries):
            first = logical + i * span
            if first >= total:
                return
            if level == 1:
                yield first, p or None, 1
            elif p == 0:
                yield first, None, min(span, total - first)
            else:
                yield from self._indirect(ino, p, level - 1, first, total)

    def _inline(self, ino: Ext4Inode) -> bytes:
        extra = self.xattrs(ino).get("system.data", b"")
        return ino.block + extra

    # -- directories, links, xattrs ---------------------------------------------------------------
    @reader("ext4", "directory")
    def readdir(self, ino: Ext4Inode) -> list[tuple[str, int, int]]:
        """(name, inode number, file type) of a directory's entries, `.` and `..` left out."""
        if not ino.is_dir:
            raise FormatError(FMT, f"inode {ino.number}", ino.offset, "is not a directory")
        if ino.flags & FLAG_INLINE_DATA:
            data = self._inline(ino)[4:]
            return self._dirents(ino, data, 0, len(data))
        limits.check("directory-bytes", ino.size, FMT, f"directory inode {ino.number}", ino.offset)
        data = self.read(ino, limits.get("directory-bytes"))
        out = []
        for start in range(0, len(data), self.bs):
            out += self._dirents(ino, data, start, self.bs)
            limits.check("directory-entries", len(out), FMT, f"directory inode {ino.number}", ino.offset)
        return out

    def _dirents(self, ino: Ext4Inode, data: bytes, start: int, span: int) -> list[tuple[str, int, int]]:
        out = []
        pos, end = start, min(start + span, len(data))
        while pos + 8 <= end:
            number, rec_len, name_len, ftype = unpack(_DIRENT, data, pos, FMT, f"directory of inode {ino.number}")
            if rec_len < 8 or rec_len % 4 or pos + rec_len > end or 8 + name_len > rec_len:
                raise FormatError(
                    FMT,
                    f"directory entry in inode {ino.number}",
                    pos,
                    f"bogus record length {rec_len} (name length {name_len})",
                )
            if number:
                name = data[pos + 8 : pos + 8 + name_len].decode("utf-8", "surrogateescape")
                if "/" in name or "\0" in name or not name:
                    raise FormatError(FMT, f"directory entry in inode {ino.number}", pos, f"invalid name {name!r}")
                if name not in (".", ".."):
                    out.append((name, number, ftype))
            pos += rec_len
        return out

    @reader("ext4", "symlink")
    def readlink(self, ino: Ext4Inode) -> str:
        """A symlink's target (fast symlink in i_block, inline data, or a data block)."""
        if not ino.is_symlink:
            raise FormatError(FMT, f"inode {ino.number}", ino.offset, "is not a symlink")
        if ino.size > 4096:
            raise FormatError(FMT, f"symlink inode {ino.number}", ino.offset, f"target of {ino.size} bytes")
        if ino.size < 60 and not ino.flags & (FLAG_EXTENTS | FLAG_INLINE_DATA):
            return ino.block[: ino.size].decode("utf-8", "surrogateescape")
        return self.read(ino, 4096).decode("utf-8", "surrogateescape")

    @reader("ext4", "xattrs")
    def xattrs(self, ino: Ext4Inode) -> dict[str, bytes]:
        """In-inode and block extended attributes."""
        out: dict[str, bytes] = {}
        if len(ino.extra) >= 4:
            extra_isize = int.from_bytes(ino.extra[:2], "little")
            area = ino.extra[extra_isize:]
            if extra_isize + 4 <= len(ino.extra) and area[:4] == b"\x00\x00\x02\xea":
                out.update(self._xattr_entries(area, 4, 4, ino, "in-inode xattrs"))
        if ino.file_acl:
            blk = self._block(ino.file_acl, f"xattr block of inode {ino.number}")
            if blk[:4] != b"\x00\x00\x02\xea":
                raise FormatError(FMT, f"xattr block of inode {ino.number}", ino.file_acl * self.bs, "bad magic")
            out.update(self._xattr_entries(blk, 32, 0, ino, "xattr block"))
        return out

    def _xattr_entries(self, area: bytes, first: int, value_base: int, ino: Ext4Inode, what: str) -> dict[str, bytes]:
        out = {}
        pos = first
        while pos + 16 <= len(area) and area[pos : pos + 4] != b"\0\0\0\0":
            nlen, index, voff, vinum, vsize, _hash = unpack(_XATTR, area, pos, FMT, what)
            if vinum:
                raise FormatError(FMT, f"{what} of inode {ino.number}", pos, "value in an EA inode (unsupported)")
            vstart = value_base + voff
            if pos + 16 + nlen > len(area) or vstart + vsize > len(area):
                raise FormatError(FMT, f"{what} of inode {ino.number}", pos, "entry runs past its area")
            name = XATTR_PREFIXES.get(index, f"[{index}]") + area[pos + 16 : pos + 16 + nlen].decode("utf-8", "replace")
            out[name] = area[vstart : vstart + vsize]
            pos += -(-(16 + nlen) // 4) * 4
        return out

    # -- tree ---------------------------------------------------------------------------------------
    def root(self) -> Ext4Inode:
        """The root directory (inode 2)."""
        ino = self.inode(ROOT_INO)
        if not ino.is_dir:
            raise FormatError(FMT, "root inode", ino.offset, "is not a directory")
        return ino

    def children(self, ino: Ext4Inode) -> list[tuple[str, int]]:
        """(name, inode number) of a directory's entries (`.` and `..` are never listed)."""
        return [(name, number) for name, number, _type in self.readdir(ino)]
