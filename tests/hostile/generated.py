"""Hostile inputs made at test time from real ones (too large, or made of Debian's binaries, to commit):
a bzImage whose payload is a kernel ELF with 65,000 sections, one whose gzip payload announces and
expands to 512 MiB, one whose IKCONFIG is not gzip. Each is (target, name, bytes)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator


def _elf(sections: int, body: bytes = b"") -> bytes:
    """A 64-bit x86 ELF header, then `body`, then `sections` empty section headers."""
    shoff = 64 + len(body)
    header = bytearray(64)
    header[:16] = b"\x7fELF\x02\x01\x01" + bytes(9)
    struct.pack_into("<HHIQQQIHHHHHH", header, 16, 2, 62, 1, 0, 0, shoff, 0, 64, 56, 0, 64, sections, 0)
    return bytes(header) + body + bytes(64 * sections)


def _bzimage(real_kernel: bytes, vmlinux: bytes, announce: int | None = None) -> bytes:
    """The real kernel's setup code with `vmlinux` as its gzip payload (payload offset and length patched)."""
    setup = bytearray(real_kernel[: ((real_kernel[0x1F1] or 4) + 1) * 512])
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    payload = bytearray(packer.compress(vmlinux) + packer.flush())
    if announce is not None:
        payload[-4:] = struct.pack("<I", announce & 0xFFFFFFFF)
    struct.pack_into("<II", setup, 0x248, 0, len(payload))
    return bytes(setup) + bytes(payload)


def bzimage_cases(real_kernel: bytes) -> Iterator[tuple[str, str, bytes]]:
    yield "bzimage", "elf-65000-sections", _bzimage(real_kernel, _elf(65_000))
    yield "bzimage", "gzip-512-mib", _bzimage(real_kernel, _elf(0) + bytes(512 << 20))
    yield (
        "bzimage",
        "ikconfig-not-gzip",
        _bzimage(real_kernel, _elf(0, b"IKCFG_ST" + b"\x1f\x8b" + bytes(200) + b"IKCFG_ED")),
    )
