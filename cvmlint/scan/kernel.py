"""The kernel: bzImage header, payload decompressed (capped), strings, known parameters, config, modules.

bzImage  0x1f1 setup sectors | 0x202 "HdrS" | 0x206 boot protocol | 0x20e version string
         pointer (+0x200) | 0x248 payload offset (from the protected-mode code) | 0x24c length
payload  gzip, xz, lzma, bzip2, lz4 (legacy frames), zstd — by magic; the last 4 bytes hold
         the decompressed size (kbuild's size_append); the result is the vmlinux ELF
vmlinux  .init.setup (inside .init.data when not its own section): {char *str, setup_func,
         int early} per __setup/early_param (24 bytes)
         __param: {char *name, mod, ops, u16 perm, s8 level, u8 flags, arg} (40 bytes)
"""

from __future__ import annotations

import array
import bisect
import bz2
import io
import lzma
import mmap
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from typing import Any

from cvmlint import limits
from cvmlint.errors import FormatError, reader
from cvmlint.facts.kconfig import parse_config
from cvmlint.image.source import Buffer

Blob = Buffer | mmap.mmap
"""A decompressed kernel: an unlinked temporary file mapped read-only (tens of MB never held in memory),
or a buffer."""

FMT = "bzimage"
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
SIGNATURE_MARKER = b"~Module signature appended~\n"
_MAGICS = [
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x5d\x00", "lzma"),
    (b"BZh", "bzip2"),
    (b"\x02\x21\x4c\x18", "lz4"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x89LZO", "lzo"),
]


@dataclass
class KernelImage:
    """What a bzImage says about itself."""

    version: str
    boot_protocol: str
    compression: str
    vmlinux: Blob = field(default=b"", repr=False)
    params: set[str] = field(default_factory=set)
    config: dict[str, str] | None = None
    """From IKCONFIG, when built in."""
    problems: list[str] = field(default_factory=list)


@reader("bzimage", "kernel image")
def read_bzimage(data: Buffer, name: str) -> KernelImage:
    """Parse the header, decompress the payload and read the vmlinux inside."""
    if len(data) < 0x270 or data[0x202:0x206] != b"HdrS":
        raise FormatError(FMT, f"{name} setup header", 0x202, "no 'HdrS' boot-protocol signature")
    setup_sects = data[0x1F1] or 4
    protocol = int.from_bytes(data[0x206:0x208], "little")
    version_ptr = int.from_bytes(data[0x20E:0x210], "little")
    version = ""
    if version_ptr and version_ptr + 0x200 < len(data):
        raw = data[version_ptr + 0x200 : version_ptr + 0x200 + 256].split(b"\0", 1)[0]
        version = raw.decode("ascii", "replace").split(" ", 1)[0]
    if protocol < 0x208:
        raise FormatError(
            FMT,
            f"{name} setup header",
            0x206,
            f"boot protocol {protocol >> 8}.{protocol & 0xFF} has no payload fields (needs 2.08)",
        )
    start = (setup_sects + 1) * 512 + int.from_bytes(data[0x248:0x24C], "little")
    length = int.from_bytes(data[0x24C:0x250], "little")
    if start + length > len(data) or length < 8:
        raise FormatError(
            FMT, f"{name} payload", 0x248, f"bytes {start}..{start + length} lie outside the {len(data)}-byte image"
        )
    payload = memoryview(data)[start : start + length]  # no copy of the (multi-MB) payload
    head = bytes(payload[:8])
    kind = next((k for magic, k in _MAGICS if head.startswith(magic)), "unknown")
    image = KernelImage(version, f"{protocol >> 8}.{protocol & 0xFF}", kind)
    if kind in ("unknown", "lzo"):
        image.problems.append(f"payload compression {kind} cannot be decompressed")
        return image
    expected = int.from_bytes(payload[-4:], "little")
    limits.check("kernel-bytes", expected, FMT, f"{name} payload (the size it announces)", start + length - 4)
    image.vmlinux = decompress(payload, kind, expected, f"{name} payload", start)
    if image.vmlinux[:4] != b"\x7fELF":
        image.problems.append("the decompressed payload is not an ELF file")
        return image
    image.params = known_params(image.vmlinux, name)
    image.config = ikconfig(image.vmlinux)
    if not version:
        at = find(image.vmlinux, b"Linux version ")
        words = image.vmlinux[at + 14 : at + 14 + 128].split(None, 1) if at >= 0 else []
        image.version = words[0].decode("ascii", "replace") if words else ""
    return image


def decompress(payload: Buffer | memoryview, kind: str, expected: int, what: str, offset: int) -> Blob:
    """The decompressed payload, refusing more than the size it announces (and the global cap), written
    piece by piece to a temporary file and mapped (the peak is one piece, not the kernel)."""
    most = limits.get("kernel-bytes")
    cap = min(expected or most, most) + 1  # one byte more than announced shows a lie
    out = _Spill()
    try:
        if kind == "gzip":
            _inflate(zlib.decompressobj(31), payload, cap, out)
        elif kind in ("xz", "lzma"):
            fmt = lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE
            _inflate(lzma.LZMADecompressor(fmt), payload, cap, out)
        elif kind == "bzip2":
            _inflate(bz2.BZ2Decompressor(), payload, cap, out)
        elif kind == "zstd":
            _zstd_into(memoryview(payload)[:-4], cap, out)  # without kbuild's size trailer: not a frame
        else:
            _lz4_legacy(memoryview(payload)[4:-4], cap, what, offset, out)
    except (zlib.error, lzma.LZMAError, OSError, ValueError) as err:
        out.discard()
        raise FormatError(FMT, what, offset, f"{kind} data is corrupt: {err}") from None
    except Exception as err:  # zstandard.ZstdError and friends
        out.discard()
        if type(err).__module__.startswith("zstandard"):
            raise FormatError(FMT, what, offset, f"zstd data is corrupt: {err}") from None
        raise
    if expected and out.size != expected:
        out.discard()
        raise FormatError(FMT, what, offset, f"decompresses to {out.size} bytes, but announces {expected}")
    return out.mapped()


PIECE = 1 << 20


class _Spill:
    """Output written to an unlinked temporary file, then mapped read-only."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()  # noqa: SIM115  NOTE: closed by mapped() or discard()
        self.size = 0

    def write(self, piece: Buffer) -> None:
        self.file.write(piece)
        self.size += len(piece)

    def mapped(self) -> Blob:
        with self.file:
            self.file.flush()
            if self.size == 0:
                return b""
            return mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)

    def discard(self) -> None:
        self.file.close()


def _inflate(decoder: Any, payload: Buffer | memoryview, cap: int, out: _Spill) -> None:
    data: Buffer | memoryview = payload
    while out.size < cap and not decoder.eof:
        piece = decoder.decompress(data, min(PIECE, cap - out.size))
        data = getattr(decoder, "unconsumed_tail", b"")  # zlib keeps unread input there; lzma/bz2 inside
        if not piece and not data and getattr(decoder, "needs_input", True):
            break
        out.write(piece)


def _zstd(data: Buffer | memoryview, cap: int) -> bytes:
    import zstandard

    with zstandard.ZstdDecompressor().stream_reader(data) as reader:
        return reader.read(cap)


def _zstd_into(data: Buffer | memoryview, cap: int, out: _Spill) -> None:
    import zstandard

    with zstandard.ZstdDecompressor().stream_reader(data) as reader:
        while out.size < cap:
            piece = reader.read(min(PIECE, cap - out.size))
            if not piece:
                break
            out.write(piece)


def _lz4_legacy(data: memoryview, cap: int, what: str, offset: int, out: _Spill) -> None:
    """Frames of {u32 size, LZ4 block} after the legacy magic."""
    import lz4.block

    pos = 0
    while pos + 4 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "little")
        pos += 4
        if size == 0x184C2102:
            continue
        if size == 0 or pos + size > len(data):
            raise FormatError(FMT, what, offset + pos, f"LZ4 legacy block of {size} bytes runs past the payload")
        try:
            out.write(lz4.block.decompress(data[pos : pos + size], uncompressed_size=8 << 20))
        except lz4.block.LZ4BlockError as err:
            raise FormatError(FMT, what, offset + pos, f"LZ4 block is corrupt: {err}") from None
        if out.size > cap:
            raise FormatError(FMT, what, offset + pos, f"decompresses past the {cap}-byte cap")
        pos += size


WINDOW = 8 << 20


def find(blob: Blob, needle: bytes, start: int = 0, end: int | None = None) -> int:
    """`blob.find` over [start, end); a mapped kernel is searched a window at a time, each window's pages
    given back after it (one search must not make the whole kernel resident)."""
    end = len(blob) if end is None else min(end, len(blob))
    if not isinstance(blob, mmap.mmap):
        return blob.find(needle, start, end)
    for pos in range(start, end, WINDOW):
        stop = min(end, pos + WINDOW + len(needle) - 1)
        found = blob.find(needle, pos, stop)
        _release(blob, pos, stop)
        if found >= 0:
            return found
    return -1


def _release(blob: mmap.mmap, start: int, stop: int) -> None:
    aligned = start - start % mmap.PAGESIZE
    blob.madvise(mmap.MADV_DONTNEED, aligned, stop - aligned)


def _sections(vmlinux: Blob, name: str) -> tuple[dict[str, tuple[int, int, int]], bool]:
    """Section name -> (address, file offset, size), from the ELF section headers (pyelftools)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(_ViewStream(vmlinux))  # type: ignore[arg-type]  # NOTE: a binary stream, not IO[bytes]
        limits.check("kernel-sections", elf.num_sections(), "elf", f"{name} vmlinux section headers", elf["e_shoff"])
        out = {s.name: (s["sh_addr"], s["sh_offset"], s["sh_size"]) for s in elf.iter_sections()}
        return out, elf.elfclass == 64
    except (ELFError, struct.error, ValueError) as err:
        raise FormatError("elf", f"{name} vmlinux", 0, f"unreadable: {err}") from None


class _ViewStream(io.RawIOBase):
    """A read-only stream over a buffer without copying it (io.BytesIO copies a bytearray)."""

    def __init__(self, buffer: Blob) -> None:
        self.view, self.pos = memoryview(buffer), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: len(self.view)}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, size: int | None = -1) -> bytes:
        end = len(self.view) if size is None or size < 0 else min(len(self.view), self.pos + size)
        data = bytes(self.view[self.pos : end])
        self.pos = max(self.pos, end)
        return data


