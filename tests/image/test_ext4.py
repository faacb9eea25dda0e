"""The ext2/3/4 reader against mkfs.ext4 -d images: every file back byte for byte."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from cvmlint.errors import FormatError
from cvmlint.image.ext4 import FLAG_INDEX, FLAG_INLINE_DATA, Ext4FileSystem
from cvmlint.image.source import BytesSource, FileSource
from tests.image.treecmp import differences, source_tree
from tests.image.treecmp import image_tree as reader_tree
from tests.tools import run

VARIANTS = {
    "ext4": ["-t", "ext4"],
    "ext4-64bit-metadata_csum": ["-t", "ext4", "-O", "64bit,metadata_csum"],
    "ext4-inline_data": ["-t", "ext4", "-O", "inline_data"],
    "ext4-1k-blocks": ["-t", "ext4", "-b", "1024"],
    "ext4-block-maps": ["-t", "ext4", "-O", "^extents,^64bit"],
    "ext4-meta_bg": ["-t", "ext4", "-O", "meta_bg,^resize_inode"],
    "ext3": ["-t", "ext3"],
    "ext2": ["-t", "ext2"],
}


def mkfs(tmp: Path, tree: Path, options: list[str], size: str = "64M") -> Path:
    image = tmp / "fs.img"
    run("mkfs.ext4", "-q", *options, "-d", tree, image, size)
    return image


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_special_tree_round_trips(tmp_path: Path, special_tree: Path, variant: str) -> None:
    fs = Ext4FileSystem(FileSource(mkfs(tmp_path, special_tree, VARIANTS[variant])))
    assert differences(source_tree(special_tree), image_tree(fs)) == []
    if "metadata_csum" in variant:
        assert fs.sb.checksum_ok is True
    if "inline" in variant:
        assert any(ino.flags & FLAG_INLINE_DATA for _, ino in fs.walk())


def test_htree_directories_after_e2fsck_D(tmp_path: Path, special_tree: Path) -> None:
    image = mkfs(tmp_path, special_tree, VARIANTS["ext4"])
    run("e2fsck", "-fyD", image, ok=(0, 1))
    fs = Ext4FileSystem(FileSource(image))
    d = fs.lookup("/dir")
    assert d is not None and d.flags & FLAG_INDEX
    assert differences(source_tree(special_tree), image_tree(fs)) == []


@pytest.mark.slow
def test_minbase_round_trips(tmp_path: Path, minbase: Path) -> None:
    fs = Ext4FileSystem(FileSource(mkfs(tmp_path, minbase, ["-t", "ext4"], "600M")))
    assert differences(source_tree(minbase), image_tree(fs)) == []
    os_release = fs.lookup("/etc/os-release")  # a symlink to ../usr/lib/os-release, followed inside the image
    assert os_release is not None and b"bookworm" in fs.read(os_release)


def test_hostile_ext4(tmp_path: Path, special_tree: Path) -> None:
    data = mkfs(tmp_path, special_tree, VARIANTS["ext4"]).read_bytes()
    with pytest.raises(FormatError, match=r"ext4: superblock at byte 1028: .* truncated image"):
        Ext4FileSystem(BytesSource(data[: 8 << 20]))
    bad = bytearray(data)
    bad[1080:1082] = b"\0\0"
    with pytest.raises(FormatError, match="bad magic 0x0000"):
        Ext4FileSystem(BytesSource(bytes(bad)))
    fs = Ext4FileSystem(BytesSource(data))
    ino = fs.lookup("/dir/random.bin")
    assert ino is not None
    broken = bytearray(data)
    struct.pack_into("<I", broken, ino.offset + 40 + 12 + 8, 0x7FFFFFF0)  # first extent's start block
    broken_fs = Ext4FileSystem(BytesSource(bytes(broken)))
    with pytest.raises(FormatError, match="lie past the end of the file system"):
        broken_fs.read(broken_fs.inode(ino.number))
    sub = fs.lookup("/dir/sub")
    assert sub is not None
    looped = bytearray(data)
    # make /dir/sub's entry "text.txt" point at inode 2 (the root): a directory loop
    start = struct.unpack_from("<I", looped, sub.offset + 40 + 12 + 8)[0] * fs.bs
    block = bytes(looped[start : start + fs.bs])
    pos = block.index(b"text.txt") - 8
    struct.pack_into("<I", looped, start + pos, 2)
    with pytest.raises(FormatError, match="directory loop"):
        list(Ext4FileSystem(BytesSource(bytes(looped))).walk())


def image_tree(fs: Ext4FileSystem) -> dict[str, tuple[object, ...]]:
    """The reader's tree without /lost+found and the inline-data marker xattr."""
    return reader_tree(fs, skip=("/", "/lost+found"), skip_xattrs=("system.data",))
