"""Hostile images: every damaged structure gives a clear error (exit 2) or unknown results with the
reason (exit 1), never a traceback and never a pass for what could not be read."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from cvmlint.image.fat import FatFileSystem
from cvmlint.image.gpt import read_partition_table
from cvmlint.image.source import FileSource
from tests.scan.conftest import scan

pytestmark = pytest.mark.slow


def sparse_copy(src: Path, dest: Path) -> Path:
    subprocess.run(["cp", "--sparse=always", str(src), str(dest)], check=True)
    return dest


def partition_start(image: Path, type_name: str) -> int:
    table = read_partition_table(FileSource(image))
    return next(p.start for p in table.partitions if p.type_name == type_name)


def esp_file_offset(image: Path, path: str) -> int:
    """Byte offset in the image of the first cluster of a file on the ESP (a glob)."""
    start = partition_start(image, "esp")
    table = read_partition_table(FileSource(image))
    esp = next(p for p in table.partitions if p.type_name == "esp")
    fs = FatFileSystem(esp.open(FileSource(image)))
    entry = next(e for e in fs.walk() if fnmatch.fnmatch(e.path, path))
    return start + fs.cluster_offset(entry.first_cluster)


def mark_bad(image: Path, path: str) -> None:
    """Mark the first cluster of a file on the ESP bad in the FAT: its content cannot be read."""
    table = read_partition_table(FileSource(image))
    esp = next(p for p in table.partitions if p.type_name == "esp")
    fs = FatFileSystem(esp.open(FileSource(image)))
    entry = next(e for e in fs.walk() if e.path == path)
    assert fs.bits == 32
    poke(image, esp.start + fs.fat_offset + 4 * entry.first_cluster, (0x0FFFFFF7).to_bytes(4, "little"))


def poke(image: Path, offset: int, data: bytes) -> None:
    with open(image, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


Damage = Callable[[Path], None]
CASES: dict[str, tuple[Damage, str, str]] = {
    # name: (damage, rule that must be unknown, words its reason must hold)
    "esp boot sector zeroed": (
        lambda i: poke(i, partition_start(i, "esp"), bytes(512)),
        "CVM-BOOT-001",
        "ESP cannot be read",
    ),
    "erofs superblock zeroed": (
        lambda i: poke(i, partition_start(i, "root-x86-64") + 1024, bytes(128)),
        "CVM-PKG-002",
        "root file system cannot be read",
    ),
    "verity superblock zeroed": (
        lambda i: poke(i, partition_start(i, "root-x86-64-verity"), bytes(512)),
        "CVM-VER-001",
        "no usable verity superblock",
    ),
    "kernel header overwritten": (
        lambda i: poke(i, esp_file_offset(i, "/vmlinuz-*") + 0x1F0, b"\xff" * 32),
        "CVM-KERN-001",
        "kernel",
    ),
    "grub.cfg cluster chain bad": (lambda i: mark_bad(i, "/EFI/BOOT/grub.cfg"), "CVM-BOOT-001", "cannot be read"),
    "grub.cfg garbage": (
        lambda i: poke(i, esp_file_offset(i, "/EFI/BOOT/grub.cfg"), b"\x00{}\xff}" * 20),
        "CVM-BOOT-001",
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_structures_give_unknowns_with_reasons(hardened_grub: Path, tmp_path: Path, case: str) -> None:
    damage, rule, words = CASES[case]
    image = sparse_copy(hardened_grub, tmp_path / "damaged.raw")
    damage(image)
    run = scan(image)
    assert run.code in (1, 2), run.err
    if run.code == 2:
        assert run.err.startswith("cvmlint:") or ": " in run.err.splitlines()[0]
        return
    result = run.by_rule[rule]
    if words:
        assert result["status"] == "unknown", run.explain(rule)
        assert words in " ".join(result["reasons"]), run.explain(rule)
    else:
        assert result["status"] in ("unknown", "fail"), run.explain(rule)


def test_truncated_image_names_the_partition_that_runs_past_the_end(hardened_grub: Path, tmp_path: Path) -> None:
    image = sparse_copy(hardened_grub, tmp_path / "truncated.raw")
    with open(image, "r+b") as fh:
        fh.truncate(50 << 20)
    run = scan(image, "--no-verity")
    assert run.code == 1
    assert run.out["summary"]["pass"] == 0
    reasons = " ".join(r for result in run.out["results"] for r in result["reasons"])
    assert "partition entry 1" in reasons and "has only 52428800 bytes" in reasons


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "needs 512 bytes"),
        (bytes(range(256)) * 4096, "not a partitioned disk image"),
    ],
)
def test_not_a_disk_image_is_an_input_error(tmp_path: Path, content: bytes, words: str) -> None:
    image = tmp_path / "x.raw"
    image.write_bytes(content)
    run = scan(image)
    assert run.code == 2 and words in run.err and len(run.err.strip().splitlines()) <= 2


def test_the_image_file_is_never_written(hardened_grub: Path, tmp_path: Path) -> None:
    image = sparse_copy(hardened_grub, tmp_path / "ro.raw")
    image.chmod(0o444)
    before = image.stat().st_mtime_ns
    assert scan(image, "--no-verity").code == 1
    assert image.stat().st_mtime_ns == before
    shutil.rmtree(tmp_path, ignore_errors=True)


def root_inode_offset(image: Path, path: str) -> int:
    """Byte offset in the image of the erofs inode of `path` in the root partition."""
    from cvmlint.image.erofs import ErofsFileSystem

    table = read_partition_table(FileSource(image))
    root = next(p for p in table.partitions if p.type_name == "root-x86-64")
    fs = ErofsFileSystem(root.open(FileSource(image)))
    offset: int = root.start + fs.lookup(path).offset
    return offset


def test_a_directory_broken_mid_walk_makes_the_file_rules_unknown_not_the_run(
    hardened_grub: Path, tmp_path: Path
) -> None:
    """The walk of the root meets the damage after thousands of files: the rules that read `files` are
    unknown with the reason; the other rules keep their verdicts and the run ends with exit 1, not 2."""
    image = sparse_copy(hardened_grub, tmp_path / "damaged.raw")
    poke(image, root_inode_offset(image, "/usr/share/doc"), b"\xff\xff")  # an inode format erofs does not have
    run = scan(image)
    assert run.code == 1, run.err
    for rule in ("CVM-FS-004", "CVM-PKG-004", "CVM-PKG-005"):  # their file part reads the walk
        result = run.by_rule[rule]
        assert result["status"] == "unknown", run.explain(rule)
        assert "the input could not be read" in " ".join(result["reasons"]), run.explain(rule)
        assert "inode" in " ".join(result["reasons"]), run.explain(rule)
    # a rule whose package part already fails still fails: what could not be read cannot undo a finding
    assert run.by_rule["CVM-PKG-003"]["status"] == "fail"
    verity = run.by_rule["CVM-VER-001"]  # and dm-verity, reading every block, names the changed one
    assert verity["status"] == "fail" and "first bad data block" in verity["findings"][0]["message"]
