"""EROFS, read as the kernel reads it: superblock, inodes, every data layout, directories, xattrs.

    byte 1024  superblock   magic e2 e1 f5 e0 | checksum | compat | blkszbits | extslots | root nid
                            | inode count | epoch | fixed nsec | blocks | meta blkaddr | xattr blkaddr
                            | uuid | volume name | incompat | compression algs | … | packed nid …
    inode n    at meta_blkaddr * block_size + 32 * nid: 32-byte compact or 64-byte extended inode,
               then inline xattrs, then (by layout) inline tail data, a chunk table, or the
               compression map header and lcluster indexes.

Layouts: FLAT_PLAIN, FLAT_INLINE (tail packed after the inode), CHUNK_BASED, COMPRESSED_FULL
(8-byte lcluster indexes) and COMPRESSED_COMPACT (2/4-byte packed indexes), with big pclusters,
ztailpacking (the tail pcluster inline) and fragments (tails in the packed inode).
Algorithms: LZ4 (also LZ4HC output), MicroLZMA, DEFLATE, Zstandard.
Facts from erofs-utils 1.9.3 include/erofs_fs.h, lib/namei.c, lib/data.c, lib/zmap.c, lib/dir.c.
"""

from __future__ import annotations

import bisect
import stat
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from cvmlint import limits
from cvmlint.errors import FormatError, reader
from cvmlint.image import codecs
from cvmlint.image.erofs_zmap import ADVISE_FRAGMENT_PCLUSTER, FMT, INTERLACED, SHIFTED, Extent, ZMap
from cvmlint.image.source import ByteSource, FileMode, first_bytes, read_exact, unpack
from cvmlint.image.tree import InodeTree, Recent, zeros

MAGIC = 0xE0F5E1E2
SB_OFFSET = 1024
_SB = struct.Struct("<IIIBBHQQIIII16s16sIHHHBBIQBB2sIQQQQ")
_COMPACT = struct.Struct("<HHHHIIIIHHI")
_EXTENDED = struct.Struct("<HHHHQIIIIQII16s")
_DIRENT = struct.Struct("<QHBB")
_CHUNK_INDEX = struct.Struct("<HHI")
_XATTR_ENTRY = struct.Struct("<BBH")

COMPAT_SB_CHKSUM = 0x1
INCOMPAT_LZ4_0PADDING = 0x1
INCOMPAT_COMPR_CFGS = 0x2
INCOMPAT_CHUNKED_FILE = 0x4
INCOMPAT_DEVICE_TABLE = 0x8
INCOMPAT_ZTAILPACKING = 0x10
INCOMPAT_FRAGMENTS = 0x20
INCOMPAT_XATTR_PREFIXES = 0x40
INCOMPAT_48BIT = 0x80
INCOMPAT_METABOX = 0x100
SUPPORTED_INCOMPAT = 0x7F
"""48BIT and METABOX (erofs-utils 1.9, experimental) are refused with a clear message."""

FLAT_PLAIN, COMPRESSED_FULL, FLAT_INLINE, COMPRESSED_COMPACT, CHUNK_BASED = range(5)
LAYOUT_NAMES = {0: "FLAT_PLAIN", 1: "COMPRESSED_FULL", 2: "FLAT_INLINE", 3: "COMPRESSED_COMPACT", 4: "CHUNK_BASED"}
ALGORITHMS = {0: "lz4", 1: "lzma", 2: "deflate", 3: "zstd"}

NULL_ADDR32 = 0xFFFFFFFF
PCLUSTER_MAX_SIZE = 1 << 20
PCLUSTER_MAX_DSIZE = 12 << 20
MAX_NAME = 255
XATTR_PREFIXES = {
    1: "user.",
    2: "system.posix_acl_access",
    3: "system.posix_acl_default",
    4: "trusted.",
    5: "lustre.",
    6: "security.",
}


@dataclass(frozen=True)
class ErofsSuperblock:
    """The parsed superblock."""

    block_size: int
    blkszbits: int
    root_nid: int
    inodes: int
    epoch: int
    fixed_nsec: int
    blocks: int
    meta_blkaddr: int
    xattr_blkaddr: int
    uuid: str
    volume_name: str
    feature_compat: int
    feature_incompat: int
    compr_algs: int
    """Bitmap of algorithms in use (LZ4 only when COMPR_CFGS is off)."""
    extra_devices: int
    xattr_prefix_count: int
    xattr_prefix_start: int
    packed_nid: int
    checksum_ok: bool | None
    """None when the image carries no checksum (SB_CHKSUM off)."""


