"""squashfs 4.0, read-only: superblock, inodes of every type, directories, data blocks, fragments,
the id table and extended attributes.

    byte 0     superblock (96 bytes): magic "hsqs" | inodes | mtime | block size | fragments |
               compressor (1 gzip, 2 lzma, 3 lzo, 4 xz, 5 lz4, 6 zstd) | block log | flags | ids |
               version 4.0 | root inode ref | bytes used | id, xattr id, inode, directory, fragment
               and export table offsets (u64, all ones when absent)
    metadata   blocks of at most 8 KiB: a u16 header (stored length; bit 15: not compressed), then
               the bytes; a structure may run on into the next block. An inode reference is the
               block's byte offset from the inode table's start << 16 | the offset inside the block.
    inode      u16 type (1..7: dir, reg, symlink, blkdev, chrdev, fifo, socket; 8..14: the same,
               extended with nlink and an xattr index) | mode | uid index | gid index | mtime | inode
               number; then by type. reg: first data block, fragment, offset in it, size, one u32 per
               block (its stored size; bit 24: not compressed; 0: a sparse block of zeros); the tail
               (size % block size) is in the fragment unless that is none. dir: listing block and
               offset, listing size + 3. symlink: nlink, length, target. devices: nlink, rdev.
    directory  runs of a header (count - 1, inode table block, base inode number) and up to 256
               entries (offset in that block, inode number delta, type, name length - 1, name).
    tables     fragment (start, size), id (u32) and xattr id (reference, count, size) entries fill
               metadata blocks listed by an array of u64 block offsets at the superblock's offset.
               xattrs: (type: 0 user, 1 trusted, 2 security; bit 8: value out of line, name length,
               name, value length, value or a u64 reference to it).

Not read: lzo (no kept Python decoder: the tree is refused with one clear error), the export table
(NFS) and the directory index of extended directories (a listing is scanned linearly, bounded).
Facts from the kernel's fs/squashfs/squashfs_fs.h and inode.c (Linux 6.1).
"""

from __future__ import annotations

import lzma
import stat
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache

from cvmlint import limits
from cvmlint.errors import FormatError, reader
from cvmlint.image.source import ByteSource, FileMode, read_exact, unpack
from cvmlint.image.tree import InodeTree, Recent

FMT = "squashfs"
_SB = struct.Struct("<IIIIIHHHHHHQQQQQQQQ")
MAGIC = 0x73717368
COMPRESSORS = {1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}
ABSENT = 0xFFFFFFFFFFFFFFFF
SB_SIZE = 96
METADATA_SIZE = 8192
META_PLAIN = 0x8000
DATA_PLAIN = 1 << 24
NONE32 = 0xFFFFFFFF
"""No fragment, no xattrs."""
MAX_SYMLINK = 4096
MAX_NAME = 256
MAX_SIZE = 1 << 44
XATTR_MAX = 65536
"""Attributes of one file, and bytes of one value: the kernel's XATTR_LIST_MAX and XATTR_SIZE_MAX."""
DECODER_MEMORY = 64 << 20

