"""The erofs reader against images made by mkfs.erofs: every file back byte for byte, every layout."""

from __future__ import annotations

import os
import random
import shutil
import stat
import struct
from pathlib import Path

import pytest

from cvmlint.errors import FormatError
from cvmlint.image import erofs
from cvmlint.image.erofs import ErofsFileSystem
from cvmlint.image.source import BytesSource, FileSource
from tests.image.treecmp import Record, differences, image_tree, source_tree
from tests.tools import require, run

# mkfs.erofs options of the installed erofs-utils (1.5 on bookworm: lz4/lz4hc, no -b, no fragments)
VARIANTS = {
    "default": [],
    "lz4": ["-zlz4"],
    "lz4hc": ["-zlz4hc"],
    "compact": ["-Eforce-inode-compact"],
    "extended": ["-Eforce-inode-extended"],
    "full-index": ["-zlz4", "-Elegacy-compress"],
    "ztailpacking": ["-zlz4hc", "-Eztailpacking"],
    "full-index-ztailpacking": ["-zlz4hc", "-Elegacy-compress", "-Eztailpacking"],
    "big-pcluster": ["-zlz4hc", "-C65536"],
    "big-pcluster-ztailpacking": ["-zlz4hc", "-C16384", "-Eztailpacking"],
    "chunked": ["--chunksize=8192"],
    "no-inline": ["-Enoinline_data"],
}
MINBASE_VARIANTS = ["default", "lz4", "full-index", "lz4-ztailpacking", "lz4-big-pcluster"]
MINBASE_OPTIONS = {"lz4-ztailpacking": ["-zlz4", "-Eztailpacking"], "lz4-big-pcluster": ["-zlz4", "-C65536"]}


def mkfs(tmp: Path, tree: Path, options: list[str], name: str = "fs.erofs") -> Path:
    require("mkfs.erofs")
    image = tmp / name
    run("mkfs.erofs", "--quiet", *options, image, tree)
    return image


