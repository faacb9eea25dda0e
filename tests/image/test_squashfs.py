"""The squashfs reader against images made by mksquashfs: superblocks, every file back byte for byte
with every compressor, every inode type, and hostile images (each a FormatError naming a structure)."""

from __future__ import annotations

import lzma
import os
import random
import socket
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import lz4.block
import pytest
import zstandard

from cvmlint.errors import FormatError
from cvmlint.image import squashfs
from cvmlint.image.source import BytesSource, FileSource
from cvmlint.image.squashfs import SquashfsFileSystem, SquashfsInode, read_superblock
from tests.image.treecmp import differences, image_tree, source_tree
from tests.tools import run

ROOT = os.geteuid() == 0
VARIANTS = {
    "gzip": ["-comp", "gzip"],
    "xz": ["-comp", "xz"],
    "xz-bcj": ["-comp", "xz", "-Xbcj", "x86"],
    "lzma": ["-comp", "lzma"],
    "lz4": ["-comp", "lz4"],
    "lz4-hc": ["-comp", "lz4", "-Xhc"],
    "zstd": ["-comp", "zstd"],
    "uncompressed": ["-noI", "-noD", "-noF", "-noX"],
    "no-fragments": ["-no-fragments"],
    "always-fragments": ["-always-use-fragments"],
}


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


# ---- whole trees -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every kind of file, as a basic and (with an xattr or a second link) an extended inode."""
    root = tmp_path_factory.mktemp("squashfs") / "tree"
    rnd = random.Random(5)
    deep = root.joinpath(*(f"level{k}" for k in range(30)))
    deep.mkdir(parents=True)
    (deep / "bottom").write_text("deep\n")
    (root / "many").mkdir()
    for k in range(400):  # a listing of ~20 KiB: it spans metadata blocks (an extended directory)
        (root / "many" / f"entry-{k:04d}-{'n' * 40}").write_text(str(k))
    (root / "empty").write_bytes(b"")
    (root / "small.txt").write_text("hello\n")
    (root / "blocks.bin").write_bytes(rnd.randbytes(3 * 4096 + 100))  # full blocks, then a fragment tail
    (root / "exact.bin").write_bytes(bytes(range(256)) * 32)  # two full blocks, no tail
    (root / "text.txt").write_text("".join(rnd.choice(["alpha ", "beta\n"]) for _ in range(20000)))
    (root / "sparse").write_bytes(b"\0" * 5 * 4096 + b"end")
    (root / "link").symlink_to("text.txt")
    (root / "longlink").symlink_to("/" + "/".join(["component"] * 300))
    (root / "dangling").symlink_to("/absolute/nowhere")
    os.link(root / "small.txt", root / "hardlink")
    os.mkfifo(root / "fifo")
    for name in ("socket", "xsocket"):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(root / name))
    (root / "ünïcødé").write_text("unicode\n")
    os.chmod(root / "blocks.bin", 0o4755)
    os.setxattr(root / "text.txt", "user.comment", b"a comment")
    os.setxattr(root / "many", "user.dir", b"yes")
    for name in ("a.txt", "b.txt"):  # the same long value twice: the second is stored out of line
        (root / name).write_text(name)
        os.setxattr(root / name, "user.shared", b"v" * 600)
    if ROOT:
        os.mknod(root / "null", 0o20666, os.makedev(1, 3))
        os.mknod(root / "xnull", 0o20600, os.makedev(1, 3))
        os.mknod(root / "disk", 0o60660, os.makedev(259, 70000))
        os.mknod(root / "xdisk", 0o60660, os.makedev(8, 1))
        os.mkfifo(root / "xfifo")
        (root / "xlink").symlink_to("small.txt")
        os.chown(root / "small.txt", 1000, 1001)
        os.chown(root / "many", 0, 4242)
        os.chown(root / "link", 77, 78, follow_symlinks=False)
        for name in ("xnull", "xdisk", "xfifo", "xsocket"):
            os.setxattr(root / name, "trusted.kind", name.encode())
        os.setxattr(root / "xlink", "trusted.link", b"1", follow_symlinks=False)
        os.setxattr(root / "blocks.bin", "security.capability", b"\x01\x00\x00\x02" + bytes(16))
    return root


def mksquashfs(tmp: Path, tree: Path, options: list[str], name: str = "fs.sqfs") -> Path:
    image = tmp / name
    run("mksquashfs", tree, image, "-quiet", "-no-progress", "-noappend", "-b", "4096", *options)
    return image


