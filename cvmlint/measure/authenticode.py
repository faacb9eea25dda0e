"""The Authenticode digest of a PE image: what UEFI firmware extends for each EFI application it loads
(EV_EFI_BOOT_SERVICES_APPLICATION) and what a signature signs.

    headers   bytes [0, checksum) + [checksum + 4, certificate directory entry) + [entry + 8, SizeOfHeaders)
    sections  each section's raw data (PointerToRawData, SizeOfRawData), in file order
    rest      what follows the last section, up to the file size minus the certificate table's size

Checksum at optional header + 64; the certificate table is data directory 4 (optional header + 144 for
PE32+, + 128 for PE32). Facts from the Microsoft PE Authenticode specification and edk2's
DxeTpm2MeasureBootLib (Tcg2MeasurePeImage), checked against OVMF's event log (tests/measure).
"""

from __future__ import annotations

import hashlib
import struct

from cvmlint import limits
from cvmlint.errors import FormatError, reader
from cvmlint.image.source import Buffer

FMT = "pe"


@reader("pe", "Authenticode digest")
def authenticode(data: Buffer, algorithm: str, name: str) -> bytes:
    """The Authenticode digest of the PE image `data` with `algorithm` (a hashlib name)."""
    size = len(data)
    if size < 0x40 or data[:2] != b"MZ":
        raise FormatError(FMT, f"{name} header", 0, "not a PE/COFF image (no MZ signature)")
    pe = int.from_bytes(data[0x3C:0x40], "little")
    if pe + 24 > size or data[pe : pe + 4] != b"PE\0\0":
        raise FormatError(FMT, f"{name} header", 0x3C, f"no PE signature at byte {pe}")
    nsections, opt_size = struct.unpack_from("<H", data, pe + 6)[0], struct.unpack_from("<H", data, pe + 20)[0]
    opt = pe + 24
    if opt + opt_size > size or opt_size < 96:
        raise FormatError(FMT, f"{name} optional header", opt, f"{opt_size} bytes do not fit in the file")
    magic = struct.unpack_from("<H", data, opt)[0]
    if magic not in (0x10B, 0x20B):
        raise FormatError(FMT, f"{name} optional header", opt, f"unknown magic {magic:#06x}")
    headers_size = struct.unpack_from("<I", data, opt + 60)[0]
    checksum = opt + 64
    directories = opt + (112 if magic == 0x20B else 96)
    count = struct.unpack_from("<I", data, directories - 4)[0]
    entry = directories + 4 * 8
    has_certificates = count > 4 and entry + 8 <= opt + opt_size
    cert_size = struct.unpack_from("<I", data, entry + 4)[0] if has_certificates else 0
    if headers_size > size or headers_size < opt + opt_size:
        raise FormatError(FMT, f"{name} optional header", opt + 60, f"SizeOfHeaders {headers_size} is implausible")
    if cert_size > size:
        raise FormatError(FMT, f"{name} certificate directory", entry, f"{cert_size} bytes exceed the file")
    h = hashlib.new(algorithm)
    view = memoryview(data)
    if has_certificates:
        h.update(view[:checksum])
        h.update(view[checksum + 4 : entry])
        h.update(view[entry + 8 : headers_size])
    else:
        h.update(view[:checksum])
        h.update(view[checksum + 4 : headers_size])
    hashed = headers_size
    sections = _sections(data, opt + opt_size, min(nsections, limits.get("pe-sections")), name)
    if sum(raw for _, raw in sections) > size:  # each byte would be hashed again for every section over it
        raise FormatError(
            FMT, f"{name} section table", opt + opt_size, "sections overlap (more raw data than the file)"
        )
    for pointer, raw in sections:
        h.update(view[pointer : pointer + raw])
        hashed += raw
    end = size - cert_size
    if end > hashed:
        h.update(view[hashed:end])
    return h.digest()


def _sections(data: Buffer, table: int, count: int, name: str) -> list[tuple[int, int]]:
    """(PointerToRawData, SizeOfRawData) of each section with raw data, sorted by position."""
    out = []
    for i in range(count):
        off = table + 40 * i
        if off + 40 > len(data):
            raise FormatError(FMT, f"{name} section table", off, "runs past the end of the file")
        raw, pointer = struct.unpack_from("<II", data, off + 16)
        if raw == 0:
            continue
        if pointer + raw > len(data):
            raise FormatError(FMT, f"{name} section {i}", off, f"raw data {pointer}..{pointer + raw} past the end")
        out.append((pointer, raw))
    return sorted(out)