def _string_at(vmlinux: Blob, spans: list[tuple[int, int, int]], address: int) -> str | None:
    """The NUL-terminated string at a virtual address; `spans` are (address, offset, size) sorted."""
    k = bisect.bisect_right(spans, (address, 1 << 64, 0)) - 1
    if k < 0:
        return None
    addr, offset, size = spans[k]
    if not addr <= address < addr + size:
        return None
    pos = offset + (address - addr)
    end = vmlinux.find(b"\0", pos, pos + 256)
    if end < 0:
        return None
    return vmlinux[pos:end].decode("ascii", "replace")


def known_params(vmlinux: Blob, name: str) -> set[str]:
    """Names the kernel accepts on its command line: __setup/early_param and built-in module params."""
    sections, is64 = _sections(vmlinux, name)
    if not is64:
        return set()
    pointers = list(_param_pointers(vmlinux, sections))
    if ".init.setup" in sections:
        pointers += _table(vmlinux, sections[".init.setup"], 24)
    else:
        pointers += _setup_table(vmlinux, sections)
    names = set()
    spans = sorted(v for v in sections.values() if v[0])  # by address: one bisection per pointer
    for pointer in pointers:
        text = _string_at(vmlinux, spans, pointer)
        if text:
            names.add(text.rstrip("=").replace("-", "_"))
    if isinstance(vmlinux, mmap.mmap):
        _release(vmlinux, 0, len(vmlinux))  # the tables' and strings' pages: read again if ever needed
    return names


