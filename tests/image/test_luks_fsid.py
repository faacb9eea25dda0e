"""LUKS headers made by cryptsetup (read without the key), and identification of every file system."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cvmlint.errors import FormatError
from cvmlint.image.fsid import identify
from cvmlint.image.luks import read_header
from cvmlint.image.source import BytesSource, FileSource
from tests.tools import run

TPM2_TOKEN = {
    "type": "systemd-tpm2",
    "keyslots": ["0"],
    "tpm2-blob": "AAAA",
    "tpm2-pcrs": [7, 11],
    "tpm2-pcr-bank": "sha256",
    "tpm2-primary-alg": "ecc",
    "tpm2-policy-hash": "00" * 32,
    "tpm2-pin": False,
}


def luks(tmp_path: Path, kind: str) -> Path:
    image, key = tmp_path / f"{kind}.img", tmp_path / "key"
    key.write_bytes(b"k" * 32)
    with open(image, "wb") as fh:
        fh.truncate(24 << 20)
    run(
        "cryptsetup",
        "luksFormat",
        "--type",
        kind,
        "--batch-mode",
        "--pbkdf-force-iterations",
        "1000",
        *(["--pbkdf", "pbkdf2"] if kind == "luks2" else []),
        "--label" if kind == "luks2" else "--uuid",
        "data" if kind == "luks2" else "11111111-2222-3333-4444-555555555555",
        image,
        key,
    )
    return image


def test_luks2_header_and_tokens(tmp_path: Path) -> None:
    image = luks(tmp_path, "luks2")
    token = tmp_path / "token.json"
    token.write_text(json.dumps(TPM2_TOKEN))
    run("cryptsetup", "token", "import", "--json-file", token, image)
    header = read_header(FileSource(image))
    dump = run("cryptsetup", "luksDump", image)
    assert header.version == 2 and header.label == "data" and header.checksum_ok is True
    assert header.uuid in dump and header.cipher == "aes-xts-plain64" and header.keyslots == 1
    assert header.token_types == ["systemd-tpm2"] and header.tokens[0]["tpm2-pcrs"] == [7, 11]
    assert header.problems == []
    assert identify(FileSource(image)) == "luks2"


def test_luks1_is_recognised(tmp_path: Path) -> None:
    image = luks(tmp_path, "luks1")
    header = read_header(FileSource(image))
    assert (header.version, header.uuid, header.keyslots) == (1, "11111111-2222-3333-4444-555555555555", 1)
    assert identify(FileSource(image)) == "luks1"


def test_corrupt_luks2_json(tmp_path: Path) -> None:
    data = bytearray(luks(tmp_path, "luks2").read_bytes())
    data[4096:4100] = b"{{{{"
    with pytest.raises(FormatError, match="luks: LUKS2 JSON metadata at byte 4096: not JSON"):
        read_header(BytesSource(bytes(data)))
    data[8:16] = (12345).to_bytes(8, "big")
    with pytest.raises(FormatError, match="header size 12345"):
        read_header(BytesSource(bytes(data)))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["mkfs.ext4", "-q", "-t", "ext4"], "ext4"),
        (["mkfs.ext4", "-q", "-t", "ext3"], "ext3"),
        (["mkfs.ext4", "-q", "-t", "ext2"], "ext2"),
        (["mkfs.vfat", "-F", "32"], "vfat"),
        (["mkfs.vfat", "-F", "16"], "vfat"),
        (["mkswap"], "swap"),
    ],
)
def test_identify_by_magic(tmp_path: Path, argv: list[str], expected: str) -> None:
    image = tmp_path / "fs.img"
    with open(image, "wb") as fh:
        fh.truncate(64 << 20)
    run(*argv, image)
    assert identify(FileSource(image)) == expected


def test_identify_erofs_squashfs_verity_and_nothing(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "f").write_text("x")
    run("mkfs.erofs", "--quiet", tmp_path / "e.img", tree)
    run("mksquashfs", tree, tmp_path / "s.img", "-quiet", "-no-progress")
    (tmp_path / "d").write_bytes(bytes(1 << 20))
    run("veritysetup", "format", tmp_path / "d", tmp_path / "h")
    assert identify(FileSource(tmp_path / "e.img")) == "erofs"
    assert identify(FileSource(tmp_path / "s.img")) == "squashfs"
    assert identify(FileSource(tmp_path / "h")) == "verity"
    assert identify(BytesSource(bytes(8192))) == "empty"
    assert identify(BytesSource(b"\x01" * 8192)) == "unknown"
