"""GPT and MBR tables made by sfdisk/sgdisk, and what the reader says about broken ones."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

from cvmlint.errors import FormatError
from cvmlint.image.gpt import read_partition_table
from cvmlint.image.source import BytesSource, FileSource
from tests.tools import run

ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
ROOT = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
VERITY = "2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5"
LAYOUT = (
    f"label: gpt\nsize=8M, type={ESP}, name=esp\n"
    f'size=20M, type={ROOT}, name=root-x86-64, attrs="GUID:60,GUID:63"\n'
    f"type={VERITY}, name=root-x86-64-verity\n"
)


def gpt_image(tmp_path: Path, layout: str = LAYOUT, size: int = 64 << 20) -> Path:
    image = tmp_path / "disk.img"
    with open(image, "wb") as fh:
        fh.truncate(size)
    (tmp_path / "layout").write_text(layout)
    run("sh", "-c", f"sfdisk -q {image} < {tmp_path / 'layout'}")
    return image


def test_gpt_matches_sfdisk(tmp_path: Path) -> None:
    image = gpt_image(tmp_path)
    table = read_partition_table(FileSource(image))
    oracle = json.loads(run("sfdisk", "-J", image))["partitiontable"]
    assert table.kind == "gpt" and table.sector_size == 512 and table.problems == []
    assert table.disk_guid == oracle["id"].lower()
    got = [(p.start // 512, p.size // 512, p.type_guid.upper(), p.guid.upper(), p.name) for p in table.partitions]
    want = [(p["start"], p["size"], p["type"], p["uuid"], p["name"]) for p in oracle["partitions"]]
    assert got == want
    assert [p.type_name for p in table.partitions] == ["esp", "root-x86-64", "root-x86-64-verity"]
    root = table.partitions[1]
    assert root.read_only and root.no_auto and not root.growfs
    assert "60" in run("sgdisk", "-i", "2", image).split("Attribute flags: ")[1].split()[0] or root.attributes


def test_mbr_with_logical_partitions(tmp_path: Path) -> None:
    layout = "label: dos\nsize=4M, type=ef\nsize=4M, type=83\ntype=5\nsize=2M, type=83\nsize=2M, type=82\n"
    table = read_partition_table(FileSource(gpt_image(tmp_path, layout, 32 << 20)))
    oracle = json.loads(run("sfdisk", "-J", tmp_path / "disk.img"))["partitiontable"]["partitions"]
    assert table.kind == "mbr"
    want = [(int(p["node"].rsplit("img", 1)[1]), p["start"], p["size"]) for p in oracle if p["type"] != "5"]
    assert [(p.number, p.first_lba, p.last_lba - p.first_lba + 1) for p in table.partitions] == want
    assert [p.type_name for p in table.partitions] == ["esp", "linux-generic", "linux-generic", "swap"]


def patch_header(data: bytearray, offset: int, field: int, value: int, fmt: str = "<I") -> None:
    """Change a GPT header field and recompute the header CRC, to reach the checks behind it."""
    struct.pack_into(fmt, data, offset + field, value)
    size = struct.unpack_from("<I", data, offset + 12)[0]
    struct.pack_into("<I", data, offset + 16, 0)
    struct.pack_into("<I", data, offset + 16, zlib.crc32(data[offset : offset + size]))


def test_corrupt_primary_falls_back_to_backup(tmp_path: Path) -> None:
    data = bytearray(gpt_image(tmp_path).read_bytes())
    data[512 + 40] ^= 0xFF
    table = read_partition_table(BytesSource(bytes(data)))
    assert len(table.partitions) == 3
    assert any("primary GPT unusable" in p and "CRC32 mismatch" in p for p in table.problems)


def test_both_headers_corrupt(tmp_path: Path) -> None:
    data = bytearray(gpt_image(tmp_path).read_bytes())
    data[512 + 40] ^= 0xFF
    data[-512 + 40] ^= 0xFF
    with pytest.raises(FormatError, match="gpt: GPT at byte 512: primary and backup headers are both unusable"):
        read_partition_table(BytesSource(bytes(data)))


def test_entry_array_crc_and_count_past_the_array(tmp_path: Path) -> None:
    data = bytearray(gpt_image(tmp_path).read_bytes())
    entries = struct.unpack_from("<Q", data, 512 + 72)[0] * 512
    data[entries + 56] ^= 1  # a name byte of entry 1
    table = read_partition_table(BytesSource(bytes(data)))
    assert any("entry array" in p and "CRC32 mismatch" in p for p in table.problems)
    data = bytearray(gpt_image(tmp_path).read_bytes())
    patch_header(data, 512, 80, 100_000)
    data[-512 + 40] ^= 0xFF
    with pytest.raises(FormatError, match=r"100000 \(GPT partition entries\) is over the limit gpt-entries = 1024"):
        read_partition_table(BytesSource(bytes(data)))


def test_backup_that_disagrees(tmp_path: Path) -> None:
    data = bytearray(gpt_image(tmp_path).read_bytes())
    backup_header = len(data) - 512
    backup_entries = struct.unpack_from("<Q", data, backup_header + 72)[0] * 512
    data[backup_entries + 56] ^= 1
    count, esize = struct.unpack_from("<II", data, backup_header + 80)
    patch_header(data, backup_header, 88, zlib.crc32(data[backup_entries : backup_entries + count * esize]))
    table = read_partition_table(BytesSource(bytes(data)))
    assert "primary and backup GPT entry arrays differ" in table.problems


def test_truncated_image(tmp_path: Path) -> None:
    data = gpt_image(tmp_path).read_bytes()[: 20 << 20]
    table = read_partition_table(BytesSource(data, "cut.img"))
    assert any("primary" not in p and "truncated" in p for p in table.problems)
    with pytest.raises(FormatError, match=r"gpt: partition entry 2 at byte 9437184: spans bytes .* cut.img has only"):
        table.partitions[1].open(BytesSource(data, "cut.img"))


@pytest.mark.parametrize("data", [bytes(4096), b"\x55" * 100])
def test_not_a_disk(data: bytes) -> None:
    with pytest.raises(FormatError, match=r"gpt: (partition table|master boot record) at byte 0"):
        read_partition_table(BytesSource(data))


def test_a_backup_header_whose_entries_cannot_be_read(tmp_path: Path) -> None:
    """Found by the disk fuzzer: a valid backup header pointing past the disk once ended in an
    UnboundLocalError; the primary is used and the backup's problem reported."""
    data = bytearray(gpt_image(tmp_path).read_bytes())
    patch_header(data, len(data) - 512, 72, 1 << 40, "<Q")  # the backup's entry array LBA, far past the end
    table = read_partition_table(BytesSource(bytes(data)))
    assert len(table.partitions) == 3
    assert any(p.startswith("backup GPT unusable") for p in table.problems), table.problems
