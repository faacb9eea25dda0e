"""squashfs 4.0: the superblock, enough to identify a root and say what it is.

    byte 0   magic "hsqs" | inodes | mtime | block size | fragments | compressor (1 gzip, 2 lzma,
             3 lzo, 4 xz, 5 lz4, 6 zstd) | block log | flags | ids | version 4.0 | root inode ref
             | bytes used | id, xattr, inode, directory, fragment and export table offsets (u64)
Reading the contents is not implemented: no kept library reads every compressor of it safely
(PySquashfsImage 0.9 mis-decodes lz4 and needs an extra module for lzo); cvmlint says so.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cvmlint.errors import FormatError, reader
from cvmlint.image.source import ByteSource, read_exact, unpack

FMT = "squashfs"
_SB = struct.Struct("<IIIIIHHHHHHQQQQQQQQ")
MAGIC = 0x73717368
COMPRESSORS = {1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}
ABSENT = 0xFFFFFFFFFFFFFFFF


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


@reader("squashfs", "superblock")
def read_superblock(src: ByteSource) -> SquashfsSuperblock:
    """Parse and check the superblock against the source's size."""
    raw = read_exact(src, 0, 96, FMT, "superblock")
    (magic, inodes, mtime, block_size, frags, comp, block_log, flags, _ids, major, minor, _root, used, *tables) = (
        unpack(_SB, raw, 0, FMT, "superblock")
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
    return SquashfsSuperblock(inodes, block_size, frags, COMPRESSORS[comp], flags, (major, minor), used, mtime)