def random_access_mismatches(fs: SquashfsFileSystem, tree: Path) -> list[str]:
    bad = []
    for path, node in fs.walk():
        if not node.is_reg or node.size == 0:
            continue
        data = (tree / path.lstrip("/")).read_bytes()
        for offset, length in ((node.size - 28, 28), (node.size // 2, 5000), (0, 64), (node.size - 1, 1)):
            offset = max(0, offset)
            if fs.read_at(node, offset, length) != data[offset : offset + length]:
                bad.append(f"{path} [{offset}:+{length}]")
        if fs.head(node, 100) != data[:100]:
            bad.append(f"{path} head")
    return bad


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_tree_round_trips(tmp_path: Path, tree: Path, variant: str) -> None:
    fs = SquashfsFileSystem(FileSource(mksquashfs(tmp_path, tree, VARIANTS[variant])))
    assert differences(source_tree(tree), image_tree(fs)) == []
    assert random_access_mismatches(fs, tree) == []
    hardlink, link, unfollowed = fs.lookup("/hardlink"), fs.lookup("/link"), fs.lookup("/link", follow=False)
    assert hardlink is not None and hardlink.nlink == 2 and hardlink.ref == fs.lookup("/small.txt").ref
    assert link is not None and link.is_reg and unfollowed is not None and unfollowed.is_symlink
    assert fs.lookup("/dangling") is None and fs.lookup("/many/../small.txt") is not None
    deep = fs.lookup("/level0/level1/../level1/level2")
    assert deep is not None and deep.is_dir


def test_every_inode_type_and_layout(tmp_path: Path, tree: Path) -> None:
    fs = SquashfsFileSystem(FileSource(mksquashfs(tmp_path, tree, [])))
    nodes = dict(fs.walk())
    kinds = {node.kind for node in nodes.values()}
    basic = {squashfs.DIR, squashfs.REG, squashfs.SYMLINK, squashfs.FIFO, squashfs.SOCKET}
    if ROOT:
        basic |= {squashfs.BLKDEV, squashfs.CHRDEV}
        assert kinds == set(range(1, 15))
        assert fs.xattrs(nodes["/xlink"]) == {"trusted.link": b"1"} and nodes["/xlink"].extended
        assert nodes["/disk"].rdev == (259, 70000) and nodes["/xdisk"].rdev == (8, 1)
    assert basic | {k + squashfs.LONG for k in (squashfs.DIR, squashfs.REG, squashfs.SOCKET)} <= kinds
    many = nodes["/many"]
    assert many.extended and many.size - 3 > squashfs.METADATA_SIZE and len(fs.children(many)) == 400
    assert nodes["/blocks.bin"].blocks == 4 and nodes["/blocks.bin"].fragment == squashfs.NONE32  # mksquashfs 4.5
    assert nodes["/small.txt"].blocks == 0 and nodes["/small.txt"].fragment != squashfs.NONE32
    assert 0 in set(fs._block_words(nodes["/sparse"]))  # a sparse block
    assert len(fs.readlink(nodes["/longlink"])) == 3000
    assert fs.xattrs(nodes["/b.txt"]) == {"user.shared": b"v" * 600}
    tails = SquashfsFileSystem(FileSource(mksquashfs(tmp_path, tree, ["-always-use-fragments"], "af.sqfs")))
    blocks = tails.lookup("/blocks.bin")
    assert blocks.blocks == 3 and blocks.fragment != squashfs.NONE32
    assert any(node.frag_offset > 0 for _, node in tails.walk())  # tails packed together in one fragment
    exact = tails.lookup("/exact.bin")
    assert exact.blocks == 2 and exact.fragment == squashfs.NONE32
    no_fragments = SquashfsFileSystem(FileSource(mksquashfs(tmp_path, tree, ["-no-fragments"], "nf.sqfs")))
    assert all(node.fragment == squashfs.NONE32 for _, node in no_fragments.walk())


def test_special_tree_with_default_blocks(tmp_path: Path, special_tree: Path) -> None:
    image = tmp_path / "s.img"
    run("mksquashfs", special_tree, image, "-quiet", "-no-progress", "-comp", "zstd")
    fs = SquashfsFileSystem(FileSource(image))
    assert fs.sb.block_size == 128 * 1024
    assert differences(source_tree(special_tree), image_tree(fs)) == []
    assert random_access_mismatches(fs, special_tree) == []


def test_reads_that_make_no_sense_are_refused(tmp_path: Path, tree: Path) -> None:
    fs = SquashfsFileSystem(FileSource(mksquashfs(tmp_path, tree, [])))
    text, many = fs.lookup("/text.txt"), fs.lookup("/many")
    with pytest.raises(FormatError, match=r"squashfs: inode \d+:\d+ .*exceeds the 1000-byte limit"):
        fs.read(text, 1000)
    with pytest.raises(FormatError, match="is not a regular file"):
        fs.read(many)
    with pytest.raises(FormatError, match="is not a symlink"):
        fs.readlink(text)
    with pytest.raises(FormatError, match="is not a directory"):
        fs.children(text)
    assert fs.read(fs.lookup("/link", follow=False)) == b"text.txt"


def test_lzo_is_refused_clearly(tmp_path: Path, tree: Path) -> None:
    image = mksquashfs(tmp_path, tree, ["-comp", "lzo"])
    assert read_superblock(FileSource(image)).compressor == "lzo"
    with pytest.raises(FormatError, match=r"squashfs: superblock at byte 20: lzo-compressed squashfs is not read"):
        SquashfsFileSystem(FileSource(image))


@pytest.mark.parametrize("compressor", ["gzip", "xz", "lzma", "lz4", "zstd", "zstd-unsized"])
def test_decompression_is_capped(compressor: str) -> None:
    payload = bytes(65536)
    makers: dict[str, Callable[[], bytes]] = {
        "gzip": lambda: zlib.compress(payload),
        "xz": lambda: lzma.compress(payload, lzma.FORMAT_XZ),
        "lzma": lambda: lzma.compress(payload, lzma.FORMAT_ALONE),
        "lz4": lambda: lz4.block.compress(payload, store_size=False),
        "zstd": lambda: zstandard.ZstdCompressor().compress(payload),
        "zstd-unsized": lambda: zstandard.ZstdCompressor(write_content_size=False).compress(payload),
    }
    packed = makers[compressor]()
    name = compressor.split("-")[0]
    assert squashfs.decompress(name, packed, 65536, "block", 0) == payload
    with pytest.raises(FormatError, match=rf"squashfs: block at byte 7: {name} data (is corrupt|does not end)"):
        squashfs.decompress(name, packed, 8192, "block", 7)
    with pytest.raises(FormatError, match=rf"squashfs: block at byte 7: {name} data (is corrupt|does not end)"):
        squashfs.decompress(name, packed[: len(packed) // 2], 65536, "block", 7)


# ---- hostile input -----------------------------------------------------------------------------


def small_image(tmp_path: Path, options: list[str]) -> bytes:
    tree = tmp_path / "small"
    if not tree.exists():
        (tree / "d").mkdir(parents=True)
        (tree / "d/a.txt").write_text("alpha " * 3000)
        (tree / "b.bin").write_bytes(random.Random(3).randbytes(9000))
        (tree / "c.txt").write_text("tail only")
        (tree / "l").symlink_to("d/a.txt")
        os.setxattr(tree / "c.txt", "user.x", b"y")
    return mksquashfs(tmp_path, tree, options, "-".join(options) + ".sqfs").read_bytes()


def plain_image(tmp_path: Path) -> bytes:
    return small_image(tmp_path, ["-noI", "-noD", "-noF", "-noX"])


def read_everything(data: bytes) -> None:
    fs = SquashfsFileSystem(BytesSource(data, "fuzzed.sqfs"))
    for path, node in fs.walk():
        if node.is_reg:
            fs.read(node)
        elif node.is_symlink:
            fs.readlink(node)
            fs.lookup(path)
        fs.xattrs(node)


def patched(data: bytes, edit: Callable[[bytearray, SquashfsFileSystem], None]) -> bytes:
    out = bytearray(data)
    edit(out, SquashfsFileSystem(BytesSource(data)))
    return bytes(out)


def inode_byte(fs: SquashfsFileSystem, path: str) -> int:
    """Where an inode of an uncompressed image starts (its metadata block's header is 2 bytes)."""
    node: SquashfsInode = fs.lookup(path, follow=False)
    return node.at + 2 + (node.ref & 0xFFFF)


def listing_byte(fs: SquashfsFileSystem, path: str) -> int:
    node: SquashfsInode = fs.lookup(path, follow=False)
    return fs.sb.directory_table + node.start + 2 + node.dir_offset


def test_small_images_read_back(tmp_path: Path) -> None:
    read_everything(plain_image(tmp_path))
    read_everything(small_image(tmp_path, []))


def test_truncated_image(tmp_path: Path) -> None:
    data = small_image(tmp_path, [])
    with pytest.raises(FormatError, match=r"squashfs: superblock at byte 40: .* truncated"):
        read_everything(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"squashfs: superblock at byte 0: needs 96 bytes"):
        read_everything(data[:50])
    used = read_superblock(BytesSource(data)).bytes_used
    cut = bytearray(data[: used - 40])
    struct.pack_into("<Q", cut, 40, used - 40)
    with pytest.raises(FormatError, match=r"squashfs: superblock at byte 48: .* table offset .* past"):
        read_everything(bytes(cut))


@pytest.mark.parametrize(
    ("what", "edit", "message"),
    [
        (
            "inode type",
            lambda d, fs: struct.pack_into("<H", d, inode_byte(fs, "/b.bin"), 99),
            r"inode \d+:\d+ at byte \d+: unknown inode type 99",
        ),
        (
            "id index",
            lambda d, fs: struct.pack_into("<H", d, inode_byte(fs, "/b.bin") + 4, 500),
            r"id table at byte \d+: no entry 500 \(it has 1\)",
        ),
        (
            "symlink length",
            lambda d, fs: struct.pack_into("<I", d, inode_byte(fs, "/l") + 20, 70000),
            r"inode \d+:\d+ at byte \d+: symlink target of 70000 bytes",
        ),
        (
            "file size",
            lambda d, fs: struct.pack_into("<I", d, inode_byte(fs, "/b.bin") + 28, 900_000),
            r"(data of inode|block list of inode) \d+:\d+ at byte \d+",
        ),
        (
            "directory header",
            lambda d, fs: struct.pack_into("<I", d, listing_byte(fs, "/"), 300),
            r"directory inode \d+:\d+ at byte \d+: header at listing byte 0 counts 301 entries",
        ),
        (
            "directory name",
            lambda d, fs: struct.pack_into("<H", d, listing_byte(fs, "/") + 12 + 6, 4000),
            r"directory inode \d+:\d+ at byte \d+: entry at listing byte 12: invalid name",
        ),
        (
            "directory reference",
            lambda d, fs: struct.pack_into("<I", d, listing_byte(fs, "/") + 4, 1 << 30),
            r"inode \d+:\d+ at byte \d+: metadata block lies outside the inode table",
        ),
        (
            "fragment index",
            lambda d, fs: struct.pack_into("<I", d, inode_byte(fs, "/c.txt") + 44, 77),
            r"fragment table at byte \d+: no entry 77",
        ),
        (
            "fragment table",
            lambda d, fs: struct.pack_into("<Q", d, fs.sb.fragment_table, 10),
            r"fragment table entry 0 at byte 10: metadata block lies outside the fragment table",
        ),
        (
            "fragment entry",
            lambda d, fs: struct.pack_into(
                "<I", d, int.from_bytes(d[fs.sb.fragment_table : fs.sb.fragment_table + 8], "little") + 2 + 8, 1 << 20
            ),
            r"fragment 0 at byte \d+: 1048576 bytes \(size word 0x100000\) do not fit the image",
        ),
        (
            "xattr id",
            lambda d, fs: struct.pack_into("<I", d, inode_byte(fs, "/c.txt") + 52, 9),
            r"xattr id table at byte \d+: no entry 9",
        ),
    ],
)
def test_corrupt_structures_are_named(tmp_path: Path, what: str, edit: Callable[..., None], message: str) -> None:
    data = patched(plain_image(tmp_path), edit)
    with pytest.raises(FormatError, match=message):
        read_everything(data)


def test_directory_loop_is_detected(tmp_path: Path) -> None:
    def loop(data: bytearray, fs: SquashfsFileSystem) -> None:
        at, root = listing_byte(fs, "/d"), fs.sb.root_inode  # /d holds one entry: a.txt
        struct.pack_into("<I", data, at + 4, root >> 16)
        struct.pack_into("<H", data, at + 12, root & 0xFFFF)

    with pytest.raises(FormatError, match="contains itself or an ancestor"):
        read_everything(patched(plain_image(tmp_path), loop))


def test_corrupt_compressed_metadata(tmp_path: Path) -> None:
    data = bytearray(small_image(tmp_path, []))
    sb = read_superblock(BytesSource(bytes(data)))
    for k in range(10):
        data[sb.inode_table + 3 + k] ^= 0x55
    with pytest.raises(FormatError, match=r"squashfs: inode table block at byte \d+: gzip data is corrupt"):
        read_everything(bytes(data))


@pytest.mark.parametrize("options", [[], ["-noI", "-noD", "-noF", "-noX"]], ids=["gzip", "uncompressed"])
def test_bit_flips_give_format_errors_only(tmp_path: Path, options: list[str]) -> None:
    base = small_image(tmp_path, options)
    start = min(read_superblock(BytesSource(base)).inode_table, len(base) - 256)
    rnd = random.Random(13)
    errors = 0
    for _ in range(300):
        data = bytearray(base)
        for _ in range(rnd.randint(1, 4)):
            pos = rnd.randrange(start, len(base)) if rnd.random() < 0.9 else rnd.randrange(96)
            data[pos] ^= 1 << rnd.randrange(8)
        try:
            read_everything(bytes(data))
        except FormatError:
            errors += 1
    assert errors > 0


def test_inode_is_a_node_like_the_others(tmp_path: Path) -> None:
    fs = SquashfsFileSystem(BytesSource(small_image(tmp_path, [])))
    node = fs.lookup("/b.bin")
    assert isinstance(node, SquashfsInode) and node.is_reg and not node.is_dir and not node.is_symlink
    assert (node.size, node.nlink, node.offset) == (9000, 1, node.ref) and fs.inode(node.ref) == node
    assert node.mtime > 0 and node.mode & 0o777 == 0o644
