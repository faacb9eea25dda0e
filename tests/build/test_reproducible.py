"""Reproducible builds without building: the image comparison narrowing a difference down (on disks made
by sfdisk, mkfs.erofs, veritysetup, mkfs.vfat and mtools), the package record (real Debian packages),
and a rebuild's refusals (a recipe file changed, a version the mirror does not serve).

The rebuilds themselves are in test_build.py (heavy: mkosi builds the recipe twice)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.tools import require, run

ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
ROOT_TYPE = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
VERITY_TYPE = "2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5"
MIB = 1 << 20
BASE = {
    "tool": b"hello, world\n",
    "aux": b"ldconfig aux cache 1",
    "fs_uuid": "9d7f1b4e-5c3a-4e21-8f6d-0a1b2c3d4e5f",
    "salt": "5d1b0a7e" * 8,
    "disk": "6a0c5c7e-0d1f-4b2a-9c3d-1e2f3a4b5c6d",
    "esp_mtime": 1700000000,
}


def make_disk(work: Path, **changes: object) -> Path:
    """A GPT disk: a FAT ESP with one EFI file, an erofs root and its verity hash partition."""
    require("mkfs.erofs", "veritysetup", "sfdisk", "mkfs.vfat", "mcopy")
    v: dict[str, Any] = BASE | changes
    work.mkdir(parents=True)
    tree = work / "tree"
    for rel, content in {
        "usr/bin/tool": v["tool"],
        "etc/os-release": b"ID=debian\n",
        "var/cache/ldconfig/aux-cache": v["aux"],
    }.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(content)
    for path in [*tree.rglob("*"), tree]:  # what SourceDateEpoch= does for mkosi
        os.utime(path, (1700000000, 1700000000))
    run("mkfs.erofs", "--quiet", "-T1700000000", "-U", v["fs_uuid"], work / "root.erofs", tree)
    out = run(
        "veritysetup",
        "format",
        "--salt",
        v["salt"],
        "--uuid",
        str(uuid.UUID(int=7)),
        work / "root.erofs",
        work / "root.verity",
    )
    roothash = next(line.split()[-1] for line in out.splitlines() if line.startswith("Root hash"))
    esp_tree = work / "esp/EFI/BOOT"
    esp_tree.mkdir(parents=True)
    (esp_tree / "BOOTX64.EFI").write_bytes(b"MZ not really a loader")
    for path in (esp_tree.parent, esp_tree):
        os.utime(path, (1700000000, 1700000000))
    os.utime(esp_tree / "BOOTX64.EFI", (v["esp_mtime"], v["esp_mtime"]))
    run("mkfs.vfat", "-C", "-F", "32", "--invariant", "-i", "12345678", work / "esp.img", str(34 * 1024))
    run("mcopy", "-s", "-m", "-i", work / "esp.img", work / "esp/EFI", "::/")
    sizes = [34, -(-(work / "root.erofs").stat().st_size // MIB), -(-(work / "root.verity").stat().st_size // MIB)]
    files = [work / "esp.img", work / "root.erofs", work / "root.verity"]
    types = [
        (ESP_TYPE, "esp", "0e1e2e3e-4e5e-4e6e-8e7e-8e9eaebecede"),
        (ROOT_TYPE, "root-x86-64", str(uuid.UUID(roothash[:32]))),
        (VERITY_TYPE, "root-x86-64-verity", str(uuid.UUID(roothash[32:]))),
    ]
    image = work / "disk.raw"
    with open(image, "wb") as fh:
        fh.truncate((sum(sizes) + 2) * MIB)
    lines = ["label: gpt", f"label-id: {v['disk']}", "unit: sectors", "first-lba: 2048"]
    start = 1
    for size, (ptype, name, puuid) in zip(sizes, types, strict=True):
        lines.append(f"start={start * 2048}, size={size * 2048}, type={ptype}, name={name}, uuid={puuid}")
        start += size
    subprocess.run(["sfdisk", "-q", str(image)], input="\n".join(lines) + "\n", text=True, check=True)
    start = 1
    for size, part in zip(sizes, files, strict=True):
        run("dd", f"if={part}", f"of={image}", "bs=1M", f"seek={start}", "conv=notrunc", "status=none")
        start += size
    return image


def test_two_builds_of_the_same_inputs_compare_identical(tmp_path: Path) -> None:
    from cvmlint.build.compare import compare_images

    result = compare_images(make_disk(tmp_path / "a"), make_disk(tmp_path / "b"))
    assert result.identical and result.differences == []
    what = {w for w, _, _ in result.checked}
    assert {"image sha256", "partition 2 (root-x86-64) sha256", "esp:/EFI/BOOT/BOOTX64.EFI sha256"} <= what
    assert any(w.startswith("predicted PCR 11") for w in what) and "predicted RTMR[2]" in what
    assert all(a == b for _, a, b in result.checked)


def test_two_unreadable_esps_are_not_two_equal_esps(tmp_path: Path) -> None:
    from cvmlint.build.compare import compare_images
    from cvmlint.build.rebuild import same

    images = [make_disk(tmp_path / name) for name in "ab"]
    for image in images:  # the same damage to both: the boot sector's bytes per sector, zeroed
        with open(image, "r+b") as fh:
            fh.seek(MIB + 11)
            fh.write(b"\0\0")
    result = compare_images(images[0], images[1])
    assert result.identical  # the bytes are the same; what was compared says what was not
    checked = {w: (a, b) for w, a, b in result.checked}
    assert not any(w.startswith("esp:") for w in checked)
    first, second = checked["ESP files"]
    assert first.startswith("unknown (the ESP cannot be read: ") and same(first, second) is None


def test_a_difference_is_narrowed_to_partition_file_bytes_and_likely_cause(tmp_path: Path) -> None:
    from cvmlint.build.compare import EPOCH, SEED, compare_images

    first = make_disk(tmp_path / "a")
    second = make_disk(
        tmp_path / "b",
        tool=b"hello, World\n",
        aux=b"ldconfig aux cache 2",
        fs_uuid="0b9a8c7d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
        salt="6e2c1b8f" * 8,
        disk="7b1d6d8f-1e2a-4c3b-8d4e-2f3a4b5c6d7e",
        esp_mtime=1700000600,
    )
    result = compare_images(first, second)
    assert not result.identical
    found = {(d.where, d.what.split(":")[0]): d for d in result.differences}
    assert (
        found[("gpt", "disk GUID 6a0c5c7e-0d1f-4b2a-9c3d-1e2f3a4b5c6d vs 7b1d6d8f-1e2a-4c3b-8d4e-2f3a4b5c6d7e")].cause
        == SEED
    )
    assert found[("root-x86-64:superblock", "uuid")].cause == SEED
    tool = found[("root-x86-64:/usr/bin/tool", "content differs")]
    assert "13 bytes, 1 differ, the first at byte 7: 77" in tool.what and "vs 57" in tool.what
    assert "ldconfig" in found[("root-x86-64:/var/cache/ldconfig/aux-cache", "content differs")].cause
    salt = found[("root-x86-64-verity:superblock", f"verity salt {BASE['salt']} vs {'6e2c1b8f' * 8}")]
    assert salt.cause == SEED
    mtimes = next(d for d in result.differences if d.where == "partition esp" and "modification" in d.what)
    assert (
        mtimes.what.endswith("1 file differs only in modification time: /EFI/BOOT/BOOTX64.EFI")
        and mtimes.cause == EPOCH
    )
    # the partition GUIDs of the verity pair follow the root hash, not the seed
    root_guid = next(d for d in result.differences if d.where == "gpt" and "(root-x86-64) guid" in d.what)
    assert "root hash" in root_guid.cause
    # the rendering says all of it within 80 columns
    from cvmlint.build.rebuild import _short

    assert _short("ab" * 32) == "ab" * 8 + "…"


def test_the_package_record_reads_real_debs(tmp_path: Path) -> None:
    from cvmlint.build.pinned import PinError, deb_identity, record
    from tests.measure_images import WORK, busybox

    busybox()  # downloads Debian's busybox-static from this machine's mirror, once
    deb = next((WORK / "busybox").glob("busybox-static_*.deb"))
    cache, recipe = tmp_path / "cache/archives", tmp_path / "recipe/mkosi.packages"
    cache.mkdir(parents=True)
    recipe.mkdir(parents=True)
    shutil.copy(deb, cache / deb.name)
    name, version, arch = deb_identity(deb)
    assert name == "busybox-static" and version and arch == "amd64"
    pins = record([tmp_path / "cache"], [recipe], tmp_path)
    assert [(p.name, p.version, p.architecture, p.origin) for p in pins] == [(name, version, arch, "mirror")]
    import hashlib

    assert pins[0].sha256 == hashlib.sha256(deb.read_bytes()).hexdigest()
    (cache / "broken.deb").write_bytes(b"!<arch>\nnot a package")
    with pytest.raises(PinError, match=r"broken\.deb: not a readable \.deb"):
        record([tmp_path / "cache"], [recipe], tmp_path)


def rebuild(record: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cvmlint", "rebuild", str(record)], cwd=cwd, capture_output=True, text=True
    )


def recorded(tmp_path: Path, packages: list[dict[str, object]]) -> Path:
    """A build summary as `cvmlint build` writes it, recording one recipe file and these packages."""
    (tmp_path / "recipe").mkdir(exist_ok=True)
    conf = tmp_path / "recipe/mkosi.conf"
    conf.write_text("[Distribution]\nDistribution=debian\nRelease=trixie\n")
    import hashlib

    inputs = {
        "schema": "cvmlint.build-inputs/1",
        "recipe": "recipe",
        "gate": True,
        "distribution": "debian",
        "release": "trixie",
        "command_line": {"distribution": None, "release": None, "architecture": None, "profiles": [], "mkosi_args": []},
        "files": [{"path": "recipe/mkosi.conf", "sha256": hashlib.sha256(conf.read_bytes()).hexdigest()}],
        "packages": packages,
    }
    doc = {"image": {"path": str(tmp_path / "first.raw"), "sha256": "0" * 64, "root_hash": ""}, "inputs": inputs}
    path = tmp_path / "first.build.json"
    path.write_text(json.dumps(doc))
    return path


def test_a_rebuild_refuses_a_changed_recipe_file_naming_it(tmp_path: Path) -> None:
    record = recorded(tmp_path, [])
    (tmp_path / "recipe/mkosi.conf").write_text("[Distribution]\nDistribution=debian\nRelease=forky\n")
    proc = rebuild(record, tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "the recipe file recipe/mkosi.conf changed since the first build" in proc.stderr


def test_a_record_without_inputs_cannot_be_rebuilt(tmp_path: Path) -> None:
    (tmp_path / "old.build.json").write_text(json.dumps({"image": {"path": "x.raw"}}))
    proc = rebuild(tmp_path / "old.build.json", tmp_path)
    assert proc.returncode == 2 and "records no build inputs" in proc.stderr


@pytest.mark.slow
def test_a_version_the_mirror_no_longer_serves_stops_the_rebuild_naming_it(tmp_path: Path) -> None:
    """Against this machine's mirror: the trixie index is read, the made-up version is not in it."""
    pin = {"name": "busybox-static", "version": "1:0.0-gone", "architecture": "amd64", "sha256": "1" * 64,
           "size": 1, "origin": "mirror"}  # fmt: skip
    proc = rebuild(recorded(tmp_path, [pin]), tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "busybox-static 1:0.0-gone (amd64): the mirror no longer serves this version" in proc.stderr


def test_only_debian_images_are_rebuilt_from_pinned_packages(tmp_path: Path) -> None:
    record = recorded(tmp_path, [])
    doc = json.loads(record.read_text())
    doc["inputs"]["distribution"] = "ubuntu"
    record.write_text(json.dumps(doc))
    proc = rebuild(record, tmp_path)
    assert proc.returncode == 2 and "only Debian images are rebuilt" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "packages": [
                    {
                        "name": "../../etc/cron.d/x",
                        "version": "1",
                        "architecture": "amd64",
                        "sha256": "1" * 64,
                        "size": 1,
                        "origin": "mirror",
                    }
                ]
            },
            "is not a Debian package name",
        ),
        ({"packages": [{"name": "busybox"}]}, "recorded package 0 is malformed"),
        ({"files": "recipe/mkosi.conf"}, "a malformed build record (files)"),
        ({"recipe": 7}, "a malformed build record (recipe)"),
    ],
)
def test_a_malformed_record_is_refused_before_anything_is_fetched(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    record = recorded(tmp_path, [])
    doc = json.loads(record.read_text())
    doc["inputs"] |= change
    record.write_text(json.dumps(doc))
    proc = rebuild(record, tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and message in proc.stderr, proc.stderr


def test_a_record_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.build.json").write_text("[1, 2]")
    proc = rebuild(tmp_path / "x.build.json", tmp_path)
    assert proc.returncode == 2 and "not a build summary" in proc.stderr
