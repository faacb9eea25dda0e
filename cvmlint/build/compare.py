"""Two builds of one recipe compared, and a difference narrowed down as diffoscope does: which
partition, which file in the root or the ESP, which bytes, and which recipe setting or build input
most likely made it.

    result = compare_images(Path("a.raw"), Path("b.raw"))
    result.identical            # the two files are byte for byte the same
    result.checked              # image, partitions, root hash, ESP files, predicted registers
    result.differences          # each with where, what and the likely cause
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvmlint.errors import CvmlintError
from cvmlint.image.fsid import format_of
from cvmlint.scan.disk import Disk, DiskPartition, open_disk

MAX_FILES = 40
"""Differing files listed per partition (the rest are counted)."""
SHOWN_BYTES = 16

SEED = (
    "Seed= (systemd-repart derives the disk, partition and file system UUIDs and the verity salt "
    "from it; unset, mkosi picks a random seed for every build)"
)
EPOCH = (
    "SourceDateEpoch= (mkosi clamps every modification time to it and mkfs.erofs takes its build "
    "time from it; unset, they are the build's clock)"
)
PATH_CAUSES: tuple[tuple[str, str], ...] = (
    (
        "/var/log/",
        "a log written during the build (dpkg, apt, alternatives): mkosi leaves /var/log in the "
        "image; empty it in a finalize script (the image mounts a tmpfs there at boot)",
    ),
    (
        "/var/cache/ldconfig/",
        "ldconfig's auxiliary cache records the build tree's inode numbers and times: remove it in a finalize script",
    ),
    (
        "/var/lib/dpkg/",
        "the package database: a package or its version differs (a build input), or "
        "dpkg's own bookkeeping of the build (status-old, available)",
    ),
    ("/etc/machine-id", "a machine ID generated during the build"),
    ("/var/lib/systemd/random-seed", "a random seed written during the build"),
    ("/var/lib/dbus/machine-id", "a machine ID generated during the build"),
    ("/etc/ssh/ssh_host_", "SSH host keys generated during the build"),
)
ESP_CAUSES: tuple[tuple[str, str], ...] = (
    ("grub.cfg", "the kernel command line holds roothash=, which follows the root partition"),
    ("/loader/entries/", "the kernel command line holds roothash=, which follows the root partition"),
    ("initrd", "the initrd mkosi makes (its packages, its cpio order and modification times)"),
    ("vmlinuz", "the kernel package, or its Secure Boot signature"),
    ("/EFI/Linux/", "the UKI: its command line (roothash=), kernel, initrd or signature"),
)


@dataclass
class Difference:
    """One place where the two builds differ."""

    where: str
    """`image`, `gpt`, `partition root`, `root:/path`, `esp:/path`, `pcr11.sha256`, …"""
    what: str
    cause: str = ""
    """The recipe setting or build input that most likely makes it, in words."""


@dataclass
class Comparison:
    """What was compared and where the two images differ."""

    first: Path
    second: Path
    identical: bool = False
    checked: list[tuple[str, str, str]] = field(default_factory=list)
    """(what, first build's value, second build's value)."""
    differences: list[Difference] = field(default_factory=list)

    def check(self, what: str, first: str, second: str) -> None:
        self.checked.append((what, first, second))


def compare_images(first: Path, second: Path, root_hashes: tuple[str, str] | None = None) -> Comparison:
    """Compare two images: digests, root hash, ESP files, predicted registers; narrow each difference."""
    from cvmlint.evidence.inputs import image_inputs
    from cvmlint.image.container import open_image

    result = Comparison(first, second)
    a_in, b_in = image_inputs(first), image_inputs(second)
    result.check("image sha256", a_in["sha256"], b_in["sha256"])
    result.identical = a_in["sha256"] == b_in["sha256"]
    for pa, pb in zip(a_in["partitions"], b_in["partitions"], strict=False):
        result.check(f"partition {pa['number']} ({pa['type']}) sha256", pa["sha256"], pb["sha256"])
    if root_hashes:
        result.check("verity root hash", *root_hashes)
    with open_image(first) as (src_a, _), open_image(second) as (src_b, _):
        disk_a, disk_b = open_disk(src_a), open_disk(src_b)
        _check_boot_files(result, disk_a, disk_b)
        _check_measurements(result, disk_a, disk_b)
        if not result.identical:
            _narrow(result, disk_a, disk_b, a_in, b_in)
    return result


# ---- what is checked ------------------------------------------------------------------------------
def _check_boot_files(result: Comparison, a: Disk, b: Disk) -> None:
    """The digest of every EFI binary, kernel and initrd on the ESP."""
    esp_a, esp_b = _esp_files(a), _esp_files(b)
    if isinstance(esp_a, str) or isinstance(esp_b, str):
        # two ESPs that cannot be read are not two equal ESPs: the check is unknown
        shown = [f"unknown ({esp})" if isinstance(esp, str) else "read" for esp in (esp_a, esp_b)]
        result.check("ESP files", *shown)
        return
    for path in sorted(set(esp_a) | set(esp_b)):
        if path.lower().endswith((".efi", ".cfg", ".conf")) or "vmlinuz" in path or "initrd" in path:
            result.check(f"esp:{path} sha256", esp_a.get(path, ("absent",))[0], esp_b.get(path, ("absent",))[0])


def _check_measurements(result: Comparison, a: Disk, b: Disk) -> None:
    from cvmlint.measure.predict import BANKS, predict

    try:
        pa, pb = predict(a), predict(b)
    except CvmlintError as err:
        result.check("predicted measurements", f"unknown (not predicted: {err})", "")
        return
    for bank in BANKS:
        for (pcr, va), vb in zip(pa.pcrs(bank).items(), pb.pcrs(bank).values(), strict=True):
            result.check(f"predicted PCR {pcr} ({bank})", _show(va), _show(vb))
    for (rtmr, va), vb in zip(pa.rtmrs().items(), pb.rtmrs().values(), strict=True):
        result.check(f"predicted RTMR[{rtmr}]", _show(va), _show(vb))


# ---- narrowing --------------------------------------------------------------------------------------
def _narrow(result: Comparison, a: Disk, b: Disk, a_in: dict[str, Any], b_in: dict[str, Any]) -> None:
    out = result.differences
    out += _gpt(a, b)
    parts_b = {p.entry.number: p for p in b.partitions}
    digests_b = {p["number"]: p["sha256"] for p in b_in["partitions"]}
    for entry in a_in["partitions"]:
        pa, pb = next(p for p in a.partitions if p.entry.number == entry["number"]), parts_b.get(entry["number"])
        if pb is None or digests_b.get(entry["number"]) == entry["sha256"]:
            continue
        found = _partition(pa, pb, a, b)
        out.append(
            Difference(
                f"partition {pa.name}",
                f"{pa.content} content differs ({len(found)} difference{'s' if len(found) != 1 else ''} below)",
            )
        )
        out += found
    if not out:
        out.append(Difference("image", _first_bytes(a.source, b.source, 0, max(a.source.size, b.source.size))))


def _gpt(a: Disk, b: Disk) -> list[Difference]:
    out = []
    if a.table.disk_guid != b.table.disk_guid:
        out.append(Difference("gpt", f"disk GUID {a.table.disk_guid} vs {b.table.disk_guid}", SEED))
    parts_b = {p.number: p for p in b.table.partitions}
    for pa in a.table.partitions:
        pb = parts_b.get(pa.number)
        if pb is None:
            out.append(Difference("gpt", f"partition {pa.number} ({pa.type_name}) only in the first image"))
            continue
        for name in ("type_name", "guid", "name", "first_lba", "last_lba", "attributes"):
            va, vb = getattr(pa, name, None), getattr(pb, name, None)
            if va != vb:
                cause = SEED if name == "guid" else ""
                if name == "guid" and pa.type_name.startswith(("root", "usr")):
                    cause = "the root hash (systemd-repart names a verity pair's partitions after it): see below"
                out.append(Difference("gpt", f"partition {pa.number} ({pa.type_name}) {name}: {va} vs {vb}", cause))
    numbers_a = {p.number for p in a.table.partitions}
    for pb in b.table.partitions:
        if pb.number not in numbers_a:
            out.append(Difference("gpt", f"partition {pb.number} ({pb.type_name}) only in the second image"))
    return out


def _partition(pa: DiskPartition, pb: DiskPartition, a: Disk, b: Disk) -> list[Difference]:
    if pa.source is None or pb.source is None:
        return [Difference(f"partition {pa.name}", f"not readable: {pa.problem or pb.problem}")]
    if pa.content is not pb.content:
        return [
            Difference(f"partition {pa.name}", f"holds {pa.content} in the first image, {pb.content} in the second")
        ]
    narrow = {"verity": _verity, "fat": _fat, "files": _tree}.get(format_of(pa.content).comparison)
    try:
        if narrow is not None:
            return narrow(pa, pb, a, b)
    except CvmlintError as err:
        return [Difference(f"partition {pa.name}", f"could not be compared file by file: {err}")]
    return [Difference(f"partition {pa.name}", _first_bytes(pa.source, pb.source, 0, pa.source.size))]


def _verity(pa: DiskPartition, pb: DiskPartition, a: Disk, b: Disk) -> list[Difference]:
    from cvmlint.image.verity import read_superblock

    assert pa.source is not None and pb.source is not None
    sa, sb = read_superblock(pa.source), read_superblock(pb.source)
    out = []
    if sa.uuid != sb.uuid:
        out.append(Difference(f"{pa.name}:superblock", f"verity UUID {sa.uuid} vs {sb.uuid}", SEED))
    if sa.salt != sb.salt:
        out.append(Difference(f"{pa.name}:superblock", f"verity salt {sa.salt.hex()} vs {sb.salt.hex()}", SEED))
    if not out:
        out.append(
            Difference(
                f"{pa.name}:hash tree",
                "same superblock, different hashes: the data partition it protects differs (see its files)",
            )
        )
    return out


def _superblock_fields(tree: Any) -> dict[str, object]:
    sb = getattr(tree, "sb", None)
    if sb is None or not hasattr(sb, "__dataclass_fields__"):
        return {}
    return {name: getattr(sb, name) for name in sb.__dataclass_fields__}


def _tree(pa: DiskPartition, pb: DiskPartition, a: Disk, b: Disk) -> list[Difference]:
    ta, tb = a.tree(pa), b.tree(pb)
    out = []
    fa, fb = _superblock_fields(ta), _superblock_fields(tb)
    for name, value in fa.items():
        if fb.get(name) != value and name not in ("checksum_ok",):
            cause = SEED if "uuid" in name else EPOCH if name in ("epoch", "fixed_nsec") else ""
            out.append(Difference(f"{pa.name}:superblock", f"{name}: {_show(value)} vs {_show(fb.get(name))}", cause))
    files_a, files_b = _files(ta), _files(tb)
    out += _file_differences(pa.name, files_a, files_b, lambda p: _bytes_of(ta, tb, p))
    if not out:
        assert pa.source is not None and pb.source is not None
        where = _first_bytes(pa.source, pb.source, 0, pa.source.size)
        layout = "; every file and the superblock are the same: the layout differs (file order, or the mkfs version)"
        out.append(Difference(f"partition {pa.name}", where + layout))
    return out


@dataclass(frozen=True)
class _Node:
    kind: str
    mode: int
    owner: str
    size: int
    mtime: int
    digest: str


def _files(tree: Any) -> dict[str, _Node]:
    out = {}
    for path, ino in tree.walk("/"):
        kind = "dir" if ino.is_dir else "link" if ino.is_symlink else "file" if ino.is_reg else "other"
        digest = ""
        if ino.is_reg:
            h = hashlib.sha256()
            for piece in tree.iter_data(ino):
                h.update(piece)
            digest = h.hexdigest()
        elif ino.is_symlink:
            digest = "-> " + tree.readlink(ino)
        out[path] = _Node(kind, ino.mode & 0o7777, f"{ino.uid}:{ino.gid}", ino.size, int(ino.mtime), digest)
    return out


def _fat(pa: DiskPartition, pb: DiskPartition, a: Disk, b: Disk) -> list[Difference]:
    from cvmlint.image.fat import FatFileSystem

    assert pa.source is not None and pb.source is not None
    fa, fb = FatFileSystem(pa.source), FatFileSystem(pb.source)
    out = []
    boot_a, boot_b = pa.source.pread(0, 512), pb.source.pread(0, 512)
    if pa.fs_uuid != pb.fs_uuid:
        out.append(Difference(f"{pa.name}:boot sector", f"volume serial {pa.fs_uuid} vs {pb.fs_uuid}", SEED))
    elif boot_a != boot_b:
        out.append(Difference(f"{pa.name}:boot sector", _first_bytes(pa.source, pb.source, 0, 512)))
    files_a, files_b = _fat_files(fa), _fat_files(fb)
    out += _file_differences(pa.name, files_a, files_b, lambda p: _fat_bytes(fa, fb, p))
    if not out:
        out.append(
            Difference(
                f"partition {pa.name}",
                _first_bytes(pa.source, pb.source, 0, pa.source.size)
                + "; every file and the boot sector are the same: the FAT, a directory entry (such as the "
                "volume label's time stamp: dosfstools before 4.3 takes it from the clock) or the layout differs",
                "the build's clock (mkfs.vfat; SourceDateEpoch= does not reach dosfstools 4.2)",
            )
        )
    return out


def _fat_files(fs: Any) -> dict[str, _Node]:
    out = {}
    for entry in fs.walk():
        digest = "" if entry.is_dir else hashlib.sha256(bytes(fs.read(entry))).hexdigest()
        mtime = int(entry.mtime.timestamp()) if entry.mtime else 0
        out["/" + entry.path.lstrip("/")] = _Node("dir" if entry.is_dir else "file", 0, "", entry.size, mtime, digest)
    return out


def _fat_bytes(fa: Any, fb: Any, path: str) -> str:
    ea, eb = fa.lookup(path), fb.lookup(path)
    return _stream_difference(iter([bytes(fa.read(ea))]), iter([bytes(fb.read(eb))]))


def _bytes_of(ta: Any, tb: Any, path: str) -> str:
    ia, ib = ta.lookup(path, follow=False), tb.lookup(path, follow=False)
    return _stream_difference(ta.iter_data(ia), tb.iter_data(ib))


def _windows(pieces: Iterator[bytes], size: int) -> Iterator[bytes]:
    """The stream cut into windows of `size` bytes (the last shorter)."""
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def _stream_difference(a: Iterator[bytes], b: Iterator[bytes], window: int = 1 << 20) -> str:
    """Sizes, how many bytes differ and the first of them, reading both files a window at a time."""
    import itertools

    size_a = size_b = count = 0
    first: tuple[int, bytes, bytes] | None = None
    for xa, xb in itertools.zip_longest(_windows(a, window), _windows(b, window), fillvalue=b""):
        n = min(len(xa), len(xb))
        if xa[:n] != xb[:n]:
            xor = (int.from_bytes(xa[:n], "big") ^ int.from_bytes(xb[:n], "big")).to_bytes(n, "big")
            count += n - xor.count(0)
            if first is None:
                at = n - len(xor.lstrip(b"\0"))
                first = (size_a + at, xa[at : at + SHOWN_BYTES], xb[at : at + SHOWN_BYTES])
        count += abs(len(xa) - len(xb))
        if first is None and len(xa) != len(xb):
            first = (size_a + n, xa[n : n + SHOWN_BYTES], xb[n : n + SHOWN_BYTES])
        size_a, size_b = size_a + len(xa), size_b + len(xb)
    size = f"{size_a} vs {size_b} bytes" if size_a != size_b else f"{size_a} bytes"
    if first is None:
        return f"{size}, the same bytes"
    at, show_a, show_b = first
    return f"{size}, {count} differ, the first at byte {at}: {show_a.hex(' ')} vs {show_b.hex(' ')}"


def _file_differences(
    partition: str, files_a: dict[str, _Node], files_b: dict[str, _Node], bytes_of: Any
) -> list[Difference]:
    out = []
    mtimes_only = []
    for path in sorted(set(files_a) | set(files_b)):
        na, nb = files_a.get(path), files_b.get(path)
        where = f"{partition}:{path}"
        if na == nb:
            continue
        if na is None or nb is None:
            out.append(Difference(where, f"only in the {'second' if na is None else 'first'} build", _cause(path)))
            continue
        if na.digest != nb.digest:
            detail = bytes_of(path) if na.kind == "file" else f"{na.digest} vs {nb.digest}"
            out.append(Difference(where, f"content differs: {detail}", _cause(path)))
        elif na.mtime != nb.mtime and (na.kind, na.mode, na.owner) == (nb.kind, nb.mode, nb.owner):
            mtimes_only.append(path)
            continue
        else:
            out.append(Difference(where, f"{_meta(na)} vs {_meta(nb)}", _cause(path)))
    if mtimes_only:
        shown = ", ".join(mtimes_only[:5]) + (f" and {len(mtimes_only) - 5} more" if len(mtimes_only) > 5 else "")
        out.append(
            Difference(
                f"partition {partition}", f"{_files_differ(len(mtimes_only))} only in modification time: {shown}", EPOCH
            )
        )
    if len(out) > MAX_FILES:
        out = [
            *out[:MAX_FILES],
            Difference(f"partition {partition}", f"{len(out) - MAX_FILES} more differing files not shown"),
        ]
    return out


def _files_differ(count: int) -> str:
    return f"{count} file differs" if count == 1 else f"{count} files differ"


def _meta(node: _Node) -> str:
    return f"{node.kind} mode {node.mode:04o} owner {node.owner} mtime {node.mtime}"


def _cause(path: str) -> str:
    for prefix, cause in PATH_CAUSES + ESP_CAUSES:
        if (
            path.startswith(prefix)
            or (prefix.startswith(("/EFI", "/loader")) and prefix in path)
            or (not prefix.startswith("/") and prefix in posixpath.basename(path))
        ):
            return cause
    if path.endswith(".pyc"):
        return "Python byte code compiled during the build (it records source times)"
    return ""


def _first_bytes(a: Any, b: Any, start: int, length: int, piece: int = 1 << 20) -> str:
    """Where two byte sources first differ, reading `piece` bytes at a time."""
    offset = start
    end = start + min(length, a.size - start, b.size - start)
    while offset < end:
        n = min(piece, end - offset)
        xa, xb = a.pread(offset, n), b.pread(offset, n)
        if xa != xb:
            at = next(i for i, (x, y) in enumerate(zip(xa, xb, strict=False)) if x != y)
            return (
                f"bytes differ from offset {offset + at - start}: "
                f"{xa[at : at + SHOWN_BYTES].hex(' ')} vs {xb[at : at + SHOWN_BYTES].hex(' ')}"
            )
        offset += n
    return "the same bytes up to the shorter one's end; the sizes differ" if a.size != b.size else "no byte differs"


def _esp_files(disk: Disk) -> dict[str, tuple[str]] | str:
    """The digest of each file on the ESP, or why they cannot be read."""
    esp = disk.by_name("esp")
    if esp is None or esp.source is None:
        return {}
    from cvmlint.image.fat import FatFileSystem

    try:
        fs = FatFileSystem(esp.source)
        return {"/" + e.path.lstrip("/"): (hashlib.sha256(bytes(fs.read(e))).hexdigest(),) for e in _walk_files(fs)}
    except CvmlintError as err:
        return f"the ESP cannot be read: {err}"


def _walk_files(fs: Any) -> Iterator[Any]:
    return (e for e in fs.walk() if not e.is_dir)


def _show(value: object) -> str:
    return value.hex() if isinstance(value, bytes) else str(value)