DIR, REG, SYMLINK, BLKDEV, CHRDEV, FIFO, SOCKET = range(1, 8)
LONG = 7
"""An extended inode's type is its basic type + 7."""
_IFMT = (stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK, stat.S_IFBLK, stat.S_IFCHR, stat.S_IFIFO, stat.S_IFSOCK)
_TYPE_BITS = dict(zip(range(1, 8), _IFMT, strict=True))
_S = struct.Struct
_FIELDS: dict[int, tuple[struct.Struct, tuple[str, ...]]] = {
    DIR: (_S("<IIHHI"), ("start", "nlink", "size", "dir_offset", "_parent")),
    REG: (_S("<IIII"), ("start", "fragment", "frag_offset", "size")),
    SYMLINK: (_S("<II"), ("nlink", "size")),
    BLKDEV: (_S("<II"), ("nlink", "raw_rdev")),
    CHRDEV: (_S("<II"), ("nlink", "raw_rdev")),
    FIFO: (_S("<I"), ("nlink",)),
    SOCKET: (_S("<I"), ("nlink",)),
    DIR + LONG: (_S("<IIIIHHI"), ("nlink", "size", "start", "_parent", "_index_count", "dir_offset", "xattr")),
    REG + LONG: (_S("<QQQIIII"), ("start", "size", "_sparse", "nlink", "fragment", "frag_offset", "xattr")),
    SYMLINK + LONG: (_S("<II"), ("nlink", "size")),  # the xattr index follows the target
    BLKDEV + LONG: (_S("<III"), ("nlink", "raw_rdev", "xattr")),
    CHRDEV + LONG: (_S("<III"), ("nlink", "raw_rdev", "xattr")),
    FIFO + LONG: (_S("<II"), ("nlink", "xattr")),
    SOCKET + LONG: (_S("<II"), ("nlink", "xattr")),
}
_BASE = _S("<HHHHII")
_DIR_HEADER = _S("<III")
_DIR_ENTRY = _S("<HhHH")
_FRAGMENT = _S("<QII")
_XATTR_ID = _S("<QII")
XATTR_PREFIXES = {0: "user.", 1: "trusted.", 2: "security."}
XATTR_OOL = 0x100

Span = tuple[str, int, int]
"""A table's name and the byte range its metadata blocks must lie in."""


@dataclass(frozen=True)
class SquashfsSuperblock:
    """What the superblock says."""

    inodes: int
    block_size: int
    fragments: int
    compressor: str
    flags: int
    version: tuple[int, int]
    bytes_used: int
    mtime: int
    root_inode: int = 0
    id_count: int = 0
    id_table: int = ABSENT
    xattr_id_table: int = ABSENT
    inode_table: int = ABSENT
    directory_table: int = ABSENT
    fragment_table: int = ABSENT
    export_table: int = ABSENT


@reader("squashfs", "superblock")
def read_superblock(src: ByteSource) -> SquashfsSuperblock:
    """Parse and check the superblock against the source's size."""
    raw = read_exact(src, 0, 96, FMT, "superblock")
    (magic, inodes, mtime, block_size, frags, comp, block_log, flags, ids, major, minor, root, used, *tables) = unpack(
        _SB, raw, 0, FMT, "superblock"
    )
    if magic != MAGIC:
        raise FormatError(FMT, "superblock", 0, f"bad magic {magic:#010x}")
    if (major, minor) != (4, 0):
        raise FormatError(FMT, "superblock", 28, f"unsupported version {major}.{minor}")
    if not 12 <= block_log <= 20 or block_size != 1 << block_log:
        raise FormatError(FMT, "superblock", 12, f"block size {block_size} does not match block log {block_log}")
    if comp not in COMPRESSORS:
        raise FormatError(FMT, "superblock", 20, f"unknown compressor {comp}")
    if used > src.size:
        raise FormatError(FMT, "superblock", 40, f"{used} bytes used but {src.name} has {src.size}: truncated")
    names = ("id", "xattr", "inode", "directory", "fragment", "export")
    for name, offset in zip(names, tables, strict=True):
        if offset != ABSENT and offset >= used:
            raise FormatError(FMT, "superblock", 48, f"{name} table offset {offset} is past the {used} bytes used")
    return SquashfsSuperblock(
        inodes, block_size, frags, COMPRESSORS[comp], flags, (major, minor), used, mtime, root, ids, *tables
    )


