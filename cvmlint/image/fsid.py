"""What a partition holds, and how cvmlint reads it: one registry of formats, consulted everywhere.

Each format says how to recognise it from its first bytes, whether cvmlint reads its files (and
with which reader, imported when first needed), how `root=UUID=`/`LABEL=` name it, and how two
builds' copies of it are compared. Adding a file system is one reader module and one entry in
FORMATS. Recognition, in FORMATS order:

offset   magic                      content
0        "LUKS\\xba\\xbe"             LUKS1/2 (version at 6)
0        "verity\\0\\0"               dm-verity hash partition
0        "hsqs"                     squashfs (little-endian)
0        "XFSB"                     xfs
3        "NTFS    "                 ntfs
54 / 82  "FAT" + 0x55AA at 510      vfat (FAT12/16 label at 54, FAT32 at 82)
1024     e2 e1 f5 e0                erofs
1080     53 ef                      ext2/3/4 (features at 1116..1127 tell which)
4086     "SWAPSPACE2"               swap (4 KiB pages)
0x10040  "_BHRfS_M"                 btrfs
0x8001   "CD001"                    iso9660
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from cvmlint.image.source import ByteSource

if TYPE_CHECKING:
    from cvmlint.image.tree import Tree


class Content(StrEnum):
    """What a partition holds (its value is the name findings and JSON use)."""

    EROFS = "erofs"
    SQUASHFS = "squashfs"
    EXT4 = "ext4"
    EXT3 = "ext3"
    EXT2 = "ext2"
    XFS = "xfs"
    BTRFS = "btrfs"
    VFAT = "vfat"
    LUKS1 = "luks1"
    LUKS2 = "luks2"
    VERITY = "verity"
    SWAP = "swap"
    NTFS = "ntfs"
    ISO9660 = "iso9660"
    EMPTY = "empty"
    """All zeros at the start."""
    UNKNOWN = "unknown"
    """No magic cvmlint knows."""
    UNREADABLE = "unreadable"
    """The partition itself could not be opened (it runs past the disk's end, …)."""

    @property
    def is_luks(self) -> bool:
        return self in (Content.LUKS1, Content.LUKS2)

    @property
    def is_ext(self) -> bool:
        return self in (Content.EXT4, Content.EXT3, Content.EXT2)

    @property
    def read_only(self) -> bool:
        """A file system that cannot be written by nature."""
        return self in (Content.EROFS, Content.SQUASHFS)


EXT_COMPAT_JOURNAL = 0x4
EXT_INCOMPAT_EXTENTS = 0x40
EXT_INCOMPAT_64BIT = 0x80
EXT_INCOMPAT_FLEX_BG = 0x200

Identity = tuple[str, str]
"""(UUID, label) as `root=UUID=`/`LABEL=` and fstab name a file system; empty when it has none."""


@dataclass(frozen=True)
class Format:
    """One kind of partition content."""

    contents: tuple[Content, ...]
    """What `identify` calls it (ext has three flavours)."""
    recognise: Callable[[bytes, ByteSource], Content | None]
    """From the first 4 KiB (and the source, for a magic further in): the content, or None."""
    reader: tuple[str, str] | None = None
    """(module, class) of the reader of its files, or None when cvmlint does not read them."""
    identity: Callable[[ByteSource], Identity] | None = None
    """Its UUID and label (FormatError when its header cannot be read)."""
    comparison: str = "bytes"
    """How two builds' copies are narrowed: `files`, `fat`, `verity` or `bytes` (first differing byte)."""

    def open_tree(self, src: ByteSource) -> Tree | None:
        """The file tree (FormatError when it cannot be read), or None when cvmlint does not read its files."""
        if self.reader is None:
            return None
        import importlib

        module, name = self.reader
        tree: Tree = getattr(importlib.import_module(module), name)(src)
        return tree


def _at(src: ByteSource, offset: int, length: int) -> bytes:
    return src.pread(offset, length) if offset + length <= src.size else b""


def _magic(content: Content, offset: int, magic: bytes) -> Callable[[bytes, ByteSource], Content | None]:
    def recognise(head: bytes, src: ByteSource) -> Content | None:
        found = head[offset : offset + len(magic)] if offset + len(magic) <= len(head) else _at(src, offset, len(magic))
        return content if found == magic else None

    return recognise


def _luks(head: bytes, src: ByteSource) -> Content | None:
    if head[:6] != b"LUKS\xba\xbe":
        return None
    return Content.LUKS2 if head[6:8] == b"\x00\x02" else Content.LUKS1


def _ext(head: bytes, src: ByteSource) -> Content | None:
    if head[1080:1082] != b"\x53\xef":
        return None
    compat = int.from_bytes(head[1116:1120], "little")
    incompat = int.from_bytes(head[1120:1124], "little")
    if incompat & (EXT_INCOMPAT_EXTENTS | EXT_INCOMPAT_64BIT | EXT_INCOMPAT_FLEX_BG):
        return Content.EXT4
    return Content.EXT3 if compat & EXT_COMPAT_JOURNAL else Content.EXT2


def _vfat(head: bytes, src: ByteSource) -> Content | None:
    fat = head[510:512] == b"\x55\xaa" and (head[54:57] == b"FAT" or head[82:87] == b"FAT32")
    return Content.VFAT if fat else None


def _swap(head: bytes, src: ByteSource) -> Content | None:
    return Content.SWAP if head[4086:4096] in (b"SWAPSPACE2", b"SWAP-SPACE") else None


def _luks_identity(src: ByteSource) -> Identity:
    from cvmlint.image.luks import read_header

    header = read_header(src)
    return header.uuid, header.label


def _verity_identity(src: ByteSource) -> Identity:
    from cvmlint.image.verity import read_superblock

    return read_superblock(src).uuid, ""


def _erofs_identity(src: ByteSource) -> Identity:
    from cvmlint.image.erofs import ErofsFileSystem

    sb = ErofsFileSystem(src).sb
    return sb.uuid, sb.volume_name


def _ext_identity(src: ByteSource) -> Identity:
    from cvmlint.image.ext4 import Ext4FileSystem

    sb = Ext4FileSystem(src).sb
    return sb.uuid, sb.label


def _vfat_identity(src: ByteSource) -> Identity:
    boot = _at(src, 0, 512)
    fat32 = boot[22:24] == b"\0\0"
    serial = boot[67:71] if fat32 else boot[39:43]
    label = (boot[71:82] if fat32 else boot[43:54]).decode("ascii", "replace").strip()
    return f"{int.from_bytes(serial[2:4], 'little'):04X}-{int.from_bytes(serial[0:2], 'little'):04X}", label


def _squashfs_identity(src: ByteSource) -> Identity:
    from cvmlint.image.squashfs import read_superblock

    read_superblock(src)  # squashfs has no UUID or label; a superblock that cannot be read is an error
    return "", ""


EXT = (Content.EXT4, Content.EXT3, Content.EXT2)
FORMATS: tuple[Format, ...] = (
    Format((Content.LUKS1, Content.LUKS2), _luks, identity=_luks_identity),
    Format((Content.VERITY,), _magic(Content.VERITY, 0, b"verity\0\0"), identity=_verity_identity, comparison="verity"),
    Format(
        (Content.SQUASHFS,),
        _magic(Content.SQUASHFS, 0, b"hsqs"),
        reader=("cvmlint.image.squashfs", "SquashfsFileSystem"),
        identity=_squashfs_identity,
        comparison="files",
    ),
    Format((Content.XFS,), _magic(Content.XFS, 0, b"XFSB")),
    Format((Content.NTFS,), _magic(Content.NTFS, 3, b"NTFS    ")),
    Format(
        (Content.EROFS,),
        _magic(Content.EROFS, 1024, b"\xe2\xe1\xf5\xe0"),
        reader=("cvmlint.image.erofs", "ErofsFileSystem"),
        identity=_erofs_identity,
        comparison="files",
    ),
    Format(EXT, _ext, reader=("cvmlint.image.ext4", "Ext4FileSystem"), identity=_ext_identity, comparison="files"),
    Format((Content.VFAT,), _vfat, identity=_vfat_identity, comparison="fat"),
    Format((Content.SWAP,), _swap),
    Format((Content.BTRFS,), _magic(Content.BTRFS, 0x10040, b"_BHRfS_M")),
    Format((Content.ISO9660,), _magic(Content.ISO9660, 0x8001, b"CD001")),
)
"""Every format cvmlint recognises, in the order their magic numbers are tried."""

_BY_CONTENT = {content: fmt for fmt in FORMATS for content in fmt.contents}
NOTHING = Format((Content.EMPTY, Content.UNKNOWN, Content.UNREADABLE), lambda head, src: None)
"""What is not a format: nothing is read from it, it is compared byte by byte."""


def format_of(content: Content) -> Format:
    """The registry entry of a content (NOTHING for empty, unknown or unreadable)."""
    return _BY_CONTENT.get(content, NOTHING)


def identify(src: ByteSource) -> Content:
    """What the partition's first bytes say it holds (never UNREADABLE: that is for the caller)."""
    head = _at(src, 0, 4096)
    for fmt in FORMATS:
        found = fmt.recognise(head, src)
        if found is not None:
            return found
    if head and not any(head):
        return Content.EMPTY
    return Content.UNKNOWN


def readable_names() -> str:
    """The formats whose files cvmlint reads, for messages (`erofs, ext4, ext3, ext2`)."""
    return ", ".join(c.value for fmt in FORMATS if fmt.reader for c in fmt.contents)
