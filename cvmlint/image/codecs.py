"""Block decompressors with output caps: raw LZ4, MicroLZMA, raw DEFLATE, Zstandard.

Every decoder is told the exact (or maximum) output size and refuses to produce more, so a
hostile input cannot make cvmlint allocate more than the format's own limits.
"""

from __future__ import annotations

import lzma
import zlib
from collections.abc import Iterator

from cvmlint.errors import FormatError


def lz4_block(data: bytes, out_size: int, fmt: str, structure: str, offset: int) -> bytes:
    """The first `out_size` bytes of one raw LZ4 block (no frame).

    The block may be followed by padding (erofs images without LZ4_0PADDING leave the pcluster's
    end unused) and may encode more than `out_size` bytes (partially referenced pclusters).
    """
    import lz4.block

    try:
        out: bytes = lz4.block.decompress(data, uncompressed_size=out_size)
        if len(out) == out_size:
            return out
    except lz4.block.LZ4BlockError:
        pass
    end = _lz4_stream_end(data, out_size)
    if end is not None:
        try:
            out = lz4.block.decompress(data[:end], uncompressed_size=out_size)
            if len(out) == out_size:
                return out
        except lz4.block.LZ4BlockError:
            pass
    return _lz4_decode_prefix(data, out_size, fmt, structure, offset)


def _lz4_sequences(data: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    """(literal start, literal count, match offset, match length, next position) per LZ4 sequence."""
    p, n = 0, len(data)
    while p < n:
        token = data[p]
        p += 1
        lit = token >> 4
        if lit == 15:
            while p < n:
                lit += data[p]
                p += 1
                if data[p - 1] != 255:
                    break
        start = p
        p += lit
        if p + 2 > n:
            yield start, lit, 0, 0, p
            return
        moff = data[p] | data[p + 1] << 8
        p += 2
        mlen = (token & 15) + 4
        if token & 15 == 15:
            while p < n:
                mlen += data[p]
                p += 1
                if data[p - 1] != 255:
                    break
        yield start, lit, moff, mlen, p


def _lz4_stream_end(data: bytes, out_size: int) -> int | None:
    """Where the LZ4 stream ends if it decodes to exactly `out_size` bytes (ending in literals)."""
    out = 0
    for start, lit, _moff, mlen, _nxt in _lz4_sequences(data):
        out += lit
        if out == out_size:
            return start + lit
        if out > out_size:
            return None
        out += mlen
    return None


def _lz4_decode_prefix(data: bytes, out_size: int, fmt: str, structure: str, offset: int) -> bytes:
    """Pure-Python LZ4 decoding that stops after `out_size` bytes (the partial-decoding case)."""
    out = bytearray()
    for start, lit, moff, mlen, _nxt in _lz4_sequences(data):
        if start + lit > len(data):
            break
        out += data[start : start + lit]
        if len(out) >= out_size:
            return bytes(out[:out_size])
        if moff == 0 or moff > len(out):
            raise FormatError(fmt, structure, offset, f"LZ4 match offset {moff} points before the output start")
        for _ in range(mlen):
            out.append(out[-moff])
        if len(out) >= out_size:
            return bytes(out[:out_size])
    raise FormatError(fmt, structure, offset, f"LZ4 data decodes to {len(out)} bytes, expected {out_size}")


def microlzma(data: bytes, out_size: int, fmt: str, structure: str, offset: int, dict_size: int = 8 << 20) -> bytes:
    """Decode a MicroLZMA stream (LZMA1 whose first byte holds the inverted lc/lp/pb properties)."""
    if not data:
        raise FormatError(fmt, structure, offset, "empty MicroLZMA stream")
    props = (~data[0]) & 0xFF
    if props >= 9 * 5 * 5:
        raise FormatError(fmt, structure, offset, f"invalid MicroLZMA properties byte {data[0]:#04x}")
    lc, rest = props % 9, props // 9
    lp, pb = rest % 5, rest // 5
    decoder = lzma.LZMADecompressor(
        lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": dict_size}]
    )
    try:
        out = decoder.decompress(b"\0" + data[1:], max_length=out_size)
    except lzma.LZMAError as err:
        raise FormatError(fmt, structure, offset, f"MicroLZMA data is corrupt ({err})") from None
    if len(out) != out_size:
        raise FormatError(fmt, structure, offset, f"MicroLZMA data decodes to {len(out)} bytes, expected {out_size}")
    return out


def raw_deflate(data: bytes, out_size: int, fmt: str, structure: str, offset: int) -> bytes:
    """Decode raw DEFLATE (no zlib header) to `out_size` bytes."""
    decoder = zlib.decompressobj(-15)
    try:
        out = decoder.decompress(data, out_size)
    except zlib.error as err:
        raise FormatError(fmt, structure, offset, f"DEFLATE data is corrupt ({err})") from None
    if len(out) != out_size:
        raise FormatError(fmt, structure, offset, f"DEFLATE data decodes to {len(out)} bytes, expected {out_size}")
    return out


def zstd_frame(data: bytes, out_size: int, fmt: str, structure: str, offset: int) -> bytes:
    """Decode one Zstandard frame, refusing more than `out_size` bytes."""
    try:
        import zstandard
    except ImportError:  # pragma: no cover - zstandard is a dependency
        raise FormatError(fmt, structure, offset, "unsupported algorithm: zstd (install 'zstandard')") from None
    try:
        out = zstandard.ZstdDecompressor().decompress(data, max_output_size=out_size)
    except zstandard.ZstdError as err:
        raise FormatError(fmt, structure, offset, f"Zstandard data is corrupt ({err})") from None
    if len(out) < out_size:
        raise FormatError(fmt, structure, offset, f"Zstandard data decodes to {len(out)} bytes, expected {out_size}")
    return out[:out_size]


_CRC32C_TABLE: list[int] = []


def crc32c_raw(seed: int, data: bytes) -> int:
    """CRC32C (Castagnoli, reflected 0x82F63B78) without final inversion, as erofs computes it."""
    if not _CRC32C_TABLE:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _CRC32C_TABLE.append(c)
    crc = seed
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc
