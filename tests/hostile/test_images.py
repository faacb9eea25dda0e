"""Hostile containers made from real ones (qemu-img, tar + zstd) with one size field turned against
the reader: each scan ends in exit 2 naming the structure and the limit, within the memory cap, and
the image file is left as it was (bytes and mtime)."""

from __future__ import annotations

import hashlib
import os
import resource
import struct
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.tools import require, run

pytestmark = pytest.mark.slow  # makes qcow2/VHD/tarball images of real size fields

MEMORY_CAP = 3 << 29  # 1.5 GiB of address space: the interpreter and its libraries take ~0.5 of it


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _checksum(raw: bytes | bytearray) -> bytes:
    return struct.pack(">I", (~sum(raw)) & 0xFFFFFFFF)


def qcow2_with_a_huge_l1_table(tmp: Path) -> Path:
    image = tmp / "l1.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=65536", image, "1G")
    with open(image, "r+b") as fh:
        fh.seek(36)
        fh.write(struct.pack(">I", 1 << 24))  # l1_size: 2^24 entries, 128 MiB (twice the limit)
        fh.truncate(256 << 20)  # sparse: the table "fits" the file
    return image


def vhd_with_a_huge_bat(tmp: Path) -> Path:
    image = tmp / "bat.vhd"
    run("qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=dynamic", image, "1G")
    with open(image, "r+b") as fh:
        data_offset = struct.unpack(">Q", fh.read(24)[16:24])[0]
        fh.seek(data_offset)
        header = bytearray(fh.read(1024))
        header[28:32] = struct.pack(">I", 1 << 25)  # max table entries: 2^25, a 128 MiB BAT
        header[36:40] = bytes(4)
        header[36:40] = _checksum(header)
        fh.seek(data_offset)
        fh.write(header)
        end = fh.seek(0, os.SEEK_END)
        fh.seek(end - 512)
        footer = fh.read(512)
        fh.truncate(256 << 20)
        fh.seek((256 << 20) - 512)
        fh.write(footer)  # the footer stays the file's last sector
    return image


def tar_zst_with_a_2_tib_member(tmp: Path) -> Path:
    info = tarfile.TarInfo("disk.raw")
    info.size = 2 << 40
    raw = tmp / "image.tar"
    raw.write_bytes(info.tobuf(format=tarfile.GNU_FORMAT) + bytes(1 << 20))
    run("zstd", "-q", "-f", raw, "-o", tmp / "image.tar.zst")
    return tmp / "image.tar.zst"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (qcow2_with_a_huge_l1_table, "qcow2: L1 table (16777216 entries) at byte 196608: 128 MiB"),
        (vhd_with_a_huge_bat, "vhd: block allocation table (33554432 entries)"),
        (tar_zst_with_a_2_tib_member, "tar: member disk.raw at byte 0: 2048 GiB"),
    ],
)
def test_a_size_field_past_its_limit_is_refused_and_the_image_untouched(
    make: Callable[[Path], Path], says: str, tmp_path: Path
) -> None:
    require("qemu-img", "zstd")
    image = make(tmp_path)
    before = (hashlib.sha256(image.read_bytes()).hexdigest(), image.stat().st_mtime_ns)
    proc = subprocess.run(
        [sys.executable, "-m", "cvmlint", "scan", "--no-verity", str(image)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_capped,
    )
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "is over the limit" in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    assert (hashlib.sha256(image.read_bytes()).hexdigest(), image.stat().st_mtime_ns) == before
    assert proc.stdout == ""  # nothing half-written
