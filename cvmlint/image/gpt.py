"""GUID partition tables (with the protective MBR), and plain MBR tables as a fallback.

    LBA 0   protective MBR: one entry of type 0xEE, 0x55 0xAA at byte 510
    LBA 1   GPT header      "EFI PART" rev 1.0, header size 92, CRC32 of the header (field zeroed),
                            my LBA, alternate LBA, first/last usable LBA, disk GUID,
                            entry array LBA, entry count, entry size, CRC32 of the entry array
    LBA 2.. entries         type GUID, unique GUID, first LBA, last LBA, attributes, UTF-16LE name
    last    backup header   (its entry array just before it)

Partition types are named after the UAPI Discoverable Partitions Specification.
"""

from __future__ import annotations

import itertools
import struct
import uuid
import zlib
from dataclasses import dataclass, field

from cvmlint import limits
from cvmlint.errors import FormatError, reader
from cvmlint.image.source import ByteSource, SliceSource, read_exact, unpack

FMT = "gpt"
_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")
_ENTRY = struct.Struct("<16s16sQQQ72s")
_MBR_ENTRY = struct.Struct("<B3sB3sII")
MAX_LOGICAL = 128

FLAG_REQUIRED = 1 << 0
FLAG_GROWFS = 1 << 59
FLAG_READ_ONLY = 1 << 60
FLAG_NO_AUTO = 1 << 63

_ARCH_TYPES = {
    # arch: (root, root-verity, root-verity-sig, usr, usr-verity, usr-verity-sig)
    "x86-64": (
        "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
        "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5",
        "41092b05-9fc8-4523-994f-2def0408b176",
        "8484680c-9521-48c6-9c11-b0720656f69e",
        "77ff5f63-e7b6-4633-acf4-1565b864c0e6",
        "e7bb33fb-06cf-4e81-8273-e543b413e2e2",
    ),
    "x86": (
        "44479540-f297-41b2-9af7-d131d5f0458a",
        "d13c5d3b-b5d1-422a-b29f-9454fdc89d76",
        "5996fc05-109c-48de-808b-23fa0830b676",
        "75250d76-8cc6-458e-bd66-bd47cc81a812",
        "8f461b0d-14ee-4e81-9aa9-049b6fb97abd",
        "974a71c0-de41-43c3-be5d-5c5ccd1ad2c0",
    ),
    "arm64": (
        "b921b045-1df0-41c3-af44-4c6f280d3fae",
        "df3300ce-d69f-4c92-978c-9bfb0f38d820",
        "6db69de6-29f4-4758-a7a5-962190f00ce3",
        "b0e01050-ee5f-4390-949a-9101b17104e9",
        "6e11a4e7-fbca-4ded-b9e9-e1a512bb664e",
        "c23ce4ff-44bd-4b00-b2d4-b41b3419e02a",
    ),
    "arm": (
        "69dad710-2ce4-4e3c-b16c-21a1d49abed3",
        "7386cdf2-203c-47a9-a498-f2ecce45a2d6",
        "42b0455f-eb11-491d-98d3-56145ba9d037",
        "7d0359a3-02b3-4f0a-865c-654403e70625",
        "c215d751-7bcd-4649-be90-6627490a4c05",
        "d7ff812f-37d1-4902-a810-d76ba57b975a",
    ),
    "riscv64": (
        "72ec70a6-cf74-40e6-bd49-4bda08e8f224",
        "b6ed5582-440b-4209-b8da-5ff7c419ea3d",
        "efe0f087-ea8d-4469-821a-4c2a96a8386a",
        "beaec34b-8442-439b-a40b-984381ed097d",
        "8f1056be-9b05-47c4-81d6-be53128e5b54",
        "d2f9000a-7a18-453f-b5cd-4d32f77a7b32",
    ),
}
_KINDS = ("root-{}", "root-{}-verity", "root-{}-verity-sig", "usr-{}", "usr-{}-verity", "usr-{}-verity-sig")

