"""PE/COFF EFI binaries: sections (long names resolved) and Authenticode signer subjects.

byte 0x3c   offset of "PE\\0\\0"; then the COFF header (machine, sections, symbol table …),
            the optional header (PE32+: magic 0x20b) with data directory 4 = the certificate
            table: a file offset and size of WIN_CERTIFICATE records
            {u32 length, u16 revision, u16 type (2 = PKCS#7 SignedData), DER bytes}, 8-aligned
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from cvmlint import limits
from cvmlint.errors import FormatError, reader
from cvmlint.facts.provenance import Unknown
from cvmlint.image.source import Buffer

FMT = "pe"
WIN_CERT_PKCS7 = 2


@dataclass
class PeImage:
    """What cvmlint reads from an EFI binary."""

    sections: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Section name -> (file offset, size): the content, without the padding to the file alignment."""
    virtual_sizes: dict[str, int] = field(default_factory=dict)
    """Section name -> VirtualSize: its size in memory (zero-filled past the file's data)."""
    signers: list[str] = field(default_factory=list)
    """Subject of the signing certificate of each Authenticode signature."""
    signature_problems: list[str] = field(default_factory=list)
    subsystem: int = 0

    @property
    def signed(self) -> bool | Unknown:
        """Carries at least one readable Authenticode signature; unknown when its only signatures cannot
        be read (a certificate table is not a signature until a signer is found in it)."""
        if self.signers:
            return True
        if self.signature_problems:
            return Unknown("; ".join(self.signature_problems))
        return False


def section(data: Buffer, pe: PeImage, name: str) -> bytes:
    """A section's content; empty when the image has no such section."""
    if name not in pe.sections:
        return b""
    offset, size = pe.sections[name]
    return bytes(data[offset : offset + size])


def section_in_memory(data: Buffer, pe: PeImage, name: str) -> bytes:
    """A section as a loader sees it in memory: VirtualSize bytes, zero-filled past the file's data."""
    content = section(data, pe, name)
    missing = pe.virtual_sizes.get(name, len(content)) - len(content)
    if missing > 0:
        limits.check("boot-file-bytes", len(content) + missing, FMT, f"section {name} in memory")
    return content + bytes(max(0, missing))


def is_pe(data: Buffer) -> bool:
    """An MZ header pointing at a PE signature."""
    if data[:2] != b"MZ" or len(data) < 0x40:
        return False
    off = int.from_bytes(data[0x3C:0x40], "little")
    return data[off : off + 4] == b"PE\0\0"


@reader("pe", "PE image")
def parse_pe(data: Buffer, name: str) -> PeImage:
    """Sections and signatures of a PE image held in memory."""
    if not is_pe(data):
        raise FormatError(FMT, f"{name} header", 0, "not a PE/COFF image (no MZ/PE signature)")
    pe_off = int.from_bytes(data[0x3C:0x40], "little")
    if pe_off + 24 > len(data):
        raise FormatError(FMT, f"{name} COFF header", pe_off, "runs past the end of the file")
    _machine, nsections, _time, symtab, nsyms, opt_size, _chars = struct.unpack_from("<HHIIIHH", data, pe_off + 4)
    opt = pe_off + 24
    if opt + opt_size > len(data) or opt_size < 2:
        raise FormatError(FMT, f"{name} optional header", opt, "runs past the end of the file")
    magic = int.from_bytes(data[opt : opt + 2], "little")
    if magic not in (0x10B, 0x20B):
        raise FormatError(FMT, f"{name} optional header", opt, f"unknown magic {magic:#06x}")
    image = PeImage(subsystem=int.from_bytes(data[opt + 68 : opt + 70], "little"))
    dirs = opt + (112 if magic == 0x20B else 96)
    table = opt + opt_size
    strings = symtab + nsyms * 18 if symtab else 0
    for i in range(min(nsections, limits.get("pe-sections"))):
        off = table + 40 * i
        if off + 40 > len(data):
            raise FormatError(FMT, f"{name} section table", off, "runs past the end of the file")
        raw_name = bytes(data[off : off + 8]).rstrip(b"\0")
        virtual_size = int.from_bytes(data[off + 8 : off + 12], "little")
        raw_size, pointer = struct.unpack_from("<II", data, off + 16)
        size = min(virtual_size, raw_size) if virtual_size else raw_size  # the raw data is padded to alignment
        sec_name = _long_name(data, raw_name, strings)
        if pointer + size > len(data):
            raise FormatError(
                FMT,
                f"{name} section {sec_name}",
                off,
                f"data {pointer}..{pointer + size} lies past the end of the file ({len(data)} bytes)",
            )
        image.sections.setdefault(sec_name, (pointer, size))
        image.virtual_sizes.setdefault(sec_name, virtual_size or raw_size)
    if dirs + 40 <= opt + opt_size:
        cert_off, cert_size = struct.unpack_from("<II", data, dirs + 32)
        if cert_size:
            _signatures(data, cert_off, cert_size, name, image)
    return image


def _long_name(data: Buffer, raw: bytes, strings: int) -> str:
    text = raw.decode("ascii", "replace")
    if text.startswith("/") and text[1:].isdigit() and strings:
        start = strings + int(text[1:])
        end = data.find(b"\0", start, start + 256)
        if start < len(data) and end > start:
            return data[start:end].decode("ascii", "replace")
    return text


def _signatures(data: Buffer, offset: int, size: int, name: str, image: PeImage) -> None:
    if offset + size > len(data):
        raise FormatError(FMT, f"{name} certificate table", offset, f"{size} bytes run past the end of the file")
    pos, end = offset, offset + size
    for _ in range(limits.get("pe-certificates")):
        if pos + 8 > end:
            break
        length, _rev, kind = struct.unpack_from("<IHH", data, pos)
        if length < 8 or pos + length > end:
            raise FormatError(FMT, f"{name} WIN_CERTIFICATE", pos, f"length {length} does not fit the table")
        if kind == WIN_CERT_PKCS7:
            signer = _signer(bytes(data[pos + 8 : pos + length]), image)
            if signer:
                image.signers.append(signer)
        pos += (length + 7) // 8 * 8


def _signer(der: bytes, image: PeImage) -> str:
    """The subject of the leaf certificate in a PKCS#7 SignedData (the one that issued no other), or ""
    with the problem noted when there is none to read."""
    import warnings

    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import pkcs7
    from cryptography.x509 import InvalidVersion

    try:
        with warnings.catch_warnings():
            # NOTE: Authenticode's SpcIndirectDataContent makes cryptography fall back to BER, with a warning
            warnings.simplefilter("ignore")
            certs = pkcs7.load_der_pkcs7_certificates(der)
        issuers = {c.issuer.rfc4514_string() for c in certs}
        leaves = [c for c in certs if c.subject.rfc4514_string() not in issuers] or certs
        if not leaves:
            image.signature_problems.append("a PKCS#7 signature holds no certificate")
            return ""
        return leaves[0].subject.rfc4514_string()
    except (ValueError, UnsupportedAlgorithm, InvalidVersion) as err:
        image.signature_problems.append(f"signature is not a readable PKCS#7 structure: {type(err).__name__}: {err}")
        return ""
