"""dm-verity: root hashes equal veritysetup's for every format variant; a flipped bit is found."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import pytest

from cvmlint.errors import FormatError
from cvmlint.image import verity
from cvmlint.image.source import BytesSource, FileSource, SliceSource
from cvmlint.image.verity import dps_uuids, read_signature_partition, read_superblock, verify
from tests.tools import run

VARIANTS = {
    "default": [],
    "sha1": ["--hash", "sha1"],
    "sha512-1k-512": ["--hash", "sha512", "--data-block-size", "1024", "--hash-block-size", "512"],
    "chromeos-format-0": ["--format", "0"],
    "sha384-no-salt": ["--hash", "sha384", "--salt", "-"],
    "format-0-sha1-512": ["--format", "0", "--hash", "sha1", "--data-block-size", "512"],
    "single-block": ["--data-blocks", "1"],
    "partial-data": ["--data-blocks", "1000"],
}


def make(tmp_path: Path, options: list[str], size: int = 24 << 20) -> tuple[Path, Path, str]:
    data, hashes = tmp_path / "data", tmp_path / "hash"
    data.write_bytes(random.Random(5).randbytes(size))
    out = run("veritysetup", "format", *options, data, hashes)
    root = next(line.split()[-1] for line in out.splitlines() if line.startswith("Root hash"))
    return data, hashes, root


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("workers", [1, 2])
def test_root_hash_equals_veritysetup(tmp_path: Path, variant: str, workers: int) -> None:
    data, hashes, root = make(tmp_path, VARIANTS[variant])
    result = verify(FileSource(data), FileSource(hashes), workers=workers)
    assert result.root_hash == root and result.stored_root_hash == root
    assert result.tree_valid and result.first_bad_data_block is None
    sb = read_superblock(FileSource(hashes))
    dump = run("veritysetup", "dump", hashes)
    assert f"Hash type:       \t{sb.hash_type}" in dump and sb.algorithm in dump
    assert (sb.salt.hex() or "-") in dump


def test_flipped_bit_names_the_data_block(tmp_path: Path) -> None:
    data, hashes, root = make(tmp_path, [])
    raw = bytearray(data.read_bytes())
    raw[1234 * 4096 + 77] ^= 0x10
    data.write_bytes(bytes(raw))
    result = verify(FileSource(data), FileSource(hashes))
    assert result.root_hash != root and result.stored_root_hash == root  # the tree is intact, the data is not
    assert not result.tree_valid and result.first_bad_data_block == 1234
    assert result.problems[0].startswith("level 0, hash block")
    assert "data block 1234" in result.problems[0]


@pytest.mark.parametrize("variant", ["default", "chromeos-format-0"])
def test_small_chunks_shared_by_the_workers_and_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str
) -> None:
    """With 96 chunks for two workers, the caller hashes too once it waits; a flipped bit in a chunk
    near the end is still named."""
    monkeypatch.setattr(verity, "CHUNK", 256 << 10)
    data, hashes, root = make(tmp_path, VARIANTS[variant])
    pending = verity.start_verify(FileSource(data), FileSource(hashes), workers=2)
    assert len(pending.level0.procs) == 2
    assert verity.finish_verify(pending).root_hash == root
    raw = bytearray(data.read_bytes())
    raw[6000 * 4096] ^= 1
    data.write_bytes(bytes(raw))
    result = verity.verify(FileSource(data), FileSource(hashes), workers=2)
    assert result.first_bad_data_block == 6000 and result.stored_root_hash == root


def test_tampered_upper_level(tmp_path: Path) -> None:
    data, hashes, root = make(tmp_path, [])
    raw = bytearray(hashes.read_bytes())
    raw[4096 + 5] ^= 1  # the top level sits first, right after the superblock block
    hashes.write_bytes(bytes(raw))
    result = verify(FileSource(data), FileSource(hashes))
    assert result.root_hash == root  # recomputed from the data, not trusted from the tree
    assert result.stored_root_hash != root  # what the kernel would find against roothash=
    assert not result.tree_valid and result.first_bad_data_block is None
    top = result.levels - 1
    assert result.problems == [f"level {top}, hash block 1: stored digests differ from the recomputed ones"]


def test_data_partition_inside_a_disk_image(tmp_path: Path) -> None:
    data, hashes, root = make(tmp_path, [])
    disk = BytesSource(b"\xaa" * 8192 + data.read_bytes() + b"\xbb" * 4096, "disk")
    result = verify(SliceSource(disk, 8192, data.stat().st_size, "part"), FileSource(hashes))
    assert result.root_hash == root


def test_malformed_superblock_and_sizes(tmp_path: Path) -> None:
    data, hashes, _ = make(tmp_path, [])
    raw = bytearray(hashes.read_bytes())
    bad = bytearray(raw)
    bad[0:6] = b"VERITY"
    with pytest.raises(FormatError, match="verity: superblock at byte 0: no 'verity' signature"):
        read_superblock(BytesSource(bytes(bad)))
    bad = bytearray(raw)
    bad[64:68] = (3000).to_bytes(4, "little")
    with pytest.raises(FormatError, match="data block size 3000 is not a power of two"):
        read_superblock(BytesSource(bytes(bad)))
    bad = bytearray(raw)
    bad[32:40] = b"nohash\0\0"
    with pytest.raises(FormatError, match="unsupported hash algorithm 'nohash'"):
        verify(FileSource(data), BytesSource(bytes(bad)))
    with pytest.raises(FormatError, match="exceed the data partition"):
        verify(BytesSource(data.read_bytes()[: 1 << 20]), FileSource(hashes))
    with pytest.raises(FormatError, match="hash tree at byte 4096: needs"):
        verify(FileSource(data), BytesSource(bytes(raw[:8192])))


def test_dps_uuids_and_signature_json() -> None:
    root = "5f1e9d7c3b2a41f0e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5"
    assert dps_uuids(root) == (str(uuid.UUID(root[:32])), str(uuid.UUID(root[32:])))
    doc = {"rootHash": root, "signature": "MIIB", "certificateFingerprint": "ab" * 32}
    sig = read_signature_partition(BytesSource(json.dumps(doc).encode() + bytes(4096)))
    assert sig.root_hash == root and sig.signature == b"0\x82\x01"
    with pytest.raises(FormatError, match="needs string fields rootHash and signature"):
        read_signature_partition(BytesSource(b'{"rootHash": 1}' + bytes(100)))