TYPE_NAMES: dict[str, str] = {
    "c12a7328-f81f-11d2-ba4b-00a0c93ec93b": "esp",
    "bc13c2ff-59e6-4262-a352-b275fd6f7172": "xbootldr",
    "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f": "swap",
    "933ac7e1-2eb4-4f13-b844-0e14e2aef915": "home",
    "3b8f8425-20e0-4f3b-907f-1a25a76f98e8": "srv",
    "4d21b016-b534-45c2-a9fb-5c16e091fd2d": "var",
    "7ec6f557-3bc5-4aca-b293-16ef5df639d1": "tmp",
    "773f91ef-66d4-49b5-bd83-d683bf40ad16": "user-home",
    "0fc63daf-8483-4772-8e79-3d69d8477de4": "linux-generic",
    "21686148-6449-6e6f-744e-656564454649": "bios-boot",
    "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7": "microsoft-basic-data",
    "e6d6d379-f507-44c2-a23c-238f2a3df928": "linux-lvm",
    "a19d880f-05fc-4d3b-a006-743f0f84911e": "linux-raid",
    "ca7d7ccb-63ed-4c53-861c-1742536059cc": "linux-luks",
    "7ffec5c9-2d00-49b7-8941-3ea10a5586b7": "linux-dm-crypt",
}
for _arch, _guids in _ARCH_TYPES.items():
    for _kind, _guid in zip(_KINDS, _guids, strict=True):
        TYPE_NAMES[_guid] = _kind.format(_arch)

MBR_TYPE_NAMES = {
    0x83: "linux-generic",
    0xEF: "esp",
    0x82: "swap",
    0x8E: "linux-lvm",
    0xFD: "linux-raid",
    0x0C: "fat32-lba",
    0x0B: "fat32",
    0x06: "fat16",
    0x07: "ntfs-exfat",
    0xEE: "gpt-protective",
}


@dataclass(frozen=True)
class Partition:
    """One partition: where it is and what the table says it is."""

    number: int
    type_guid: str
    type_name: str
    guid: str
    name: str
    first_lba: int
    last_lba: int
    attributes: int
    sector_size: int

    @property
    def start(self) -> int:
        """Byte offset of the first byte."""
        return self.first_lba * self.sector_size

    @property
    def size(self) -> int:
        """Size in bytes."""
        return (self.last_lba - self.first_lba + 1) * self.sector_size

    @property
    def read_only(self) -> bool:
        """GPT attribute bit 60."""
        return bool(self.attributes & FLAG_READ_ONLY)

    @property
    def no_auto(self) -> bool:
        """GPT attribute bit 63."""
        return bool(self.attributes & FLAG_NO_AUTO)

    @property
    def growfs(self) -> bool:
        """GPT attribute bit 59."""
        return bool(self.attributes & FLAG_GROWFS)

    def open(self, disk: ByteSource) -> SliceSource:
        """The partition's bytes; a FormatError if the table puts it beyond the end of the disk."""
        return SliceSource(
            disk, self.start, self.size, f"{disk.name} partition {self.number}", FMT, f"partition entry {self.number}"
        )


