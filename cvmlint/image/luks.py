"""LUKS headers, read without any key: LUKS1 recognised, LUKS2 binary header and JSON metadata.

    byte 0   magic "LUKS\\xba\\xbe" (secondary header: "SKUL\\xba\\xbe") | version (be16: 1 or 2)
    LUKS2:   hdr_size (be64) | seqid | label[48] | checksum_alg[32] | salt[64] | uuid[40] | subsystem[48]
             | hdr_offset (be64) | … | csum[64] at 448; JSON area from byte 4096 to hdr_size
             (keyslots, tokens, segments, digests, config); a second copy at offset hdr_size.
Facts from cryptsetup lib/luks2/luks2.h and luks2_disk_metadata.c.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from typing import Any

from cvmlint.errors import FormatError, reader
from cvmlint.image.source import ByteSource, read_exact, unpack

FMT = "luks"
MAGIC = b"LUKS\xba\xbe"
MAGIC2 = b"SKUL\xba\xbe"
_LUKS2 = struct.Struct(">6sHQQ48s32s64s40s48sQ")
HDR_SIZES = (0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000)


@dataclass
class LuksHeader:
    """What a LUKS header says, without the key."""

    version: int
    uuid: str
    label: str = ""
    cipher: str = ""
    """Cipher of the first data segment (LUKS2) or cipher-mode (LUKS1)."""
    keyslots: int = 0
    tokens: list[dict[str, Any]] = field(default_factory=list)
    """Token objects (type, keyslots, and for systemd-tpm2 the PCRs)."""
    segments: list[dict[str, Any]] = field(default_factory=list)
    checksum_ok: bool | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def token_types(self) -> list[str]:
        """`systemd-tpm2`, `clevis`, `systemd-fido2`, …"""
        return [str(t.get("type", "?")) for t in self.tokens]


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


@reader("luks", "header")
def read_header(src: ByteSource) -> LuksHeader:
    """Parse a LUKS1 or LUKS2 header."""
    head = read_exact(src, 0, 512, FMT, "header")
    if head[:6] != MAGIC:
        raise FormatError(FMT, "header", 0, "no LUKS magic")
    version = int.from_bytes(head[6:8], "big")
    if version == 1:
        cipher, mode = _text(head[8:40]), _text(head[40:72])
        active = sum(1 for i in range(8) if int.from_bytes(head[208 + 48 * i : 212 + 48 * i], "big") == 0x00AC71F3)
        return LuksHeader(1, _text(head[168:208]), cipher=f"{cipher}-{mode}", keyslots=active)
    if version != 2:
        raise FormatError(FMT, "header", 6, f"unknown LUKS version {version}")
    return _luks2(src, head)


def _luks2(src: ByteSource, head: bytes) -> LuksHeader:
    (_magic, _v, hdr_size, _seq, label, csum_alg, _salt, uid, _sub, hdr_offset) = unpack(
        _LUKS2, head, 0, FMT, "LUKS2 header"
    )
    if hdr_size not in HDR_SIZES:
        raise FormatError(FMT, "LUKS2 header", 8, f"header size {hdr_size} is not one LUKS2 allows")
    if hdr_offset != 0:
        raise FormatError(FMT, "LUKS2 header", 256, f"primary header claims offset {hdr_offset}")
    area = read_exact(src, 0, hdr_size, FMT, "LUKS2 header and JSON area")
    header = LuksHeader(2, _text(uid), label=_text(label))
    header.checksum_ok = _checksum(area, _text(csum_alg))
    if header.checksum_ok is False:
        header.problems.append("primary header checksum mismatch")
    text = area[4096:].split(b"\0", 1)[0]
    try:
        doc = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(FMT, "LUKS2 JSON metadata", 4096, f"not JSON: {err}") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), dict) for k in ("keyslots", "segments")):
        raise FormatError(FMT, "LUKS2 JSON metadata", 4096, "missing keyslots or segments objects")
    header.keyslots = len(doc["keyslots"])
    header.tokens = [t for _, t in sorted(doc.get("tokens", {}).items()) if isinstance(t, dict)]
    header.segments = [s for _, s in sorted(doc["segments"].items()) if isinstance(s, dict)]
    header.cipher = str(header.segments[0].get("encryption", "")) if header.segments else ""
    second = src.pread(hdr_size, 6)
    if second != MAGIC2:
        header.problems.append(f"no secondary header at byte {hdr_size}")
    return header


def _checksum(area: bytes, algorithm: str) -> bool | None:
    try:
        h = hashlib.new(algorithm)
    except ValueError:
        return None
    body = bytearray(area)
    stored = bytes(body[448 : 448 + 64])
    body[448 : 448 + 64] = bytes(64)
    h.update(body)
    digest = h.digest()
    return stored[: len(digest)] == digest
