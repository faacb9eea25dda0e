"""The compression map of an erofs inode: which compressed extent holds which bytes of a file.

    map header   8 bytes after the inode (8-aligned): fragment offset or inline tail size | advise
                 | algorithm of HEAD1/HEAD2 | lcluster bits
    full index   8 bytes per lcluster: type | cluster offset | block address or deltas
    compact      2- or 4-byte entries packed 16 or 2 to a pack, the pack's base block address last

An extent starts at a HEAD (or PLAIN) lcluster and runs to the next one; NONHEAD lclusters say how far
back their head is (delta[0]) and how far ahead the next (delta[1]); a big pcluster's block count rides
in the first NONHEAD after its head (CBLKCNT). Facts from erofs-utils 1.9.3 lib/zmap.c and the kernel's
fs/erofs/zmap.c.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cvmlint.errors import FormatError
from cvmlint.image.source import unpack

FMT = "erofs"
_MAP_HEADER = struct.Struct("<IHBB")
_FULL_INDEX = struct.Struct("<HHI")

SHIFTED, INTERLACED = -1, -2
"""Pseudo-algorithms of PLAIN extents: stored as is, or rotated within their block (interlaced)."""
ADVISE_COMPACTED_2B = 0x1
ADVISE_BIG_PCLUSTER_1 = 0x2
ADVISE_BIG_PCLUSTER_2 = 0x4
ADVISE_INLINE_PCLUSTER = 0x8
ADVISE_INTERLACED_PCLUSTER = 0x10
ADVISE_FRAGMENT_PCLUSTER = 0x20
FRAGMENT_WHOLE = 0x80
"""In the header's lcluster-bits byte: the whole file is one fragment, the rest of the header its offset."""
RESERVED_BITS = 0x70
LCLUSTER_BITS = 0x0F
TYPE_PLAIN, TYPE_HEAD1, TYPE_NONHEAD, TYPE_HEAD2 = range(4)
D0_CBLKCNT = 1 << 11
PARTIAL_REF = 1 << 15

Meta = Callable[[int, int, str], bytes]
"""Reads metadata bytes (offset, length, what they are) from the image, bounds-checked."""


@dataclass(frozen=True)
class ZHeader:
    advise: int
    algs: tuple[int, int]
    lclusterbits: int
    idata_size: int
    fragmentoff: int
    whole_fragment: bool


@dataclass
class LCluster:
    type: int
    clusterofs: int
    delta0: int = 0
    delta1: int = 0
    pblk: int = 0
    cblkcnt: int = 0
    partial: bool = False
    nextpackoff: int = 0


@dataclass(frozen=True)
class Extent:
    la: int
    llen: int
    kind: str
    """`pcluster`, `inline` (ztailpacking) or `fragment`."""
    pa: int = 0
    plen: int = 0
    alg: int = 0
    partial: bool = False


