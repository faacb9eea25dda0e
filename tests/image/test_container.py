"""Containers: qcow2 (v2, v3, compressed), VHD (fixed, dynamic), tar and tar.gz wrapping disk.raw."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import pytest

from cvmlint.errors import FormatError, InputError
from cvmlint.image.container import open_image
from cvmlint.image.qcow2 import Qcow2Source
from cvmlint.image.source import BytesSource
from tests.tools import run

SIZE = 16 << 20


def raw_disk(tmp_path: Path) -> Path:
    disk = tmp_path / "disk.raw"
    rnd = random.Random(9)
    with open(disk, "wb") as fh:
        fh.truncate(SIZE)
        for off in (0, 3 << 20, 9 << 20):
            fh.seek(off)
            fh.write(rnd.randbytes(1 << 20))
        fh.seek(12 << 20)
        fh.write(b"compressible " * 50000)
    return disk


CONVERSIONS = {
    "qcow2-v3": ["-O", "qcow2"],
    "qcow2-v2": ["-O", "qcow2", "-o", "compat=0.10"],
    "qcow2-compressed": ["-c", "-O", "qcow2"],
    "qcow2-zstd": ["-c", "-O", "qcow2", "-o", "compression_type=zstd"],
    "vhd-dynamic": ["-O", "vpc"],
    "vhd-fixed": ["-O", "vpc", "-o", "subformat=fixed"],
}


@pytest.mark.parametrize("variant", sorted(CONVERSIONS))
def test_converted_images_read_back(tmp_path: Path, variant: str) -> None:
    disk = raw_disk(tmp_path)
    image = tmp_path / "image"
    run("qemu-img", "convert", *CONVERSIONS[variant], disk, image)
    expected = disk.read_bytes()
    with open_image(image) as (src, kind):
        assert kind == variant.split("-")[0]
        got = src.pread(0, src.size)
    assert got[:SIZE] == expected and not any(got[SIZE:])  # VHD rounds the size up to its geometry


@pytest.mark.parametrize("tar_options", [["-cf"], ["--format=oldgnu", "-Sczf"]])
def test_tarball_with_disk_raw(tmp_path: Path, tar_options: list[str]) -> None:
    disk = raw_disk(tmp_path)
    archive = tmp_path / "image.tar.gz"
    run("tar", "-C", tmp_path, *tar_options, archive, "disk.raw")
    with open_image(archive, tmpdir=str(tmp_path)) as (src, kind):
        assert kind in ("tar", "tar.gz")
        assert src.pread(0, SIZE) == disk.read_bytes()
        assert os.fstat(src.fileno()).st_blocks * 512 < SIZE  # type: ignore[attr-defined]  # written sparse
        assert list(tmp_path.glob("cvmlint-disk-*")) == []  # nameless while in use: a killed run leaves nothing


def test_tarball_without_disk_raw(tmp_path: Path) -> None:
    (tmp_path / "other").write_text("x")
    run("tar", "-C", tmp_path, "-czf", tmp_path / "a.tar.gz", "other")
    with pytest.raises(InputError, match=r"holds no disk\.raw"), open_image(tmp_path / "a.tar.gz"):
        pass


def test_hostile_qcow2(tmp_path: Path) -> None:
    disk = raw_disk(tmp_path)
    image = tmp_path / "d.qcow2"
    run("qemu-img", "convert", "-O", "qcow2", disk, image)
    data = bytearray(image.read_bytes())
    l1_offset = struct.unpack_from(">Q", data, 40)[0]
    bad = bytearray(data)
    struct.pack_into(">Q", bad, l1_offset, (1 << 62 | 0x7FFFFFFF0000) & 0x00FFFFFFFFFFFE00)
    with pytest.raises(FormatError, match=r"qcow2: L1 entry 0 at byte \d+: L2 table offset .* outside the file"):
        Qcow2Source(BytesSource(bytes(bad))).pread(0, 4096)
    bad = bytearray(data)
    struct.pack_into(">Q", bad, 40, len(data) + 4096)
    with pytest.raises(FormatError, match=r"qcow2: L1 table"):
        Qcow2Source(BytesSource(bytes(bad)))
    backed = tmp_path / "overlay.qcow2"
    run("qemu-img", "create", "-f", "qcow2", "-b", image, "-F", "qcow2", backed)
    with pytest.raises(FormatError, match="has a backing file"), open_image(backed):
        pass


def test_only_regular_files_and_block_devices_are_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "a FIFO"), (Path("/dev/zero"), "a character device")):
        with pytest.raises(InputError, match=f"only a regular file or a block device is read \\({kind}\\)"):
            open_image(path).__enter__()  # would block on the FIFO or read zeros forever