def decompress(compressor: str, raw: bytes, cap: int, what: str, offset: int) -> bytes:
    """One compressed block, refused when it decodes to more than `cap` bytes or does not end."""
    try:
        if compressor == "gzip":
            zdec = zlib.decompressobj()
            out, done = zdec.decompress(raw, cap + 1), zdec.eof
        elif compressor in ("xz", "lzma"):
            form = lzma.FORMAT_XZ if compressor == "xz" else lzma.FORMAT_ALONE
            ldec = lzma.LZMADecompressor(form, memlimit=DECODER_MEMORY)
            out, done = ldec.decompress(raw, cap + 1), ldec.eof
        elif compressor == "lz4":
            import lz4.block

            out, done = lz4.block.decompress(raw, uncompressed_size=cap), True
        else:
            out, done = _zstd(raw, cap), True
    except _codec_errors() as err:
        raise FormatError(FMT, what, offset, f"{compressor} data is corrupt ({type(err).__name__}: {err})") from None
    if not done or len(out) > cap:
        raise FormatError(FMT, what, offset, f"{compressor} data does not end within {cap} bytes")
    return out


@cache
def _codec_errors() -> tuple[type[Exception], ...]:
    """What the decoders raise on corrupt input."""
    import lz4.block
    import zstandard

    return (zlib.error, lzma.LZMAError, ValueError, lz4.block.LZ4BlockError, zstandard.ZstdError)


def _zstd(raw: bytes, cap: int) -> bytes:
    import zstandard

    if zstandard.frame_content_size(raw) > cap:  # decompress() would allocate what the header claims
        raise ValueError(f"frame claims more than {cap} bytes")
    return zstandard.ZstdDecompressor().decompress(raw, max_output_size=cap)


@dataclass(frozen=True)
class SquashfsInode(FileMode):
    """One inode, as stored; `ref` is its inode reference, the number `children()` and `inode()` use."""

    ref: int
    offset: int
    """The inode reference again: unique per inode, as InodeTree's loop check needs. A squashfs inode
    has no byte offset of its own (it lies in a compressed metadata block): messages name `at`."""
    at: int
    """Byte offset of the metadata block the inode starts in."""
    kind: int
    mode: int
    uid: int
    gid: int
    mtime: int
    number: int
    blocks: int
    """Full data blocks of a file (its tail is in a fragment, if it has one)."""
    block_list: tuple[int, int]
    """Where a file's block sizes start: metadata block byte offset, offset inside it."""
    target: bytes
    nlink: int = 1
    size: int = 0
    start: int = 0
    """First data block (byte offset) of a file; listing block (from the directory table) of a directory."""
    fragment: int = NONE32
    frag_offset: int = 0
    dir_offset: int = 0
    raw_rdev: int = 0
    xattr: int = NONE32

    @property
    def extended(self) -> bool:
        """An extended (long) inode type."""
        return self.kind > LONG

    @property
    def rdev(self) -> tuple[int, int]:
        """(major, minor) of a device node."""
        dev = self.raw_rdev
        return (dev & 0xFFF00) >> 8, (dev & 0xFF) | ((dev >> 12) & 0xFFF00)


def _name(ref: int) -> str:
    return f"inode {ref >> 16}:{ref & 0xFFFF}"