class ZMap:
    """The compression map of one compressed inode (full or compact index)."""

    def __init__(self, meta: Meta, ino: Any, blkszbits: int, full: bool) -> None:
        self._meta = meta
        self.ino = ino
        self.blkszbits = blkszbits
        self.bs = 1 << blkszbits
        self.full = full
        self.zh = self._header()

    def _header(self) -> ZHeader:
        """The map header after the inode: algorithms, lcluster size, what the tail holds."""
        ino = self.ino
        pos = -(-ino.body // 8) * 8
        raw = self._meta(pos, 8, f"compression map header of inode {ino.nid}")
        word, advise, algs, clusterbits = unpack(_MAP_HEADER, raw, 0, FMT, "map header")
        if clusterbits & FRAGMENT_WHOLE:
            fragoff = int.from_bytes(raw, "little") ^ (1 << 63)
            return ZHeader(ADVISE_FRAGMENT_PCLUSTER, (0, 0), self.blkszbits, 0, fragoff, True)
        if self.full and advise & 0x1:
            raise FormatError(
                FMT, f"compression map of inode {ino.nid}", pos, "encoded extents (erofs-utils 1.9) are not supported"
            )
        if clusterbits & RESERVED_BITS:
            raise FormatError(FMT, f"compression map of inode {ino.nid}", pos + 7, f"reserved bits {clusterbits:#x}")
        lbits = self.blkszbits + (clusterbits & LCLUSTER_BITS)
        if lbits > 20:
            raise FormatError(FMT, f"compression map of inode {ino.nid}", pos + 7, f"lcluster 2^{lbits} too large")
        if not self.full and bool(advise & ADVISE_BIG_PCLUSTER_1) != bool(advise & ADVISE_BIG_PCLUSTER_2):
            raise FormatError(
                FMT,
                f"compression map of inode {ino.nid}",
                pos + 4,
                "big pcluster HEAD1/HEAD2 flags disagree in a compact index",
            )
        idata = word >> 16 if advise & ADVISE_INLINE_PCLUSTER else 0
        fragoff = word if advise & ADVISE_FRAGMENT_PCLUSTER else 0
        return ZHeader(advise, (algs & 0xF, algs >> 4), lbits, idata, fragoff, False)

    def lcluster(self, lcn: int) -> LCluster:
        ino, zh = self.ino, self.zh
        if self.full:
            pos = -(-ino.body // 8) * 8 + 16 + lcn * 8
            raw = self._meta(pos, 8, f"lcluster {lcn} index of inode {ino.nid}")
            advise, clusterofs, word = unpack(_FULL_INDEX, raw, 0, FMT, "lcluster index")
            kind = advise & 3
            if kind == TYPE_NONHEAD:
                d0, d1 = word & 0xFFFF, word >> 16
                lc = LCluster(kind, 1 << zh.lclusterbits, d0, d1, nextpackoff=pos + 8)
                if d0 & D0_CBLKCNT:
                    lc.cblkcnt, lc.delta0 = d0 & ~D0_CBLKCNT, 1
                return lc
            return LCluster(kind, clusterofs, pblk=word, partial=bool(advise & PARTIAL_REF), nextpackoff=pos + 8)
        return self.compact_lcluster(lcn)

    def compact_lcluster(self, lcn: int) -> LCluster:
        ino, zh = self.ino, self.zh
        ebase = -(-ino.body // 8) * 8 + 8
        lbits = zh.lclusterbits
        total = -(-ino.size // self.bs)
        if lcn >= total or lbits > 14:
            raise FormatError(FMT, f"compact index of inode {ino.nid}", ebase, f"lcluster {lcn} out of range")
        initial = ((32 - ebase % 32) // 4) & 7
        two_b = (total - initial) // 16 * 16 if zh.advise & ADVISE_COMPACTED_2B and initial < total else 0
        pos, shift, rel = ebase, 2, lcn
        if rel >= initial:
            pos += initial * 4
            rel -= initial
            if rel < two_b:
                shift = 1
            else:
                pos += two_b * 2
                rel -= two_b
        pos += rel << shift
        vcnt = 2 if shift == 2 else 16
        if shift == 1 and lbits > 12:
            raise FormatError(FMT, f"compact index of inode {ino.nid}", pos, "2-byte pack with lclusters over 4 KiB")
        pack_size = vcnt << shift
        pack_start = pos - pos % pack_size
        pack = self._meta(pack_start, pack_size, f"compact index pack of inode {ino.nid}")
        lobits = max(lbits, 12)
        encodebits = ((pack_size - 4) * 8) // vcnt
        i = (pos - pack_start) >> shift

        def decode(j: int) -> tuple[int, int]:
            bit = encodebits * j
            v = int.from_bytes(pack[bit // 8 : bit // 8 + 4].ljust(4, b"\0"), "little") >> (bit & 7)
            return v & ((1 << lobits) - 1), (v >> lobits) & 3

        lo, kind = decode(i)
        nextpack = pack_start + pack_size
        if kind == TYPE_NONHEAD:
            lc = LCluster(kind, 1 << lbits, nextpackoff=nextpack)
            lc.delta1 = _lookahead(decode, i, vcnt)
            big = bool(zh.advise & ADVISE_BIG_PCLUSTER_1)
            if lo & D0_CBLKCNT:
                if not big:
                    raise FormatError(FMT, f"compact index of inode {ino.nid}", pos, "CBLKCNT without big pcluster")
                lc.cblkcnt, lc.delta0 = lo & ~D0_CBLKCNT, 1
            elif i + 1 != vcnt:
                lc.delta0 = lo
            else:  # the last entry of a pack stores delta[1]; delta[0] comes from its neighbour
                plo, ptype = decode(i - 1)
                lc.delta0 = (0 if ptype != TYPE_NONHEAD else 1 if plo & D0_CBLKCNT else plo) + 1
            return lc
        base = int.from_bytes(pack[-4:], "little")
        return LCluster(
            kind,
            lo,
            pblk=base + _heads_before(decode, i, bool(zh.advise & ADVISE_BIG_PCLUSTER_1), ino, pos),
            nextpackoff=nextpack,
        )

    def head_of(self, ofs: int) -> int:
        """The lcluster number of the HEAD/PLAIN lcluster whose extent holds byte `ofs` (bounded walk back)."""
        ino, zh = self.ino, self.zh
        lcn = ofs >> zh.lclusterbits
        lc = self.lcluster(lcn)
        if lc.type != TYPE_NONHEAD and ofs & ((1 << zh.lclusterbits) - 1) >= lc.clusterofs:
            return lcn
        distance = lc.delta0 if lc.type == TYPE_NONHEAD else 1
        for _ in range(1 << 20):
            if distance == 0 or distance > lcn:
                raise FormatError(
                    FMT,
                    f"compression map of inode {ino.nid}",
                    ino.offset,
                    f"bogus lookback distance {distance} at lcluster {lcn}",
                )
            lcn -= distance
            lc = self.lcluster(lcn)
            if lc.type != TYPE_NONHEAD:
                return lcn
            distance = lc.delta0
        raise FormatError(FMT, f"compression map of inode {ino.nid}", ino.offset, "lookback does not end")

    def heads(self) -> Iterator[tuple[int, int, LCluster]]:
        """(lcn, logical start, lcluster) of each HEAD/PLAIN lcluster starting an extent, in order."""
        ino, zh = self.ino, self.zh
        lbits = zh.lclusterbits
        for lcn in range(-(-ino.size // (1 << lbits))):
            lc = self.lcluster(lcn)
            if lc.type == TYPE_NONHEAD:
                continue
            if lc.clusterofs >= 1 << lbits:
                raise FormatError(
                    FMT,
                    f"lcluster {lcn} of inode {ino.nid}",
                    ino.offset,
                    f"clusterofs {lc.clusterofs} is past the lcluster",
                )
            la = (lcn << lbits) | lc.clusterofs
            if la < ino.size:
                yield lcn, la, lc

    def extents(self) -> Iterator[Extent]:
        """The file's extents in order, produced as the lcluster indexes are walked."""
        ino, zh = self.ino, self.zh
        if zh.whole_fragment:
            yield Extent(0, ino.size, "fragment", pa=zh.fragmentoff)
            return
        heads = self.heads()
        current = next(heads, None)
        if current is None or current[1] != 0:
            raise FormatError(FMT, f"compression map of inode {ino.nid}", ino.offset, "does not start at offset 0")
        while current is not None:
            lcn, la, lc = current
            current = next(heads, None)
            yield self.extent(lcn, la, lc, current[1] if current is not None else ino.size)

    def extent_at(self, offset: int) -> Extent:
        """The extent holding byte `offset`, found without walking the whole map (back to its head,
        then forward by delta[1] to the next one), as the kernel's map_blocks does."""
        ino, zh = self.ino, self.zh
        if zh.whole_fragment:
            return Extent(0, ino.size, "fragment", pa=zh.fragmentoff)
        lbits = zh.lclusterbits
        lcn = self.head_of(offset)
        lc = self.lcluster(lcn)
        total = -(-ino.size // (1 << lbits))
        end, n = ino.size, lcn + 1
        for _ in range(total):
            if n >= total:
                break
            nxt = self.lcluster(n)
            if nxt.type != TYPE_NONHEAD:
                end = min(ino.size, (n << lbits) | nxt.clusterofs)
                break
            n += max(1, nxt.delta1)
        return self.extent(lcn, (lcn << lbits) | lc.clusterofs, lc, end)

    def extent(self, lcn: int, la: int, lc: LCluster, end: int) -> Extent:
        """The extent starting at HEAD/PLAIN lcluster `lcn` (logical start `la`) and ending at `end`."""
        ino, zh = self.ino, self.zh
        llen = end - la
        if llen <= 0:
            raise FormatError(FMT, f"lcluster {lcn} of inode {ino.nid}", ino.offset, "extents out of order")
        alg = SHIFTED if lc.type == TYPE_PLAIN else zh.algs[0 if lc.type == TYPE_HEAD1 else 1]
        if lc.type == TYPE_PLAIN and zh.advise & ADVISE_INTERLACED_PCLUSTER:
            alg = INTERLACED
        if end == ino.size and (zh.idata_size or zh.advise & ADVISE_FRAGMENT_PCLUSTER):
            last = (ino.size - 1) >> zh.lclusterbits
            if lcn == self.head_of(ino.size - 1):
                if zh.idata_size:
                    return Extent(la, llen, "inline", self.lcluster(last).nextpackoff, zh.idata_size, alg, lc.partial)
                off = zh.fragmentoff | ((lc.pblk << 32) if self.full else 0)
                return Extent(la, llen, "fragment", pa=off)
        blocks = self.compressed_blocks(lcn, lc)
        return Extent(la, llen, "pcluster", lc.pblk * self.bs, blocks * self.bs, alg, lc.partial)

    def compressed_blocks(self, lcn: int, lc: LCluster) -> int:
        ino, zh = self.ino, self.zh
        big = zh.advise & (ADVISE_BIG_PCLUSTER_1 if lc.type == TYPE_HEAD1 else ADVISE_BIG_PCLUSTER_2)
        if not big or ((lcn + 1) << zh.lclusterbits) >= ino.size:
            return 1
        nxt = self.lcluster(lcn + 1)
        if nxt.type != TYPE_NONHEAD:
            return 1
        if nxt.delta0 != 1 or not nxt.cblkcnt:
            raise FormatError(
                FMT,
                f"lcluster {lcn + 1} of inode {ino.nid}",
                ino.offset,
                "big pcluster without its compressed block count (CBLKCNT)",
            )
        return nxt.cblkcnt


def _lookahead(decode: object, i: int, vcnt: int) -> int:
    """delta[1] of a NONHEAD compact entry: the distance to the next HEAD (or to the pack's end)."""
    assert callable(decode)
    d1, lo, j = 0, 0, i
    while j < vcnt:
        lo, kind = decode(j)
        if kind != TYPE_NONHEAD:
            return d1
        d1 += 1
        j += 1
    if not lo & D0_CBLKCNT:
        d1 += lo - 1
    return d1


def _heads_before(decode: object, i: int, big: bool, ino: Any, pos: int) -> int:
    """Blocks between a compact pack's base address and the pcluster of its HEAD entry `i`."""
    assert callable(decode)
    if not big:
        nblk = 1
        while i > 0:
            i -= 1
            lo, kind = decode(i)
            if kind == TYPE_NONHEAD:
                i -= lo
            if i >= 0:
                nblk += 1
        return nblk
    nblk = 0
    while i > 0:
        i -= 1
        lo, kind = decode(i)
        if kind == TYPE_NONHEAD:
            if lo & D0_CBLKCNT:
                i -= 1
                nblk += lo & ~D0_CBLKCNT
                continue
            if lo <= 1:
                raise FormatError(FMT, f"compact index of inode {ino.nid}", pos, "big pcluster with delta0 <= 1")
            i -= lo - 2
            continue
        nblk += 1
    return nblk