@dataclass(frozen=True)
class ErofsInode(FileMode):
    """One inode, as stored."""

    nid: int
    offset: int
    extended: bool
    layout: int
    mode: int
    nlink: int
    uid: int
    gid: int
    size: int
    mtime: int
    mtime_nsec: int
    raw_u: int
    """startblk (flat), compressed block count, rdev or chunk format, by type and layout."""
    xattr_isize: int
    shared_xattr_count_hint: int
    dot_omitted: bool = False

    @property
    def inode_isize(self) -> int:
        """On-disk size of the inode record itself."""
        return 64 if self.extended else 32

    @property
    def body(self) -> int:
        """Byte offset right after the inode and its inline xattrs."""
        return self.offset + self.inode_isize + self.xattr_isize

    @property
    def rdev(self) -> tuple[int, int]:
        """(major, minor) of a device node (new encoding)."""
        dev = self.raw_u
        return (dev & 0xFFF00) >> 8, (dev & 0xFF) | ((dev >> 12) & 0xFFF00)


@dataclass(frozen=True)
class DirEntry:
    """One directory entry."""

    name: str
    nid: int
    file_type: int


class ErofsFileSystem(InodeTree):
    """An erofs image on a byte source; every read is bounds-checked against the source size."""

    FMT = FMT

    @reader("erofs", "superblock")
    def __init__(self, src: ByteSource) -> None:
        self.src = src
        self.sb = self._superblock()
        self.bs = self.sb.block_size
        self._packed: ErofsInode | None = None
        self._prefixes: list[tuple[int, bytes]] | None = None
        self._inode_cache = lru_cache(maxsize=4096)(self._read_inode)
        self._extent_index = Recent[int, list[Extent]](64)  # nid -> extents (the packed inode's, read piece by piece)
        self._pieces = Recent[int, bytes](512)  # 4 KiB block -> its bytes, for metadata
        self._decoded = Recent[tuple[int, int], bytes](16)  # (nid, logical start) -> a decompressed extent

    # -- superblock --------------------------------------------------------------------------
    def _superblock(self) -> ErofsSuperblock:
        raw = read_exact(self.src, SB_OFFSET, 128, FMT, "superblock")
        (
            magic,
            checksum,
            compat,
            blkszbits,
            _extslots,
            root_nid,
            inos,
            epoch,
            fixed_nsec,
            blocks,
            meta_blkaddr,
            xattr_blkaddr,
            uid,
            volname,
            incompat,
            u1,
            extra_devices,
            _devt,
            _dirblkbits,
            prefix_count,
            prefix_start,
            packed_nid,
            _filter,
            _ishare,
            _res,
            _build_time,
            _rootnid8,
            _res2,
            _metabox,
            _res3,
        ) = unpack(_SB, raw + b"\0" * 16, 0, FMT, "superblock")
        if magic != MAGIC:
            raise FormatError(FMT, "superblock", SB_OFFSET, f"bad magic {magic:#010x} (expected {MAGIC:#010x})")
        if not 9 <= blkszbits <= 16:
            raise FormatError(FMT, "superblock", SB_OFFSET + 12, f"block size 2^{blkszbits} outside 512..65536")
        unknown = incompat & ~SUPPORTED_INCOMPAT
        if unknown:
            names = {INCOMPAT_48BIT: "48bit", INCOMPAT_METABOX: "metabox"}
            what = ", ".join(names.get(1 << b, f"bit {b}") for b in range(32) if unknown & (1 << b))
            raise FormatError(FMT, "superblock", SB_OFFSET + 80, f"unsupported incompatible feature(s): {what}")
        bs = 1 << blkszbits
        if blocks and blocks * bs > self.src.size:
            raise FormatError(
                FMT,
                "superblock",
                SB_OFFSET + 36,
                f"{blocks} blocks of {bs} bytes exceed {self.src.name} ({self.src.size} bytes): truncated image",
            )
        if meta_blkaddr * bs >= self.src.size:
            raise FormatError(FMT, "superblock", SB_OFFSET + 40, f"metadata block {meta_blkaddr} is past the end")
        checksum_ok = None
        if compat & COMPAT_SB_CHKSUM:
            length = bs - SB_OFFSET if bs > SB_OFFSET else bs
            body = bytearray(read_exact(self.src, SB_OFFSET, length, FMT, "superblock (checksummed area)"))
            body[4:8] = b"\0\0\0\0"
            checksum_ok = codecs.crc32c_raw(0xFFFFFFFF, bytes(body)) == checksum
            if not checksum_ok:
                raise FormatError(FMT, "superblock", SB_OFFSET + 4, f"checksum mismatch (stored {checksum:#010x})")
        algs = u1 if incompat & INCOMPAT_COMPR_CFGS else 1
        return ErofsSuperblock(
            bs,
            blkszbits,
            root_nid,
            inos,
            epoch,
            fixed_nsec,
            blocks,
            meta_blkaddr,
            xattr_blkaddr,
            str(uuid.UUID(bytes=uid)),
            volname.rstrip(b"\0").decode("utf-8", "replace"),
            compat,
            incompat,
            algs,
            extra_devices,
            prefix_count,
            prefix_start,
            packed_nid,
            checksum_ok,
        )

    # -- inodes -------------------------------------------------------------------------------
    @reader("erofs", "inode")
    def inode(self, nid: int) -> ErofsInode:
        """The inode with number `nid` (validated)."""
        result: ErofsInode = self._inode_cache(nid)
        return result

    def _read_inode(self, nid: int) -> ErofsInode:
        if nid < 0 or nid >> 63:
            raise FormatError(FMT, f"inode {nid}", 0, "nid refers to a metabox, which is not supported")
        offset = self.sb.meta_blkaddr * self.bs + nid * 32
        what = f"inode {nid}"
        head = self._meta(offset, 32, what)  # inodes share blocks: one read per block
        i_format = int.from_bytes(head[:2], "little")
        if i_format & ~0x1F:
            raise FormatError(FMT, what, offset, f"unsupported i_format {i_format:#x}")
        layout = (i_format >> 1) & 0x7
        if layout > CHUNK_BASED:
            raise FormatError(FMT, what, offset, f"unknown data layout {layout}")
        if i_format & 1:
            raw = self._meta(offset, 64, what)
            (_f, icount, mode, _nb, size, raw_u, _ino, uid, gid, mtime, mtime_nsec, nlink, _r) = unpack(
                _EXTENDED, raw, 0, FMT, what
            )
            extended = True
        else:
            (_f, icount, mode, nb, size, mtime_rel, raw_u, _ino, uid, gid, _r) = unpack(_COMPACT, head, 0, FMT, what)
            nlink = 1 if (not stat.S_ISDIR(mode) and (i_format >> 4) & 1) else nb
            mtime, mtime_nsec, extended = self.sb.epoch + mtime_rel, self.sb.fixed_nsec, False
        if stat.S_IFMT(mode) not in (
            stat.S_IFREG,
            stat.S_IFDIR,
            stat.S_IFLNK,
            stat.S_IFCHR,
            stat.S_IFBLK,
            stat.S_IFIFO,
            stat.S_IFSOCK,
        ):
            raise FormatError(FMT, what, offset + 4, f"bogus mode {mode:o}")
        xattr_isize = 12 + 4 * (icount - 1) if icount else 0
        if (
            layout in (COMPRESSED_FULL, COMPRESSED_COMPACT)
            and not stat.S_ISREG(mode)
            and not stat.S_ISDIR(mode)
            and not stat.S_ISLNK(mode)
        ):
            raise FormatError(FMT, what, offset, "compressed layout on a special file")
        if layout == CHUNK_BASED and raw_u & 0xFFFF & ~0x7F:
            raise FormatError(FMT, what, offset + 16, f"unsupported chunk format {raw_u & 0xFFFF:#x}")
        if size > 1 << 44:
            raise FormatError(FMT, what, offset + 8, f"implausible size {size}")
        return ErofsInode(
            nid,
            offset,
            extended,
            layout,
            mode,
            nlink,
            uid,
            gid,
            size,
            mtime,
            mtime_nsec,
            raw_u,
            xattr_isize,
            icount,
            bool(stat.S_ISDIR(mode) and (i_format >> 4) & 1),
        )

    # -- data ---------------------------------------------------------------------------------
    @reader("erofs", "file data")
    def head(self, ino: ErofsInode, length: int) -> bytes:
        """The first `length` bytes of a file (less if it is shorter), reading little more."""
        return first_bytes(self.iter_data(ino, piece=max(length, 4096)), length)

    @reader("erofs", "file data")
    def iter_data(self, ino: ErofsInode, limit: int | None = None, piece: int = 1 << 20) -> Iterator[bytes]:
        """A file's content in pieces, in order; holes read as zeros."""
        if limit is not None and ino.size > limit:
            raise FormatError(
                FMT, f"inode {ino.nid}", ino.offset + 8, f"size {ino.size} exceeds the {limit}-byte limit"
            )
        if ino.size == 0:
            return
        if ino.layout in (FLAT_PLAIN, FLAT_INLINE):
            yield from self._flat(ino, piece)
        elif ino.layout == CHUNK_BASED:
            yield from self._chunked(ino, piece)
        else:
            yield from self._compressed(ino)

    def read(self, ino: ErofsInode, limit: int = 1 << 30) -> bytes:
        """A whole file's content (refused above `limit` bytes)."""
        return b"".join(self.iter_data(ino, limit))

    def _read(self, offset: int, length: int, what: str) -> bytes:
        return read_exact(self.src, offset, length, FMT, what)

    def _meta(self, offset: int, length: int, what: str) -> bytes:
        """Small metadata reads (indexes, headers) through a cache of 4 KiB pieces."""
        first, last = offset >> 12, (offset + length - 1) >> 12
        if first != last:
            return self._read(offset, length, what)
        piece = self._pieces.get(first)
        if piece is None:
            piece = self._pieces.keep(first, self.src.pread(first << 12, 4096))
        inner = offset & 4095
        if inner + length > len(piece):
            return self._read(offset, length, what)  # raises the FormatError for the short read
        return piece[inner : inner + length]

    def _read_blocks(self, start_blk: int, length: int, what: str, piece: int = 1 << 20) -> Iterator[bytes]:
        pos, end = start_blk * self.bs, start_blk * self.bs + length
        while pos < end:
            n = min(piece, end - pos)
            yield self._read(pos, n, what)
            pos += n

    def _flat(self, ino: ErofsInode, piece: int = 1 << 20) -> Iterator[bytes]:
        nblocks = -(-ino.size // self.bs)
        tail = ino.layout == FLAT_INLINE
        plain = (nblocks - (1 if tail else 0)) * self.bs
        plain = min(plain, ino.size)
        what = f"data of inode {ino.nid}"
        if plain:
            if ino.layout == FLAT_PLAIN and ino.raw_u == NULL_ADDR32:
                yield from zeros(plain)
            else:
                yield from self._read_blocks(ino.raw_u, plain, what, piece)
        if tail and ino.size > plain:
            tail_len = ino.size - plain
            if ino.body % self.bs + tail_len > self.bs:
                raise FormatError(
                    FMT, f"inline tail of inode {ino.nid}", ino.body, f"{tail_len} bytes cross a block boundary"
                )
            yield self._read(ino.body, tail_len, f"inline tail of inode {ino.nid}")

    def _chunked(self, ino: ErofsInode, piece: int = 1 << 20) -> Iterator[bytes]:
        fmt = ino.raw_u & 0xFFFF
        chunkbits = self.sb.blkszbits + (fmt & 0x1F)
        if chunkbits > 40:
            raise FormatError(FMT, f"inode {ino.nid}", ino.offset + 16, f"chunk size 2^{chunkbits} is implausible")
        indexes = bool(fmt & 0x20)
        unit = 8 if indexes else 4
        table = -(-ino.body // unit) * unit
        chunk = 1 << chunkbits
        count = -(-ino.size // chunk)
        raw = self._read(table, count * unit, f"chunk table of inode {ino.nid}")
        for n in range(count):
            length = min(chunk, ino.size - n * chunk)
            if indexes:
                hi, device, lo = unpack(_CHUNK_INDEX, raw, n * 8, FMT, f"chunk index {n} of inode {ino.nid}")
                blk = ((hi << 32) | lo) & ((1 << 48) - 1 if fmt & 0x40 else 0xFFFFFFFF)
                hole = blk == ((1 << 48) - 1 if fmt & 0x40 else 0xFFFFFFFF)
                if device and not hole:
                    raise FormatError(
                        FMT,
                        f"chunk {n} of inode {ino.nid}",
                        table + n * 8,
                        f"data on extra device {device}, which is not part of this image",
                    )
            else:
                blk = int.from_bytes(raw[n * 4 : n * 4 + 4], "little")
                hole = blk == NULL_ADDR32
            if hole:
                yield from zeros(length)
            else:
                yield from self._read_blocks(blk, length, f"chunk {n} of inode {ino.nid}", piece)

    # -- compressed ---------------------------------------------------------------------------
    def _zmap(self, ino: ErofsInode) -> ZMap:
        return ZMap(self._meta, ino, self.sb.blkszbits, ino.layout == COMPRESSED_FULL)

    def _compressed(self, ino: ErofsInode) -> Iterator[bytes]:
        for ext in self._zmap(ino).extents():
            yield self._extent_data(ino, ext)

    def _extent_data(self, ino: ErofsInode, ext: Extent) -> bytes:
        what = f"pcluster of inode {ino.nid} at logical offset {ext.la}"
        if ext.kind == "fragment":
            return self._packed_read(ext.pa, ext.llen, ino)
        if ext.plen > PCLUSTER_MAX_SIZE or ext.llen > PCLUSTER_MAX_DSIZE:
            raise FormatError(
                FMT, what, ext.pa, f"pcluster {ext.plen} bytes / extent {ext.llen} bytes exceed the format's limits"
            )
        if ext.kind == "inline" and ext.pa % self.bs + ext.plen > self.bs:
            raise FormatError(FMT, f"tail pcluster of inode {ino.nid}", ext.pa, "crosses a block boundary")
        raw = self._read(ext.pa, ext.plen, what)
        if ext.alg == SHIFTED:
            if ext.llen > len(raw):
                raise FormatError(FMT, what, ext.pa, f"plain extent of {ext.llen} bytes in a {len(raw)}-byte pcluster")
            return raw[: ext.llen]
        if ext.alg == INTERLACED:
            if ext.llen > len(raw) or len(raw) > self.bs:
                raise FormatError(FMT, what, ext.pa, "interlaced extent does not fit its pcluster")
            skip = ext.la % self.bs
            right = min(self.bs - skip, ext.llen)
            return raw[skip : skip + right] + raw[: ext.llen - right]
        if not self.sb.compr_algs & (1 << ext.alg):
            raise FormatError(FMT, what, ext.pa, f"algorithm {ext.alg} is not declared in the superblock")
        margin = len(raw) - len(raw.lstrip(b"\0"))
        if margin >= len(raw):
            raise FormatError(FMT, what, ext.pa, "pcluster holds only zero padding")
        data = raw[margin:]
        name = ALGORITHMS.get(ext.alg)
        if name == "lz4":
            return codecs.lz4_block(data, ext.llen, FMT, what, ext.pa)
        if name == "lzma":
            return codecs.microlzma(data, ext.llen, FMT, what, ext.pa)
        if name == "deflate":
            return codecs.raw_deflate(data, ext.llen, FMT, what, ext.pa)
        if name == "zstd":
            return codecs.zstd_frame(data, ext.llen, FMT, what, ext.pa)
        raise FormatError(FMT, what, ext.pa, f"unsupported algorithm {ext.alg}")

    def _packed_read(self, offset: int, length: int, owner: ErofsInode) -> bytes:
        if not self.sb.packed_nid or not self.sb.feature_incompat & INCOMPAT_FRAGMENTS:
            raise FormatError(
                FMT, f"inode {owner.nid}", owner.offset, "refers to a fragment but the image has no packed inode"
            )
        if self._packed is None:
            self._packed = self.inode(self.sb.packed_nid)
            if (
                self._packed.layout in (COMPRESSED_FULL, COMPRESSED_COMPACT)
                and self._zmap(self._packed).zh.advise & ADVISE_FRAGMENT_PCLUSTER
            ):
                raise FormatError(FMT, "packed inode", self._packed.offset, "the packed inode uses fragments itself")
        if offset + length > self._packed.size:
            raise FormatError(
                FMT,
                f"fragment of inode {owner.nid}",
                owner.offset,
                f"bytes {offset}..{offset + length} lie outside the packed inode ({self._packed.size})",
            )
        return self._read_range(self._packed, offset, length)

    @reader("erofs", "file data")
    def read_at(self, ino: ErofsInode, offset: int, length: int) -> bytes:
        """Bytes [offset, offset+length) of a file, decompressing only the extents that hold them."""
        offset = max(0, offset)
        return self._read_range(ino, offset, max(0, min(length, ino.size - offset)), remember=False)

    def _read_range(self, ino: ErofsInode, offset: int, length: int, remember: bool = True) -> bytes:
        """Bytes [offset, offset+length) of a file: random access, as fragments in the packed inode need."""
        if ino.layout not in (COMPRESSED_FULL, COMPRESSED_COMPACT):
            out, pos = bytearray(), 0
            for piece in self.iter_data(ino):
                end = pos + len(piece)
                if end > offset and pos < offset + length:
                    out += piece[max(0, offset - pos) : offset + length - pos]
                pos = end
                if pos >= offset + length:
                    break
            return bytes(out)
        extents = self._extent_index.get(ino.nid)
        if extents is None and not remember and length <= self.bs:  # a small read, e.g. a file's tail
            extents = [self._zmap(ino).extent_at(offset)]
            if extents[0].la + extents[0].llen < offset + length:
                extents = None
        if extents is None:
            extents = list(self._zmap(ino).extents())
        if remember:
            self._extent_index.keep(ino.nid, extents)
        starts = [e.la for e in extents]
        out = bytearray()
        k = max(0, bisect.bisect_right(starts, offset) - 1)
        while len(out) < length and k < len(extents):
            ext = extents[k]
            data = self._decoded.get((ino.nid, ext.la))
            if data is None:
                data = self._decoded.keep((ino.nid, ext.la), self._extent_data(ino, ext))
            begin = max(0, offset + len(out) - ext.la)
            out += data[begin : begin + length - len(out)]
            k += 1
        return bytes(out)

    # -- directories, links, xattrs -----------------------------------------------------------
    @reader("erofs", "directory")
    def readdir(self, ino: ErofsInode) -> list[DirEntry]:
        """A directory's entries (`.` and `..` included when stored)."""
        if not ino.is_dir:
            raise FormatError(FMT, f"inode {ino.nid}", ino.offset, "is not a directory")
        limits.check("directory-bytes", ino.size, FMT, f"directory inode {ino.nid}", ino.offset)
        data = self.read(ino, limits.get("directory-bytes"))
        entries: list[DirEntry] = []
        for start in range(0, len(data), self.bs):
            entries.extend(self._dirblock(ino, data[start : start + self.bs], start))
            limits.check("directory-entries", len(entries), FMT, f"directory inode {ino.nid}", ino.offset)
        return entries

    def _dirblock(self, ino: ErofsInode, blk: bytes, start: int) -> list[DirEntry]:
        what = f"directory block at byte {start} of inode {ino.nid}"
        if len(blk) < 12:
            raise FormatError(FMT, what, ino.offset, f"only {len(blk)} bytes")
        first_nameoff = int.from_bytes(blk[8:10], "little")
        if first_nameoff < 12 or first_nameoff % 12 or first_nameoff >= len(blk):
            raise FormatError(FMT, what, ino.offset, f"bogus first name offset {first_nameoff}")
        count = first_nameoff // 12
        raw = list(_DIRENT.iter_unpack(blk[:first_nameoff]))  # first_nameoff < len(blk), a multiple of 12
        out = []
        for k, (nid, nameoff, ftype, _r) in enumerate(raw):
            end = raw[k + 1][1] if k + 1 < count else len(blk)
            if k + 1 == count:
                nul = blk.find(b"\0", nameoff)
                end = nul if nul != -1 else len(blk)
            if not first_nameoff <= nameoff < end <= len(blk) or end - nameoff > MAX_NAME:
                raise FormatError(FMT, what, ino.offset, f"entry {k}: bogus name span {nameoff}..{end}")
            name = blk[nameoff:end].decode("utf-8", "surrogateescape")
            if "/" in name or "\0" in name:
                raise FormatError(FMT, what, ino.offset, f"entry {k}: invalid name {name!r}")
            out.append(DirEntry(name, nid, ftype))
        return out

    @reader("erofs", "symlink")
    def readlink(self, ino: ErofsInode) -> str:
        """A symlink's target."""
        if not ino.is_symlink:
            raise FormatError(FMT, f"inode {ino.nid}", ino.offset, "is not a symlink")
        if ino.size > 4096:
            raise FormatError(FMT, f"symlink inode {ino.nid}", ino.offset, f"target of {ino.size} bytes")
        return self.read(ino, 4096).decode("utf-8", "surrogateescape")

    @reader("erofs", "xattrs")
    def xattrs(self, ino: ErofsInode) -> dict[str, bytes]:
        """Inline and shared extended attributes."""
        if not ino.xattr_isize:
            return {}
        what = f"xattrs of inode {ino.nid}"
        base = ino.offset + ino.inode_isize
        area = self._read(base, ino.xattr_isize, what)
        shared_count = area[4]
        if 12 + 4 * shared_count > len(area):
            raise FormatError(FMT, what, base + 4, f"{shared_count} shared xattrs do not fit the inline area")
        out: dict[str, bytes] = {}
        for k in range(shared_count):
            sid = int.from_bytes(area[12 + 4 * k : 16 + 4 * k], "little")
            pos = self.sb.xattr_blkaddr * self.bs + 4 * sid
            head = self._read(pos, 4, f"shared xattr {sid}")
            nlen, _idx, vlen = unpack(_XATTR_ENTRY, head, 0, FMT, f"shared xattr {sid}")
            name, value, _ = self._xattr_entry(self._read(pos, 4 + nlen + vlen, f"shared xattr {sid}"), 0, what)
            out[name] = value
        pos = 12 + 4 * shared_count
        while pos + 4 <= len(area):
            name, value, size = self._xattr_entry(area, pos, what)
            out[name] = value
            pos += size
        return out

    def _xattr_entry(self, buf: bytes, pos: int, what: str) -> tuple[str, bytes, int]:
        nlen, index, vlen = unpack(_XATTR_ENTRY, buf, pos, FMT, what)
        end = pos + 4 + nlen + vlen
        if end > len(buf):
            raise FormatError(FMT, what, pos, f"entry of {nlen}+{vlen} bytes runs past the xattr area")
        suffix = buf[pos + 4 : pos + 4 + nlen]
        if index & 0x80:
            prefixes = self._long_prefixes()
            if (index & 0x7F) >= len(prefixes):
                raise FormatError(FMT, what, pos, f"long xattr prefix {index & 0x7F} is not defined")
            base, infix = prefixes[index & 0x7F]
            name = XATTR_PREFIXES.get(base, "") + infix.decode("utf-8", "surrogateescape")
        else:
            if index not in XATTR_PREFIXES:
                raise FormatError(FMT, what, pos, f"unknown xattr name index {index}")
            name = XATTR_PREFIXES[index]
        value = buf[pos + 4 + nlen : end]
        return name + suffix.decode("utf-8", "surrogateescape"), value, -(-(4 + nlen + vlen) // 4) * 4

    def _long_prefixes(self) -> list[tuple[int, bytes]]:
        if self._prefixes is None:
            self._prefixes = []
            pos = self.sb.xattr_prefix_start * 4
            packed = self.inode(self.sb.packed_nid) if self.sb.packed_nid else None
            for _ in range(self.sb.xattr_prefix_count):
                pos = -(-pos // 4) * 4
                if packed is not None:
                    head = self._read_range(packed, pos, 2)
                else:
                    head = self._read(pos, 2, "long xattr prefix")
                length = int.from_bytes(head, "little")
                if not 1 <= length <= MAX_NAME + 1:
                    raise FormatError(FMT, "long xattr prefix", pos, f"bogus length {length}")
                body = (
                    self._read_range(packed, pos + 2, length)
                    if packed
                    else self._read(pos + 2, length, "long xattr prefix")
                )
                self._prefixes.append((body[0], body[1:]))
                pos += 2 + length
        return self._prefixes

    # -- tree ---------------------------------------------------------------------------------
    def root(self) -> ErofsInode:
        """The root directory inode."""
        ino = self.inode(self.sb.root_nid)
        if not ino.is_dir:
            raise FormatError(FMT, "root inode", ino.offset, "is not a directory")
        return ino

    def children(self, ino: ErofsInode) -> list[tuple[str, int]]:
        """(name, nid) of a directory's entries without `.` and `..`."""
        return [(e.name, e.nid) for e in self.readdir(ino) if e.name not in (".", "..")]