def _table(vmlinux: Blob, section: tuple[int, int, int], size: int) -> list[int]:
    """The first pointer of every fixed-size entry in a section."""
    _addr, offset, length = section
    return [int.from_bytes(vmlinux[pos : pos + 8], "little") for pos in range(offset, offset + length - size + 1, size)]


def _param_pointers(vmlinux: Blob, sections: dict[str, tuple[int, int, int]]) -> list[int]:
    return _table(vmlinux, sections["__param"], 40) if "__param" in sections else []


def _setup_table(vmlinux: Blob, sections: dict[str, tuple[int, int, int]]) -> list[int]:
    """Find the __setup table inside .init.data, where the linker script puts it.

    A stripped vmlinux has no __setup_start symbol, so look for the longest run of 24-byte
    entries {string in .init.data/.rodata, function in .init.text/.text, early 0 or 1}.
    """
    if ".init.data" not in sections:
        return []

    def bounds(first: str, second: str) -> tuple[int, int, int, int]:
        a, b = (sections.get(n, (0, 0, 0)) for n in (first, second))
        return a[0], a[0] + a[2], b[0], b[0] + b[2]

    s1, e1, s2, e2 = bounds(".init.data", ".rodata")
    c1, d1, c2, d2 = bounds(".init.text", ".text")
    _addr, offset, length = sections[".init.data"]
    n = length // 8
    words = array.array("Q")  # 8 bytes a word, not a tuple of ints
    words.frombytes(memoryview(vmlinux)[offset : offset + 8 * n])
    if sys.byteorder == "big":
        words.byteswap()
    # an entry starting at word s (phase s % 3, index s // 3) qualifies when its third word is 0 or 1:
    # found in one pass over the words, then only those entries are tested
    runs: dict[int, list[tuple[int, int]]] = {0: [], 1: [], 2: []}
    for early_at in [i for i, w in enumerate(words) if w <= 1 and i >= 2]:
        start = early_at - 2
        text, func = words[start], words[start + 1]
        if (c1 <= func < d1 or c2 <= func < d2) and (s1 <= text < e1 or s2 <= text < e2):
            runs[start % 3].append((start // 3, text))
    best: list[int] = []
    for phase in (0, 1, 2):
        run: list[int] = []
        previous = -2
        for index, text in runs[phase]:
            if index != previous + 1 and run:
                best = max(best, run, key=len)
                run = []
            run.append(text)
            previous = index
        best = max(best, run, key=len)
    return best


def data_strings(vmlinux: Blob, needles: tuple[str, ...] | list[str]) -> list[str]:
    """The needles found in the kernel's data: its allocated, non-executable sections with contents
    (.rodata, .data, .init.data …), or the whole image when it has no section headers."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(_ViewStream(vmlinux))  # type: ignore[arg-type]  # NOTE: a binary stream, not IO[bytes]
        spans = [
            (s["sh_offset"], s["sh_offset"] + s["sh_size"])
            for s in elf.iter_sections()
            if s["sh_type"] == "SHT_PROGBITS" and s["sh_flags"] & SHF_ALLOC and not s["sh_flags"] & SHF_EXECINSTR
        ]
    except (ELFError, struct.error, ValueError):
        spans = []
    spans = [(start, end) for start, end in spans if end <= len(vmlinux)] or [(0, len(vmlinux))]
    wanted = {n: n.encode() for n in needles}
    found: set[str] = set()
    longest = max((len(b) for b in wanted.values()), default=1)
    for start, end in spans:  # one pass a window: every needle still missing looked for in it
        for pos in range(start, end, WINDOW):
            stop = min(end, pos + WINDOW + longest - 1)
            found |= {n for n, b in wanted.items() if n not in found and vmlinux.find(b, pos, stop) >= 0}
            if isinstance(vmlinux, mmap.mmap):
                _release(vmlinux, pos, stop)
    return [n for n in needles if n in found]


def ikconfig(vmlinux: Blob) -> dict[str, str] | None:
    """The build configuration embedded with CONFIG_IKCONFIG, if any."""
    start = find(vmlinux, b"IKCFG_ST")
    if start < 0:
        return None
    end = find(vmlinux, b"IKCFG_ED", start)
    if end < 0:
        return None
    try:
        text = zlib.decompressobj(31).decompress(vmlinux[start + 8 : end], 16 << 20).decode("utf-8", "replace")
    except (OSError, EOFError, zlib.error):  # not gzip after all: no configuration to read
        return None
    return parse_config(text)[0]


@reader("module", "signature trailer")
def module_signed(data: Buffer, name: str) -> bool:
    """Whether a module file (.ko, .ko.xz, .ko.zst, .ko.gz) ends with the signature trailer."""
    cap = limits.get("module-bytes")
    if name.endswith(".xz"):
        data = lzma.LZMADecompressor().decompress(data, max_length=cap)
    elif name.endswith(".gz"):
        data = zlib.decompressobj(31).decompress(data, cap)
    elif name.endswith(".zst"):
        data = _zstd(data, cap)
    return data.endswith(SIGNATURE_MARKER)
