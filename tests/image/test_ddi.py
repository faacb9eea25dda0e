"""Discoverable disk images made by systemd-repart 257 (512- and 4096-byte sectors): GPT, ESP,
erofs root and dm-verity read together, checked against repart's own JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cvmlint.image.erofs import ErofsFileSystem
from cvmlint.image.fat import FatFileSystem
from cvmlint.image.fsid import identify
from cvmlint.image.gpt import read_partition_table
from cvmlint.image.source import FileSource
from cvmlint.image.verity import dps_uuids, read_superblock, verify
from tests.image.treecmp import differences, source_tree
from tests.tools import run_trixie

pytestmark = pytest.mark.slow  # builds disks with systemd-repart in a trixie tool root

DEFINITIONS = {
    "00-esp.conf": "[Partition]\nType=esp\nFormat=vfat\nSizeMinBytes=64M\nCopyFiles=/tree/dir/sub:/sub\n",
    "10-root.conf": "[Partition]\nType=root\nFormat=erofs\nCopyFiles=/tree:/\nVerity=data\nVerityMatchKey=root\n"
    "Minimize=best\n",
    "11-root-verity.conf": "[Partition]\nType=root-verity\nVerity=hash\nVerityMatchKey=root\nMinimize=best\n",
}


@pytest.mark.parametrize("sector", [512, 4096])
def test_repart_ddi(trixie: Path, trixie_work: Path, sector: int) -> None:
    defs = trixie_work / "defs"
    defs.mkdir()
    for name, text in DEFINITIONS.items():
        (defs / name).write_text(text)
    name = trixie_work.name
    out = run_trixie(
        trixie,
        "systemd-repart",
        "--empty=create",
        "--size=auto",
        "--offline=yes",
        f"--sector-size={sector}",
        f"--definitions=/work/{name}/defs",
        f"--copy-source=/work/{name}",
        "--seed=0f6e5d4c-3b2a-4190-8776-655443322110",
        "--json=short",
        f"/work/{name}/disk.raw",
    )
    meta = {p["type"]: p for p in json.loads(out)}
    disk = FileSource(trixie_work / "disk.raw")
    table = read_partition_table(disk)
    assert table.sector_size == sector and table.problems == []
    esp, root, hashes = table.partitions
    assert [p.type_name for p in table.partitions] == ["esp", "root-x86-64", "root-x86-64-verity"]
    assert [p.guid for p in table.partitions] == [meta[t]["uuid"] for t in ("esp", "root-x86-64", "root-x86-64-verity")]
    assert root.read_only and hashes.read_only
    assert [identify(p.open(disk)) for p in table.partitions] == ["vfat", "erofs", "verity"]
    assert [e.path for e in FatFileSystem(esp.open(disk)).walk()] == ["/sub", "/sub/text.txt"]
    fs = ErofsFileSystem(root.open(disk))
    tree = trixie_work / "tree"
    got = {}
    from tests.image.treecmp import image_tree

    got = image_tree(fs)
    assert differences(source_tree(tree), got) == []
    sb = read_superblock(hashes.open(disk))
    assert sb.algorithm == "sha256" and sb.hash_type == 1 and len(sb.salt) == 32
    result = verify(root.open(disk), hashes.open(disk))
    assert result.root_hash == meta["root-x86-64"]["roothash"] and result.tree_valid
    assert dps_uuids(result.root_hash) == (root.guid, hashes.guid)