@dataclass
class PartitionTable:
    """A parsed GPT (or MBR) with what did not check out."""

    kind: str
    """`gpt` or `mbr`."""
    sector_size: int
    disk_guid: str = ""
    partitions: list[Partition] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Non-fatal findings: a bad backup header, a primary/backup mismatch, an entry past the end."""

    def by_type(self, name: str) -> list[Partition]:
        """Partitions with this DPS type name."""
        return [p for p in self.partitions if p.type_name == name]


def guid_from_bytes(raw: bytes) -> str:
    """A GPT GUID (mixed-endian on disk) as the usual text form."""
    return str(uuid.UUID(bytes_le=raw))


@dataclass(frozen=True)
class _Header:
    offset: int
    my_lba: int
    alternate_lba: int
    first_usable: int
    last_usable: int
    disk_guid: str
    entries_lba: int
    count: int
    entry_size: int
    entries_crc: int


def _header(disk: ByteSource, lba: int, sector: int, which: str) -> _Header:
    offset = lba * sector
    raw = read_exact(disk, offset, 92, FMT, f"{which} GPT header")
    (sig, rev, hsize, crc, _res, my_lba, alt_lba, first, last, dguid, entries_lba, count, esize, ecrc) = unpack(
        _HEADER, raw, 0, FMT, f"{which} GPT header"
    )
    if sig != b"EFI PART":
        raise FormatError(FMT, f"{which} GPT header", offset, "no 'EFI PART' signature")
    if not 92 <= hsize <= sector:
        raise FormatError(FMT, f"{which} GPT header", offset, f"header size {hsize} outside 92..{sector}")
    body = bytearray(read_exact(disk, offset, hsize, FMT, f"{which} GPT header"))
    body[16:20] = b"\0\0\0\0"
    if zlib.crc32(body) != crc:
        raise FormatError(
            FMT,
            f"{which} GPT header",
            offset,
            f"CRC32 mismatch (stored {crc:#010x}, computed {zlib.crc32(body):#010x})",
        )
    if my_lba != lba:
        raise FormatError(FMT, f"{which} GPT header", offset, f"says it is at LBA {my_lba}, found at LBA {lba}")
    if esize < 128 or esize % 8 or esize > 4096:
        raise FormatError(FMT, f"{which} GPT header", offset, f"entry size {esize} is not a multiple of 8 in 128..4096")
    limits.check("gpt-entries", count, FMT, f"{which} GPT header", offset)
    if first > last:
        raise FormatError(FMT, f"{which} GPT header", offset, f"first usable LBA {first} after last {last}")
    _ = rev
    return _Header(offset, my_lba, alt_lba, first, last, guid_from_bytes(dguid), entries_lba, count, esize, ecrc)


def _entries(disk: ByteSource, h: _Header, sector: int, which: str) -> bytes:
    start = h.entries_lba * sector
    length = h.count * h.entry_size
    data = read_exact(disk, start, length, FMT, f"{which} GPT entry array ({h.count} x {h.entry_size} bytes)")
    if zlib.crc32(data) != h.entries_crc:
        raise FormatError(
            FMT,
            f"{which} GPT entry array",
            start,
            f"CRC32 mismatch (stored {h.entries_crc:#010x}, computed {zlib.crc32(data):#010x})",
        )
    return data


def _parse_entries(data: bytes, h: _Header, sector: int, table: PartitionTable, disk_sectors: int) -> None:
    for i in range(h.count):
        off = i * h.entry_size
        tguid, uguid, first, last, attrs, name = unpack(_ENTRY, data, off, FMT, f"GPT entry {i + 1}")
        if tguid == b"\0" * 16:
            continue
        if first > last:
            raise FormatError(
                FMT, f"GPT entry {i + 1}", h.entries_lba * sector + off, f"first LBA {first} after last LBA {last}"
            )
        type_guid = guid_from_bytes(tguid)
        part = Partition(
            i + 1,
            type_guid,
            TYPE_NAMES.get(type_guid, "unknown"),
            guid_from_bytes(uguid),
            name.decode("utf-16-le", "replace").split("\0", 1)[0],
            first,
            last,
            attrs,
            sector,
        )
        if last >= disk_sectors:
            table.problems.append(
                f"partition {i + 1} ends at LBA {last}, past the end of the disk "
                f"({disk_sectors} sectors): the image is truncated"
            )
        elif first < h.first_usable or last > h.last_usable:
            table.problems.append(
                f"partition {i + 1} (LBA {first}..{last}) lies outside the usable LBAs "
                f"{h.first_usable}..{h.last_usable}"
            )
        table.partitions.append(part)
    _check_overlaps(table)


def _check_overlaps(table: PartitionTable) -> None:
    ordered = sorted(table.partitions, key=lambda p: p.first_lba)
    for a, b in itertools.pairwise(ordered):
        if b.first_lba <= a.last_lba:
            table.problems.append(f"partitions {a.number} and {b.number} overlap")


def _sector_size(disk: ByteSource) -> int | None:
    for sector in (512, 4096):
        if disk.size >= 2 * sector and disk.pread(sector, 8) == b"EFI PART":
            return sector
    return None


@reader("gpt", "partition table")
def read_partition_table(disk: ByteSource) -> PartitionTable:
    """The GPT of a disk (primary, else backup), or its MBR; FormatError when there is neither."""
    mbr = read_exact(disk, 0, 512, FMT, "master boot record")
    sector = _sector_size(disk)
    if sector is None:
        if mbr[510:512] == b"\x55\xaa":
            return _read_mbr(disk, mbr)
        raise FormatError(
            FMT,
            "partition table",
            0,
            "no GPT header at LBA 1 (512- or 4096-byte sectors) and no "
            "MBR boot signature: not a partitioned disk image",
        )
    table = PartitionTable("gpt", sector)
    if mbr[510:512] != b"\x55\xaa" or not any(mbr[446 + 16 * i + 4] == 0xEE for i in range(4)):
        table.problems.append("no protective MBR (type 0xEE) in front of the GPT")
    disk_sectors = disk.size // sector
    primary_error = ""
    try:
        primary: _Header | None = _header(disk, 1, sector, "primary")
        assert primary is not None
        entries = _entries(disk, primary, sector, "primary")
    except FormatError as err:
        table.problems.append(f"primary GPT unusable ({err}); using the backup")
        primary, primary_error = None, err.problem
    backup_lba = primary.alternate_lba if primary else disk_sectors - 1
    backup: _Header | None = None
    backup_entries = b""
    try:
        header = _header(disk, backup_lba, sector, "backup")
        backup_entries = _entries(disk, header, sector, "backup")
        backup = header  # only once its entries are read too
    except FormatError as err:
        if primary is None:
            raise FormatError(
                FMT,
                "GPT",
                sector,
                f"primary and backup headers are both unusable; primary: {primary_error}; backup: {err.problem}",
            ) from None
        table.problems.append(f"backup GPT unusable: {err}")
    if primary is None:
        assert backup is not None
        primary, entries = backup, backup_entries
    elif backup is not None:
        _compare(primary, backup, entries, backup_entries, table)
    table.disk_guid = primary.disk_guid
    if primary.last_usable >= disk_sectors:
        table.problems.append(
            f"the GPT describes {primary.last_usable + 1} sectors but the image has {disk_sectors}: "
            "the image is truncated"
        )
    _parse_entries(entries, primary, sector, table, disk_sectors)
    return table


def _compare(p: _Header, b: _Header, pe: bytes, be: bytes, table: PartitionTable) -> None:
    if b.alternate_lba != p.my_lba:
        table.problems.append(f"backup GPT header points to LBA {b.alternate_lba}, not to the primary at {p.my_lba}")
    if (p.disk_guid, p.first_usable, p.last_usable, p.count, p.entry_size) != (
        b.disk_guid,
        b.first_usable,
        b.last_usable,
        b.count,
        b.entry_size,
    ):
        table.problems.append("primary and backup GPT headers disagree (disk GUID, usable range or entry layout)")
    if pe != be:
        table.problems.append("primary and backup GPT entry arrays differ")


def _read_mbr(disk: ByteSource, mbr: bytes) -> PartitionTable:
    table = PartitionTable("mbr", 512)
    ebr_base = None
    for i in range(4):
        _boot, _chs1, ptype, _chs2, lba, count = unpack(_MBR_ENTRY, mbr, 446 + 16 * i, FMT, f"MBR entry {i + 1}")
        if ptype == 0 or count == 0:
            continue
        if ptype in (0x05, 0x0F, 0x85):
            ebr_base = lba
            continue
        table.partitions.append(_mbr_partition(i + 1, ptype, lba, count))
    if ebr_base is not None:
        _read_logical(disk, ebr_base, table)
    disk_sectors = disk.size // 512
    for part in table.partitions:
        if part.last_lba >= disk_sectors:
            table.problems.append(f"partition {part.number} ends past the end of the disk: the image is truncated")
    _check_overlaps(table)
    return table


def _mbr_partition(number: int, ptype: int, lba: int, count: int) -> Partition:
    return Partition(
        number, f"mbr:{ptype:#04x}", MBR_TYPE_NAMES.get(ptype, "unknown"), "", "", lba, lba + count - 1, 0, 512
    )


def _read_logical(disk: ByteSource, base: int, table: PartitionTable) -> None:
    """Follow the extended boot record chain, bounded and cycle-checked."""
    current, seen, number = base, set(), 5
    while current and number < 5 + MAX_LOGICAL:
        if current in seen:
            raise FormatError(FMT, "extended boot record chain", current * 512, "loops back to an earlier record")
        seen.add(current)
        ebr = read_exact(disk, current * 512, 512, FMT, f"extended boot record {number}")
        if ebr[510:512] != b"\x55\xaa":
            raise FormatError(FMT, f"extended boot record {number}", current * 512, "no 0x55 0xAA signature")
        _b, _c, ptype, _c2, lba, count = unpack(_MBR_ENTRY, ebr, 446, FMT, f"logical partition {number}")
        if ptype and count:
            table.partitions.append(_mbr_partition(number, ptype, current + lba, count))
            number += 1
        _b, _c, ntype, _c2, nlba, _n = unpack(_MBR_ENTRY, ebr, 462, FMT, f"extended boot record {number}")
        current = base + nlba if ntype in (0x05, 0x0F, 0x85) and nlba else 0
