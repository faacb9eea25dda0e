"""What a partition holds, by magic number: enough to name a root file system cvmlint cannot read.

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

from enum import StrEnum

from cvmlint.image.source import ByteSource


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


def _at(src: ByteSource, offset: int, length: int) -> bytes:
    return src.pread(offset, length) if offset + length <= src.size else b""


def identify(src: ByteSource) -> Content:
    """What the partition's first bytes say it holds (never UNREADABLE: that is for the caller)."""
    head = _at(src, 0, 4096)
    if head[:6] == b"LUKS\xba\xbe":
        return Content.LUKS2 if head[6:8] == b"\x00\x02" else Content.LUKS1
    if head[:8] == b"verity\0\0":
        return Content.VERITY
    if head[:4] == b"hsqs":
        return Content.SQUASHFS
    if head[:4] == b"XFSB":
        return Content.XFS
    if head[3:11] == b"NTFS    ":
        return Content.NTFS
    if head[1024:1028] == b"\xe2\xe1\xf5\xe0":
        return Content.EROFS
    if head[1080:1082] == b"\x53\xef":
        return _ext_flavour(head)
    if head[510:512] == b"\x55\xaa" and (head[54:57] == b"FAT" or head[82:87] == b"FAT32"):
        return Content.VFAT
    if head[4086:4096] in (b"SWAPSPACE2", b"SWAP-SPACE"):
        return Content.SWAP
    if _at(src, 0x10040, 8) == b"_BHRfS_M":
        return Content.BTRFS
    if _at(src, 0x8001, 5) == b"CD001":
        return Content.ISO9660
    if head and not any(head):
        return Content.EMPTY
    return Content.UNKNOWN


def _ext_flavour(head: bytes) -> Content:
    compat = int.from_bytes(head[1116:1120], "little")
    incompat = int.from_bytes(head[1120:1124], "little")
    if incompat & (EXT_INCOMPAT_EXTENTS | EXT_INCOMPAT_64BIT | EXT_INCOMPAT_FLEX_BG):
        return Content.EXT4
    return Content.EXT3 if compat & EXT_COMPAT_JOURNAL else Content.EXT2
