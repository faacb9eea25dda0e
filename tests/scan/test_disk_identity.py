"""Which format a partition holds and how it is named, from one registry; what cannot be read is said.

Small disks made by sfdisk, mkfs.erofs, mkfs.ext4, mkfs.vfat and cryptsetup at test time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cvmlint.errors import CvmlintError
from cvmlint.image import fsid
from cvmlint.image.source import FileSource
from cvmlint.scan import grub
from cvmlint.scan.disk import find_root, open_disk
from tests.tools import run

MIB = 1 << 20
LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
EROFS_UUID = "0d4c3b2a-1908-4776-a554-332211000fed"


def disk(tmp_path: Path, parts: list[tuple[str, Path]]) -> Path:
    """A GPT disk holding each (type GUID, file system image) at 1 MiB boundaries."""
    image, start, lines = tmp_path / "disk.raw", 1, ["label: gpt", "unit: sectors"]
    for ptype, part in parts:
        size = -(-part.stat().st_size // MIB)
        lines.append(f"start={start * 2048}, size={size * 2048}, type={ptype}")
        start += size
    with open(image, "wb") as fh:
        fh.truncate((start + 1) * MIB)
    subprocess.run(["sfdisk", "-q", str(image)], input="\n".join(lines) + "\n", text=True, check=True)
    start = 1
    for _, part in parts:
        run("dd", f"if={part}", f"of={image}", "bs=1M", f"seek={start}", "conv=notrunc", "status=none")
        start += -(-part.stat().st_size // MIB)
    return image


def erofs(tmp_path: Path) -> Path:
    tree = tmp_path / "tree/etc"
    tree.mkdir(parents=True)
    (tree / "os-release").write_text("ID=debian\n")
    image = tmp_path / "root.erofs"
    run("mkfs.erofs", "--quiet", "-U", EROFS_UUID, image, tmp_path / "tree")  # 1.5 sets no label
    return image


def blank(path: Path, mib: int) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(mib * MIB)
    return path


def test_every_partition_is_named_by_the_registry(tmp_path: Path) -> None:
    ext4 = blank(tmp_path / "data.ext4", 8)
    run("mkfs.ext4", "-q", "-U", "11111111-2222-3333-4444-555555555555", "-L", "data", ext4)
    vfat = blank(tmp_path / "esp.vfat", 34)
    run("mkfs.vfat", "-F", "32", "-i", "1234ABCD", "-n", "EFI", vfat)
    luks = blank(tmp_path / "luks", 20)
    (tmp_path / "key").write_bytes(b"k" * 32)
    run(
        "cryptsetup", "luksFormat", "--type", "luks2", "--batch-mode", "--pbkdf", "pbkdf2",
        "--pbkdf-force-iterations", "1000", "--label", "secrets", luks, tmp_path / "key",
    )  # fmt: skip
    parts = [(ESP, vfat), (LINUX, erofs(tmp_path)), (LINUX, ext4), (LINUX, luks)]
    found = open_disk(FileSource(disk(tmp_path, parts)))
    named = [(p.content.value, p.fs_uuid, p.fs_label, p.identity_problem) for p in found.partitions]
    luks_uuid = run("cryptsetup", "luksUUID", luks).strip()
    assert named == [
        ("vfat", "1234-ABCD", "EFI", ""),
        ("erofs", EROFS_UUID, "", ""),
        ("ext4", "11111111-2222-3333-4444-555555555555", "data", ""),
        ("luks2", luks_uuid, "secrets", ""),
    ]
    assert [bool(fsid.format_of(p.content).reader) for p in found.partitions] == [False, True, True, False]


def test_a_lost_uuid_is_said_and_a_root_named_by_uuid_is_not_guessed(tmp_path: Path) -> None:
    root = erofs(tmp_path)
    with open(root, "r+b") as fh:  # the magic stays, the block size becomes impossible
        fh.seek(1024 + 12)
        fh.write(b"\x40")
    found = open_disk(FileSource(disk(tmp_path, [(LINUX, root)])))
    part = found.partitions[0]
    assert part.content is fsid.Content.EROFS and part.fs_uuid == ""
    assert part.identity_problem.startswith("its erofs header cannot be read, so its UUID and label are unknown")
    choice = find_root(found, f"UUID={EROFS_UUID}")
    assert choice.partition is None
    assert f"no partition is known to match root=UUID={EROFS_UUID}" in choice.reason
    assert "erofs header cannot be read" in choice.reason


def test_a_grub_configuration_that_cannot_be_read_stops_the_menu() -> None:
    def load(device: str, path: str) -> grub.GrubFile | None:
        if path == "/EFI/debian/grub.cfg":
            raise CvmlintError("fat: cluster chain at byte 4096: loops")
        return grub.GrubFile(device, path, "menuentry benign { linux /vmlinuz ro }\n")

    menu = grub.read_menu(
        load, lambda kind, value: None, [("esp", "/EFI/debian/grub.cfg"), ("esp", "/grub/grub.cfg")], {}
    )
    assert menu.entries == [] and menu.unread == ["(esp)/EFI/debian/grub.cfg"]  # not the next candidate
    assert menu.problems == [
        "(esp)/EFI/debian/grub.cfg cannot be read, so what GRUB would do is unknown: "
        "fat: cluster chain at byte 4096: loops"
    ]

    def sourcing(device: str, path: str) -> grub.GrubFile | None:
        if path == "/x.cfg":
            raise CvmlintError("ext4: extent tree at byte 8192: loops")
        return grub.GrubFile(device, path, "source /x.cfg\nmenuentry benign { linux /vmlinuz ro }\n")

    sourced = grub.read_menu(sourcing, lambda kind, value: None, [("esp", "/grub/grub.cfg")], {})
    assert len(sourced.entries) == 1 and sourced.unread == ["(esp)/x.cfg"]  # the scan judges no entry then
    assert sourced.problems == [
        "(esp)/x.cfg cannot be read, so what GRUB would do is unknown: ext4: extent tree at byte 8192: loops"
    ]


@pytest.mark.parametrize("magic_only", [b"hsqs" + bytes(92), b"verity\0\0" + bytes(504)])
def test_a_header_behind_a_known_magic_that_cannot_be_read_is_said(tmp_path: Path, magic_only: bytes) -> None:
    part = tmp_path / "part"
    part.write_bytes(magic_only + bytes(MIB - len(magic_only)))
    found = open_disk(FileSource(disk(tmp_path, [(LINUX, part)])))
    assert "header cannot be read" in found.partitions[0].identity_problem


def test_an_ext4_root_with_a_file_name_that_is_not_utf8_is_judged(tmp_path: Path) -> None:
    """Names are bytes on Linux: one that is not UTF-8 is carried escaped, and every rule is judged
    (no rule ends in ERROR, the run exits 1, not 2)."""
    from tests.scan.conftest import scan

    tree = tmp_path / "tree"
    for rel in ("etc", "usr/bin", "var/lib/dpkg"):
        (tree / rel).mkdir(parents=True)
    (tree / "etc/os-release").write_text("ID=debian\n")
    (tree / "var/lib/dpkg/status").write_text("Package: gcc-12\nStatus: install ok installed\nVersion: 12.2\n")
    odd = bytes(tree / "usr/bin") + b"/gcc\xff\xfe"
    with open(odd, "wb") as fh:
        fh.write(b"#!/bin/sh\n")
    os.chmod(odd, 0o4755)
    root = blank(tmp_path / "root.ext4", 16)
    run("mkfs.ext4", "-q", "-d", tree, root)
    image = disk(tmp_path, [("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", root)])
    result = scan(image, "--no-verity")
    assert result.code == 1, result.err
    assert not [r for r in result.out["results"] if r["status"] == "error"]
    for rule in ("CVM-PKG-002", "CVM-PKG-003", "CVM-PKG-006", "CVM-FS-004"):
        assert result.status(rule) in ("pass", "fail"), result.explain(rule)
    assert "gcc-12" in " ".join(result.findings("CVM-PKG-003"))
    # JSON carries the name's bytes as surrogate escapes (they read back as the same bytes); text shows \\xff
    assert result.locations("CVM-FS-004") == {"root:/usr/bin/gcc\udcff\udcfe"}, result.explain("CVM-FS-004")
    text = subprocess.run(
        [sys.executable, "-m", "cvmlint", "scan", "--no-verity", str(image)], capture_output=True, check=False
    )
    assert text.returncode == 1 and b"root:/usr/bin/gcc\\xff\\xfe" in text.stdout, text.stdout[-2000:]
