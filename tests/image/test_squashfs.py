"""squashfs superblocks made by mksquashfs with every compressor."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvmlint.errors import FormatError
from cvmlint.image.source import BytesSource, FileSource
from cvmlint.image.squashfs import read_superblock
from tests.tools import run


@pytest.mark.parametrize("compressor", ["gzip", "xz", "lz4", "zstd", "lzo", "lzma"])
def test_superblock(tmp_path: Path, special_tree: Path, compressor: str) -> None:
    image = tmp_path / "s.img"
    run("mksquashfs", special_tree, image, "-comp", compressor, "-quiet", "-no-progress", "-b", "65536")
    sb = read_superblock(FileSource(image))
    assert (sb.compressor, sb.block_size, sb.version) == (compressor, 65536, (4, 0))
    listed = run("unsquashfs", "-s", image)
    assert f"Number of inodes {sb.inodes}" in listed


def test_truncated(tmp_path: Path, special_tree: Path) -> None:
    image = tmp_path / "s.img"
    run("mksquashfs", special_tree, image, "-quiet", "-no-progress")
    with pytest.raises(FormatError, match=r"squashfs: superblock at byte 40: .* truncated"):
        read_superblock(BytesSource(image.read_bytes()[:4096]))
