"""FAT12/16/32 made by mkfs.vfat and filled by mcopy; loops and lies refused."""

from __future__ import annotations

import hashlib
import random
import struct
from pathlib import Path

import pytest

from cvmlint.errors import FormatError
from cvmlint.image.fat import FatFileSystem
from cvmlint.image.source import BytesSource, FileSource
from tests.tools import run

SIZES = {12: 4000, 16: 32768, 32: 66000}  # KiB, the smallest each type allows


def esp_tree(root: Path) -> dict[str, str]:
    files = {
        "EFI/BOOT/BOOTX64.EFI": random.Random(1).randbytes(300_000),
        "EFI/BOOT/grubx64.efi": random.Random(2).randbytes(70_000),
        "EFI/debian/grub.cfg": b"configfile /grub/grub.cfg\n",
        "grub/grub.cfg": b"set timeout=0\nmenuentry x {\n linux /vmlinuz ro\n}\n",
        "loader/entries/debian-6.1.0-28-cloud-amd64-with-a-long-name.conf": b"title Debian\n",
        "empty.txt": b"",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return {"/" + k: hashlib.sha256(v).hexdigest() for k, v in files.items()}


def fat_image(tmp_path: Path, bits: int) -> tuple[Path, dict[str, str]]:
    tree = tmp_path / "esp"
    tree.mkdir()
    expected = esp_tree(tree)
    image = tmp_path / f"esp{bits}.img"
    run("mkfs.vfat", "-C", "-F", str(bits), "-n", "ESP", image, str(SIZES[bits]))
    run("mcopy", "-s", "-m", "-i", image, *sorted(tree.iterdir()), "::/")
    return image, expected


@pytest.mark.parametrize("bits", [12, 16, 32])
def test_walk_and_read(tmp_path: Path, bits: int) -> None:
    image, expected = fat_image(tmp_path, bits)
    fs = FatFileSystem(FileSource(image))
    assert fs.bits == bits
    files = {e.path: hashlib.sha256(fs.read(e)).hexdigest() for e in fs.walk() if not e.is_dir}
    assert files == expected
    listed = run("mdir", "-/", "-b", "-i", image, "::")
    assert {line.removeprefix("::") for line in listed.split() if not line.endswith("/")} == set(expected)
    entry = fs.lookup("/efi/boot/bootx64.efi")
    assert entry is not None and entry.size == 300_000 and entry.mtime is not None


def test_cluster_chain_loop(tmp_path: Path) -> None:
    image, _ = fat_image(tmp_path, 16)
    data = bytearray(image.read_bytes())
    fs = FatFileSystem(BytesSource(bytes(data)))
    entry = fs.lookup("/EFI/BOOT/BOOTX64.EFI")
    assert entry is not None
    chain = fs.chain(entry.first_cluster)
    struct.pack_into("<H", data, fs.fat_offset + chain[3] * 2, chain[1])
    broken = FatFileSystem(BytesSource(bytes(data)))
    with pytest.raises(FormatError, match=rf"fat: cluster chain from cluster {chain[0]} .* loops back"):
        broken.read(entry)


def test_directory_loop(tmp_path: Path) -> None:
    image, _ = fat_image(tmp_path, 32)
    data = bytearray(image.read_bytes())
    fs = FatFileSystem(BytesSource(bytes(data)))
    boot = fs.lookup("/EFI/BOOT")
    efi = fs.lookup("/EFI")
    assert boot is not None and efi is not None
    struct.pack_into("<H", data, boot.offset + 26, efi.first_cluster & 0xFFFF)  # /EFI/BOOT -> /EFI
    struct.pack_into("<H", data, boot.offset + 20, efi.first_cluster >> 16)
    with pytest.raises(FormatError, match="directory loop"):
        list(FatFileSystem(BytesSource(bytes(data))).walk())


def test_size_longer_than_the_chain(tmp_path: Path) -> None:
    image, _ = fat_image(tmp_path, 12)
    data = bytearray(image.read_bytes())
    fs = FatFileSystem(BytesSource(bytes(data)))
    entry = fs.lookup("/grub/grub.cfg")
    assert entry is not None
    struct.pack_into("<I", data, entry.offset + 28, 1_000_000)
    lied = FatFileSystem(BytesSource(bytes(data))).lookup("/grub/grub.cfg")
    with pytest.raises(FormatError, match=r"fat: file /grub/grub.cfg .* but its chain has only 1 clusters"):
        FatFileSystem(BytesSource(bytes(data))).read(lied)  # type: ignore[arg-type]


def test_truncated_and_bogus_boot_sector(tmp_path: Path) -> None:
    image, _ = fat_image(tmp_path, 16)
    data = image.read_bytes()
    with pytest.raises(FormatError, match=r"fat: BIOS parameter block at byte 19: .* do not fit"):
        FatFileSystem(BytesSource(data[: 1 << 20]))
    bogus = bytearray(data)
    bogus[11:13] = b"\x00\x03"
    with pytest.raises(FormatError, match="implausible geometry"):
        FatFileSystem(BytesSource(bytes(bogus)))


def test_entry_offsets_in_a_fragmented_directory(tmp_path: Path) -> None:
    """A directory whose second cluster lies after another file's: every entry's offset is where its
    32 bytes really are (the short name is found there)."""
    image = tmp_path / "frag.img"
    run("mkfs.vfat", "-C", "-F", "16", "-s", "1", "-S", "512", image, str(SIZES[16]))
    (tmp_path / "f").write_bytes(b"x")
    run("mmd", "-i", image, "::/D")
    for k in range(14):  # 16 entries (with . and ..) fill the directory's one 512-byte cluster
        run("mcopy", "-i", image, tmp_path / "f", f"::/D/A{k:02d}.TXT")
    (tmp_path / "big").write_bytes(b"y" * 4096)
    run("mcopy", "-i", image, tmp_path / "big", "::/BIG.BIN")  # takes the clusters after the directory's
    for k in range(6):
        run("mcopy", "-i", image, tmp_path / "f", f"::/D/B{k:02d}.TXT")
    fs = FatFileSystem(FileSource(image))
    d = fs.lookup("/D")
    assert d is not None and len(fs.chain(d.first_cluster)) == 2
    entries = [e for e in fs.walk() if e.path.startswith("/D/")]
    assert len(entries) == 20
    raw = image.read_bytes()
    for entry in entries:
        stem, ext = entry.name.split(".")
        assert raw[entry.offset : entry.offset + 11] == f"{stem:<8}{ext:<3}".encode(), entry