def random_access_mismatches(fs: ErofsFileSystem, tree: Path) -> list[str]:
    """read_at (which finds one extent without walking the map) against the source files' bytes."""
    bad = []
    for path, ino in fs.walk():
        if not ino.is_reg or ino.size == 0:
            continue
        data = (tree / path.lstrip("/")).read_bytes()
        for offset, length in ((ino.size - 28, 28), (ino.size // 2, 100), (0, 64), (ino.size - 1, 1)):
            offset = max(0, offset)
            if fs.read_at(ino, offset, length) != data[offset : offset + length]:
                bad.append(f"{path} [{offset}:+{length}]")
    return bad


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_special_tree_round_trips(tmp_path: Path, special_tree: Path, variant: str) -> None:
    image = mkfs(tmp_path, special_tree, VARIANTS[variant])
    fs = ErofsFileSystem(FileSource(image))
    assert differences(source_tree(special_tree), image_tree(fs)) == []
    assert random_access_mismatches(ErofsFileSystem(FileSource(image)), special_tree) == []
    hardlink, link, unfollowed = fs.lookup("/hardlink"), fs.lookup("/link"), fs.lookup("/link", follow=False)
    assert hardlink is not None and hardlink.nlink == 2
    assert link is not None and link.is_reg and unfollowed is not None and unfollowed.is_symlink


def test_layouts_and_features_are_the_ones_asked_for(tmp_path: Path, special_tree: Path) -> None:
    def layouts(options: list[str]) -> set[int]:
        fs = ErofsFileSystem(FileSource(mkfs(tmp_path, special_tree, options, "-".join(options) + ".img")))
        return {ino.layout for _, ino in fs.walk() if ino.is_reg and ino.size}

    assert layouts(VARIANTS["default"]) == {erofs.FLAT_PLAIN, erofs.FLAT_INLINE}
    assert erofs.COMPRESSED_COMPACT in layouts(VARIANTS["lz4"])
    assert erofs.COMPRESSED_FULL in layouts(VARIANTS["full-index"])
    assert erofs.CHUNK_BASED in layouts(VARIANTS["chunked"])
    assert layouts(VARIANTS["no-inline"]) == {erofs.FLAT_PLAIN}
    tail = ErofsFileSystem(FileSource(mkfs(tmp_path, special_tree, VARIANTS["ztailpacking"], "t.img")))
    assert tail.sb.feature_incompat & erofs.INCOMPAT_ZTAILPACKING
    ext = ErofsFileSystem(FileSource(mkfs(tmp_path, special_tree, VARIANTS["extended"], "e.img")))
    assert all(ino.extended for _, ino in ext.walk())


@pytest.mark.slow
@pytest.mark.parametrize("variant", MINBASE_VARIANTS)
def test_minbase_reads_back_identical_to_source_and_to_fsck_extract(
    tmp_path: Path, minbase: Path, variant: str
) -> None:
    options = VARIANTS[variant] if variant in VARIANTS else MINBASE_OPTIONS[variant]
    image = mkfs(tmp_path, minbase, options)
    fs = ErofsFileSystem(FileSource(image))
    assert fs.sb.checksum_ok is True
    got = image_tree(fs)
    assert differences(source_tree(minbase), got) == []
    require("fsck.erofs")
    extracted = tmp_path / "extracted"
    run("fsck.erofs", f"--extract={extracted}", image)
    fsck = source_tree(extracted, xattrs=False)

    def comparable(tree: dict[str, Record]) -> dict[str, Record]:
        # fsck.erofs 1.5 chowns after chmod, which clears set-id bits, and restores symlinks as root
        return {p: (r[0], r[1] & 0o777, r[2], r[3], r[4]) for p, r in tree.items() if r[0] != stat.S_IFLNK}

    assert differences(comparable(fsck), comparable(got)) == []
    shutil.rmtree(extracted)


def test_lookup_follows_symlinks_inside_the_image(tmp_path: Path, special_tree: Path) -> None:
    fs = ErofsFileSystem(FileSource(mkfs(tmp_path, special_tree, ["-zlz4"])))
    target = fs.lookup("/link")
    assert target is not None
    assert (target.is_reg and fs.read(target).startswith(b"alpha")) or fs.read(target).split()[0] in (
        b"alpha",
        b"beta",
        b"gamma",
        b"delta",
    )
    assert fs.lookup("/dangling") is None
    dangling = fs.lookup("/dangling", follow=False)
    assert dangling is not None and dangling.is_symlink
    assert fs.lookup("/dir/../small.txt") is not None


# ---- hostile input ---------------------------------------------------------------------------


def small_image(tmp_path: Path, options: list[str] | None = None) -> bytes:
    tree = tmp_path / "t"
    (tree / "d").mkdir(parents=True)
    (tree / "d/a.txt").write_text("alpha " * 3000)
    (tree / "b.bin").write_bytes(random.Random(3).randbytes(20000))
    (tree / "l").symlink_to("d/a.txt")
    return mkfs(tmp_path, tree, options or ["-zlz4"]).read_bytes()


def read_everything(data: bytes) -> None:
    fs = ErofsFileSystem(BytesSource(data, "fuzzed.erofs"))
    for _path, ino in fs.walk():
        if ino.is_reg:
            fs.read(ino)
        elif ino.is_symlink:
            fs.readlink(ino)
        fs.xattrs(ino)


def test_truncated_image(tmp_path: Path) -> None:
    data = small_image(tmp_path)
    with pytest.raises(FormatError, match=r"erofs: superblock at byte 1060: .* exceed .* truncated image"):
        read_everything(data[:8192])
    with pytest.raises(FormatError, match=r"erofs: superblock at byte 1024: needs 128 bytes"):
        read_everything(data[:1100])


def test_zeroed_and_corrupt_superblock(tmp_path: Path) -> None:
    data = bytearray(small_image(tmp_path))
    flipped = bytearray(data)
    flipped[1024 + 40] ^= 0x01  # meta_blkaddr, under the checksum
    with pytest.raises(FormatError, match=r"erofs: superblock at byte 1028: checksum mismatch"):
        read_everything(bytes(flipped))
    data[1024 : 1024 + 128] = bytes(128)
    with pytest.raises(FormatError, match=r"erofs: superblock at byte 1024: bad magic 0x00000000"):
        read_everything(bytes(data))


def test_unknown_incompat_feature_is_refused(tmp_path: Path) -> None:
    data = bytearray(small_image(tmp_path))
    incompat = struct.unpack_from("<I", data, 1024 + 80)[0] | erofs.INCOMPAT_METABOX
    struct.pack_into("<I", data, 1024 + 80, incompat)
    struct.pack_into("<I", data, 1024 + 8, 0)  # drop the checksum flag so the feature check is reached
    with pytest.raises(FormatError, match=r"unsupported incompatible feature.*metabox"):
        read_everything(bytes(data))


def test_directory_loop_is_detected(tmp_path: Path) -> None:
    data = bytearray(small_image(tmp_path, []))
    fs = ErofsFileSystem(BytesSource(bytes(data)))
    root = fs.root()
    sub = fs.lookup("/d", follow=False)
    assert sub is not None
    # point the entry "a.txt" inside /d at the root directory: /d/a.txt becomes the root again
    dirdata_offset = sub.raw_u * fs.bs if sub.layout == erofs.FLAT_PLAIN else sub.body
    entries = fs.readdir(sub)
    k = [e.name for e in entries].index("a.txt")
    struct.pack_into("<Q", data, dirdata_offset + 12 * k, root.nid)
    with pytest.raises(FormatError, match="contains itself or an ancestor"):
        read_everything(bytes(data))


def test_size_that_lies_is_caught(tmp_path: Path) -> None:
    data = bytearray(small_image(tmp_path, []))
    fs = ErofsFileSystem(BytesSource(bytes(data)))
    ino = fs.lookup("/b.bin")
    assert ino is not None
    struct.pack_into("<Q" if ino.extended else "<I", data, ino.offset + 8, 15 << 20)
    with pytest.raises(FormatError, match=r"data of inode \d+ at byte \d+: needs \d+ bytes"):
        read_everything(bytes(data))


def test_compressed_size_that_lies_is_caught(tmp_path: Path) -> None:
    data = bytearray(small_image(tmp_path, ["-zlz4"]))
    fs = ErofsFileSystem(BytesSource(bytes(data)))
    ino = fs.lookup("/d/a.txt")
    assert ino is not None and ino.layout in (erofs.COMPRESSED_COMPACT, erofs.COMPRESSED_FULL)
    struct.pack_into("<Q" if ino.extended else "<I", data, ino.offset + 8, ino.size + 70000)
    with pytest.raises(FormatError):
        read_everything(bytes(data))


def test_bit_flips_in_metadata_give_format_errors_only(tmp_path: Path) -> None:
    """Random corruption of the metadata: every outcome is a clean read or one FormatError."""
    base = small_image(tmp_path)
    meta_end = min(len(base), 3 * 4096)
    rnd = random.Random(11)
    errors = 0
    for _ in range(400):
        data = bytearray(base)
        for _ in range(rnd.randint(1, 4)):
            pos = rnd.randrange(1024 + 128, meta_end)
            data[pos] ^= 1 << rnd.randrange(8)
        try:
            read_everything(bytes(data))
        except FormatError:
            errors += 1
    assert errors > 0


# erofs-utils 1.8 (Debian trixie): other block sizes, algorithms, fragments, dedupe, long xattr prefixes
TRIXIE_VARIANTS = {
    "512-byte-blocks": ["-b512"],
    "512-byte-blocks-lz4hc-ztailpacking": ["-b512", "-zlz4hc", "-Eztailpacking"],
    "1k-blocks-lzma-fragments": ["-b1024", "-zlzma", "-Efragments"],
    "lzma": ["-zlzma"],
    "deflate": ["-zdeflate"],
    "zstd": ["-zzstd"],
    "zstd-big-pcluster": ["-zzstd", "-C65536"],
    "fragments": ["-zlz4", "-Efragments"],
    "all-fragments": ["-zlz4hc", "-Eall-fragments"],
    "dedupe": ["-zlz4", "-Ededupe"],
    "ztailpacking-fragments": ["-zlz4hc", "-Eztailpacking,fragments"],
    "long-xattr-prefix": ["-zlz4", "-Efragments", "--xattr-prefix=trusted.overlay."],
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(TRIXIE_VARIANTS))
def test_erofs_utils_1_8_variants(trixie: Path, trixie_work: Path, variant: str) -> None:
    from tests.tools import run_trixie

    tree = trixie_work / "tree"
    if variant == "long-xattr-prefix":
        os.setxattr(tree / "dir", "trusted.overlay.opaque", b"y")
    name = trixie_work.name
    run_trixie(
        trixie, "mkfs.erofs", "--quiet", *TRIXIE_VARIANTS[variant], f"/work/{name}/fs.erofs", f"/work/{name}/tree"
    )
    fs = ErofsFileSystem(FileSource(trixie_work / "fs.erofs"))
    assert differences(source_tree(tree), image_tree(fs)) == []
    assert random_access_mismatches(ErofsFileSystem(FileSource(trixie_work / "fs.erofs")), tree) == []
    if variant.startswith("512"):
        assert fs.sb.block_size == 512
    if "fragments" in variant or variant == "long-xattr-prefix":
        assert fs.sb.feature_incompat & erofs.INCOMPAT_FRAGMENTS and fs.sb.packed_nid


@pytest.mark.slow
def test_minbase_with_erofs_utils_1_8(trixie: Path, minbase: Path) -> None:
    from tests.tools import run_trixie

    work = trixie / "work" / "minbase-1.8"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        run("cp", "-a", minbase, work / "tree")
        run_trixie(
            trixie,
            "mkfs.erofs",
            "--quiet",
            "-zzstd",
            "-Efragments,dedupe",
            "/work/minbase-1.8/fs.erofs",
            "/work/minbase-1.8/tree",
        )
        fs = ErofsFileSystem(FileSource(work / "fs.erofs"))
        assert differences(source_tree(minbase), image_tree(fs)) == []
    finally:
        shutil.rmtree(work, ignore_errors=True)