class SquashfsFileSystem(InodeTree):
    """A squashfs 4.0 image on a byte source; every read is bounds-checked, every block output capped."""

    FMT = FMT

    @reader("squashfs", "superblock")
    def __init__(self, src: ByteSource) -> None:
        self.src = src
        self.sb = sb = read_superblock(src)
        self.bs = sb.block_size
        if sb.compressor == "lzo":
            raise FormatError(FMT, "superblock", 20, "lzo-compressed squashfs is not read (no kept lzo decoder)")
        if not SB_SIZE <= sb.inode_table < sb.directory_table < sb.bytes_used:
            raise FormatError(FMT, "superblock", 64, "the inode table does not precede the directory table")
        after = (sb.fragment_table, sb.export_table, sb.id_table, sb.xattr_id_table, sb.bytes_used)
        self._inodes: Span = ("inode table", sb.inode_table, sb.directory_table)
        self._dirs: Span = ("directory table", sb.directory_table, min(t for t in after if t > sb.directory_table))
        self._meta_blocks = Recent[int, tuple[bytes, int]](256)  # byte offset -> (bytes, next block's offset)
        self._fragments = Recent[int, bytes](8)
        self._ids: dict[int, int] = {}
        self._inode_cache = lru_cache(maxsize=4096)(self._read_inode)

    # -- metadata ----------------------------------------------------------------------------------
    def _read(self, offset: int, length: int, what: str) -> bytes:
        return read_exact(self.src, offset, length, FMT, what)

    def _block(self, pos: int, span: Span, what: str) -> tuple[bytes, int]:
        """The metadata block at byte `pos`, and where the next one starts."""
        table, first, end = span
        if not first <= pos <= end - 2:
            raise FormatError(FMT, what, pos, f"metadata block lies outside the {table} (bytes {first}..{end})")
        found = self._meta_blocks.get(pos)
        if found is not None and found[1] <= end:
            return found
        word = int.from_bytes(self._read(pos, 2, f"{table} block header"), "little")
        size = word & ~META_PLAIN
        if not 0 < size <= METADATA_SIZE or pos + 2 + size > end:
            raise FormatError(FMT, f"{table} block", pos, f"stored length {size} does not fit the {table}")
        limits.tick(FMT, what, pos)
        raw = self._read(pos + 2, size, f"{table} block")
        data = raw if word & META_PLAIN else decompress(self.sb.compressor, raw, METADATA_SIZE, f"{table} block", pos)
        return self._meta_blocks.keep(pos, (data, pos + 2 + size))

    def _meta(self, span: Span, pos: int, inner: int, length: int, what: str) -> tuple[bytes, int, int]:
        """`length` bytes from offset `inner` of the metadata block at `pos`, read on across blocks;
        and the position right after them. Blocks only move forward, so a read ends within its table."""
        out = bytearray()
        while len(out) < length:
            data, after = self._block(pos, span, what)
            if inner > len(data):
                raise FormatError(FMT, what, pos, f"offset {inner} is past the {len(data)}-byte metadata block")
            piece = data[inner : inner + length - len(out)]
            out += piece
            inner += len(piece)
            if len(out) < length:
                pos, inner = after, 0
        return bytes(out), pos, inner

    def _entry(self, table: str, index: int, count: int, k: int, size: int) -> bytes:
        """Entry `k` of a table whose metadata blocks are listed by u64 offsets at byte `index`."""
        if index == ABSENT or not 0 <= k < count:
            raise FormatError(FMT, table, -1 if index == ABSENT else index, f"no entry {k} (it has {count})")
        where = index + 8 * (k * size // METADATA_SIZE)
        block = int.from_bytes(self._read(where, 8, f"{table} index"), "little")
        span = (table, SB_SIZE, index)
        return self._meta(span, block, k * size % METADATA_SIZE, size, f"{table} entry {k}")[0]

    def _id(self, k: int) -> int:
        if k not in self._ids:
            self._ids[k] = int.from_bytes(self._entry("id table", self.sb.id_table, self.sb.id_count, k, 4), "little")
        return self._ids[k]

    # -- inodes ------------------------------------------------------------------------------------
    @reader("squashfs", "inode")
    def inode(self, number: int) -> SquashfsInode:
        """The inode with reference `number` (metadata block offset << 16 | offset inside it)."""
        result: SquashfsInode = self._inode_cache(number)
        return result

    def _read_inode(self, ref: int) -> SquashfsInode:
        what, at = _name(ref), self.sb.inode_table + (ref >> 16)
        if not 0 <= ref < 1 << 48:
            raise FormatError(FMT, what, -1, "inode reference out of range")
        head, pos, inner = self._meta(self._inodes, at, ref & 0xFFFF, _BASE.size, what)
        kind, perm, uid, gid, mtime, number = _BASE.unpack(head)
        if kind not in _FIELDS:
            raise FormatError(FMT, what, at, f"unknown inode type {kind}")
        shape, names = _FIELDS[kind]
        raw, pos, inner = self._meta(self._inodes, pos, inner, shape.size, what)
        f = dict(zip(names, shape.unpack(raw), strict=True))
        target = b""
        if kind in (SYMLINK, SYMLINK + LONG):
            if f["size"] > MAX_SYMLINK:
                raise FormatError(FMT, what, at, f"symlink target of {f['size']} bytes")
            target, pos, inner = self._meta(self._inodes, pos, inner, f["size"], what)
            if kind > LONG:
                f["xattr"] = int.from_bytes(self._meta(self._inodes, pos, inner, 4, what)[0], "little")
        f |= {"mtime": mtime, "number": number, "uid": self._id(uid), "gid": self._id(gid), "target": target}
        f |= {"blocks": self._check_sizes(kind, f, what, at), "block_list": (pos, inner)}
        mode = _TYPE_BITS[(kind - 1) % LONG + 1] | (perm & 0o7777)
        return SquashfsInode(ref, ref, at, kind, mode, **{k: v for k, v in f.items() if not k.startswith("_")})

    def _check_sizes(self, kind: int, f: dict[str, int], what: str, at: int) -> int:
        """The number of full data blocks of a file (0 for other types), once its sizes are checked."""
        if kind in (DIR, DIR + LONG) and f["size"] < 3:
            raise FormatError(FMT, what, at, f"directory size {f['size']} is below the minimum of 3")
        if kind not in (REG, REG + LONG):
            return 0
        size, fragment = f["size"], f["fragment"]
        if size > MAX_SIZE:
            raise FormatError(FMT, what, at, f"implausible size {size}")
        if fragment == NONE32:
            return -(-size // self.bs)
        if size % self.bs == 0:
            raise FormatError(FMT, what, at, f"size {size} is a multiple of the block size but has a fragment")
        return size // self.bs

    # -- data --------------------------------------------------------------------------------------
    def _content(self, node: SquashfsInode, first: int) -> Iterator[tuple[int, bytes]]:
        """(offset in the file, bytes) of a file's blocks from block `first` on, then its tail."""
        if node.is_symlink:
            yield 0, node.target
            return
        if not node.is_reg:
            if node.size:
                raise FormatError(FMT, _name(node.ref), node.at, "is not a regular file")
            return
        what = f"data of {_name(node.ref)}"
        disk = node.start
        if first < node.blocks:
            for k, word in enumerate(self._block_words(node)):
                if k >= first:
                    length = min(self.bs, node.size - k * self.bs)
                    data = bytes(length) if word == 0 else self._stored(disk, word, f"{what}, block {k}")
                    if len(data) != length:
                        raise FormatError(FMT, f"{what}, block {k}", disk, f"holds {len(data)} bytes, not {length}")
                    yield k * self.bs, data
                disk += word & (DATA_PLAIN - 1)
        tail = node.size - node.blocks * self.bs
        if tail > 0:
            yield node.blocks * self.bs, self._tail(node, tail)

    def _block_words(self, node: SquashfsInode) -> Iterator[int]:
        pos, inner = node.block_list
        left = node.blocks
        while left:
            n = min(left, 2048)
            raw, pos, inner = self._meta(self._inodes, pos, inner, 4 * n, f"block list of {_name(node.ref)}")
            yield from struct.unpack(f"<{n}I", raw)
            left -= n

    def _stored(self, disk: int, word: int, what: str) -> bytes:
        """A data or fragment block by its size word (bit 24: stored uncompressed; 0 means sparse)."""
        stored = word & (DATA_PLAIN - 1)
        if word >> 25 or not 0 < stored <= self.bs or disk + stored > self.sb.bytes_used:
            raise FormatError(FMT, what, disk, f"{stored} bytes (size word {word:#x}) do not fit the image")
        limits.tick(FMT, what, disk)
        raw = self._read(disk, stored, what)
        return raw if word & DATA_PLAIN else decompress(self.sb.compressor, raw, self.bs, what, disk)

    def _tail(self, node: SquashfsInode, length: int) -> bytes:
        block = self._fragment_block(node.fragment)
        if node.frag_offset + length > len(block):
            raise FormatError(
                FMT, f"tail of {_name(node.ref)}", node.at, f"bytes {node.frag_offset}+{length} pass its fragment"
            )
        return block[node.frag_offset : node.frag_offset + length]

    def _fragment_block(self, k: int) -> bytes:
        found = self._fragments.get(k)
        if found is not None:
            return found
        raw = self._entry("fragment table", self.sb.fragment_table, self.sb.fragments, k, _FRAGMENT.size)
        disk, word, _unused = _FRAGMENT.unpack(raw)
        return self._fragments.keep(k, self._stored(disk, word, f"fragment {k}"))

    @reader("squashfs", "file data")
    def iter_data(self, node: SquashfsInode, limit: int | None = None) -> Iterator[bytes]:
        """A file's content in pieces of at most a block, in order (a symlink's is its target)."""
        if limit is not None and node.size > limit:
            raise FormatError(FMT, _name(node.ref), node.at, f"size {node.size} exceeds the {limit}-byte limit")
        for _start, piece in self._content(node, 0):
            yield piece

    def read(self, node: SquashfsInode, limit: int = 1 << 30) -> bytes:
        """A whole file's content (refused above `limit` bytes)."""
        return b"".join(self.iter_data(node, limit))

    @reader("squashfs", "file data")
    def read_at(self, node: SquashfsInode, offset: int, length: int) -> bytes:
        """Bytes [offset, offset+length) of a file, decompressing only the blocks that hold them."""
        offset = max(0, offset)
        end = offset + max(0, min(length, node.size - offset))
        out = bytearray()
        if end > offset:
            for start, piece in self._content(node, offset // self.bs):
                out += piece[max(0, offset - start) : end - start]
                if start + len(piece) >= end:
                    break
        return bytes(out)

    def head(self, node: SquashfsInode, length: int) -> bytes:
        """The first `length` bytes of a file (fewer if it is shorter)."""
        return self.read_at(node, 0, length)

    # -- directories, links, xattrs ----------------------------------------------------------------
    def root(self) -> SquashfsInode:
        """The root directory."""
        node = self.inode(self.sb.root_inode)
        if not node.is_dir:
            raise FormatError(FMT, "root inode", node.at, "is not a directory")
        return node

    @reader("squashfs", "directory")
    def children(self, node: SquashfsInode) -> list[tuple[str, int]]:
        """(name, inode reference) of a directory's entries (squashfs stores no `.` or `..`)."""
        what = f"directory {_name(node.ref)}"
        if not node.is_dir:
            raise FormatError(FMT, what, node.at, "is not a directory")
        limits.check("directory-bytes", node.size - 3, FMT, what, node.at)
        if node.size == 3:
            return []
        pos = self.sb.directory_table + node.start
        raw = self._meta(self._dirs, pos, node.dir_offset, node.size - 3, what)[0]
        out: list[tuple[str, int]] = []
        at = 0
        while at < len(raw):
            count, block, _base = unpack(_DIR_HEADER, raw, at, FMT, what)
            if count >= 256:
                raise FormatError(FMT, what, pos, f"header at listing byte {at} counts {count + 1} entries (> 256)")
            at += _DIR_HEADER.size
            for _ in range(count + 1):
                name, ref, at = self._dirent(raw, at, block, what, pos)
                out.append((name, ref))
            limits.check("directory-entries", len(out), FMT, what, pos)
        return out

    @staticmethod
    def _dirent(raw: bytes, at: int, block: int, what: str, pos: int) -> tuple[str, int, int]:
        inner, _delta, kind, size = unpack(_DIR_ENTRY, raw, at, FMT, what)
        name = raw[at + _DIR_ENTRY.size : at + _DIR_ENTRY.size + size + 1]
        text = name.decode("utf-8", "surrogateescape")
        if size >= MAX_NAME or len(name) != size + 1 or "/" in text or "\0" in text or text in (".", ".."):
            raise FormatError(FMT, what, pos, f"entry at listing byte {at}: invalid name {name[:64]!r}")
        if not DIR <= kind <= SOCKET:
            raise FormatError(FMT, what, pos, f"entry {text!r}: bogus type {kind}")
        return text, block << 16 | inner, at + _DIR_ENTRY.size + size + 1

    @reader("squashfs", "symlink")
    def readlink(self, node: SquashfsInode) -> str:
        """A symlink's target."""
        if not node.is_symlink:
            raise FormatError(FMT, _name(node.ref), node.at, "is not a symlink")
        return node.target.decode("utf-8", "surrogateescape")

    @reader("squashfs", "xattrs")
    def xattrs(self, node: SquashfsInode) -> dict[str, bytes]:
        """Extended attributes (only extended inodes carry them)."""
        if node.xattr == NONE32:
            return {}
        what = f"xattrs of {_name(node.ref)}"
        span, pos, inner, count = self._xattr_list(node, what)
        out: dict[str, bytes] = {}
        total = 0
        for _ in range(count):
            raw, pos, inner = self._meta(span, pos, inner, 4, what)
            kind, size = struct.unpack("<HH", raw)
            if kind & ~(XATTR_OOL | 0xFF) or kind & 0xFF not in XATTR_PREFIXES or size > MAX_NAME:
                raise FormatError(FMT, what, pos, f"bogus xattr entry (type {kind:#x}, name of {size} bytes)")
            name, pos, inner = self._meta(span, pos, inner, size, what)
            value, pos, inner = self._xattr_value(span, pos, inner, what)
            if kind & XATTR_OOL:
                if len(value) != 8:
                    raise FormatError(FMT, what, pos, "an out-of-line value's reference is not 8 bytes")
                far = int.from_bytes(value, "little")
                value = self._xattr_value(span, span[1] + (far >> 16), far & 0xFFFF, what)[0]
            total += size + len(value)
            limits.check("xattr-bytes", total, FMT, what, node.at)  # out-of-line values may all name one
            out[XATTR_PREFIXES[kind & 0xFF] + name.decode("utf-8", "surrogateescape")] = value
        return out

    def _xattr_list(self, node: SquashfsInode, what: str) -> tuple[Span, int, int, int]:
        """The xattr table, where an inode's entries start in it, and how many there are."""
        table = self.sb.xattr_id_table
        if table == ABSENT:
            raise FormatError(FMT, what, node.at, "refers to xattrs but the image has no xattr table")
        start, ids, _unused = _XATTR_ID.unpack(self._read(table, 16, "xattr id table"))
        if start >= table:
            raise FormatError(FMT, "xattr id table", table, f"the xattr table at byte {start} lies after it")
        ref, count, _size = _XATTR_ID.unpack(self._entry("xattr id table", table + 16, ids, node.xattr, 16))
        if count > XATTR_MAX:
            raise FormatError(FMT, what, node.at, f"{count} xattrs")
        return ("xattr table", start, table), start + (ref >> 16), ref & 0xFFFF, count

    def _xattr_value(self, span: Span, pos: int, inner: int, what: str) -> tuple[bytes, int, int]:
        raw, pos, inner = self._meta(span, pos, inner, 4, what)
        size = int.from_bytes(raw, "little")
        if size > XATTR_MAX:
            raise FormatError(FMT, what, pos, f"xattr value of {size} bytes")
        return self._meta(span, pos, inner, size, what)
