"""dm-verity: the superblock of a hash partition, and the root hash recomputed from the data.

    hash partition, byte 0 (512 bytes, little-endian):
      "verity\\0\\0" | version=1 | hash_type (1 normal, 0 Chrome OS) | uuid[16] | algorithm[32]
      | data block size | hash block size | data blocks (u64) | salt size (u16) | pad[6] | salt[256]
    the tree follows from hash block ceil((offset + 512) / hash_block_size): the top level first,
    the level hashing the data blocks last.
    format 1: digest = H(salt || block), each digest in a zero-padded power-of-two slot
    format 0: digest = H(block || salt), digests packed
    root hash = digest of the single top-level block (of data block 0 when there is one data block)

Level 0 — every data block — is hashed by worker processes over the data partition's file
descriptor (hashlib holds the GIL for 4 KiB buffers); memory stays bounded by the digests
(32 bytes per data block) and one read buffer per worker.
Facts from cryptsetup lib/verity/verity.c and verity_hash.c.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import multiprocessing
import os
import struct
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import overload

from cvmlint.errors import FormatError, reader
from cvmlint.image.source import ByteSource, FileSource, SliceSource, read_exact, unpack

FMT = "verity"
SIGNATURE = b"verity\0\0"
_SB = struct.Struct("<8sII16s32sIIQH6s256s")
MAX_LEVELS = 63
READ_CHUNK = 1 << 20
CHUNK = 16 << 20
WORKER_NICENESS = 10
"""Data blocks are handed out to the hashing processes in pieces of this many bytes."""
Progress = Callable[[str, int, int], None]
"""(what is being read, bytes done, bytes in all): a long read reports how far it is."""
HASHING = "dm-verity: hashing the root"
"""Called with (bytes hashed, bytes in total)."""


@dataclass(frozen=True)
class VeritySuperblock:
    """The dm-verity superblock written by `veritysetup format` (and systemd-repart)."""

    version: int
    hash_type: int
    uuid: str
    algorithm: str
    data_block_size: int
    hash_block_size: int
    data_blocks: int
    salt: bytes
    offset: int = 0
    """Byte offset of the superblock (the hash area offset) in the hash partition."""

    @property
    def first_hash_block(self) -> int:
        """Index (in hash blocks) of the first tree block: after the superblock."""
        return -(-(self.offset + 512) // self.hash_block_size)


@dataclass
class VerityResult:
    """The recomputed root hash and how the stored tree compares with the data."""

    root_hash: str
    """Recomputed from the data partition."""
    algorithm: str
    hash_type: int
    data_block_size: int
    hash_block_size: int
    data_blocks: int
    salt: str
    levels: int
    tree_valid: bool
    first_bad_data_block: int | None = None
    """The first data block whose digest differs from the stored level-0 digest."""
    problems: list[str] = field(default_factory=list)
    """Level by level: where the stored tree departs from the recomputed one."""
    stored_root_hash: str = ""
    """The digest of the stored tree's top block: what the kernel checks against roothash=."""


@reader("verity", "superblock")
def read_superblock(src: ByteSource, offset: int = 0) -> VeritySuperblock:
    """Parse the superblock at `offset` of a hash partition."""
    raw = read_exact(src, offset, 512, FMT, "superblock")
    (sig, version, hash_type, uid, alg, dbs, hbs, blocks, salt_size, _pad, salt) = unpack(
        _SB, raw, 0, FMT, "superblock"
    )
    if sig != SIGNATURE:
        raise FormatError(FMT, "superblock", offset, "no 'verity' signature")
    if version != 1:
        raise FormatError(FMT, "superblock", offset + 8, f"unsupported version {version}")
    if hash_type not in (0, 1):
        raise FormatError(FMT, "superblock", offset + 12, f"unknown hash type {hash_type}")
    for name, size, at in (("data", dbs, 64), ("hash", hbs, 68)):
        if size < 512 or size > 1 << 20 or size & (size - 1):
            raise FormatError(
                FMT, "superblock", offset + at, f"{name} block size {size} is not a power of two in 512..1048576"
            )
    if salt_size > 256:
        raise FormatError(FMT, "superblock", offset + 80, f"salt size {salt_size} exceeds 256")
    if blocks == 0:
        raise FormatError(FMT, "superblock", offset + 72, "zero data blocks")
    algorithm = alg.rstrip(b"\0").decode("ascii", "replace").lower()
    if algorithm not in ALGORITHMS:
        raise FormatError(
            FMT,
            "superblock",
            offset + 32,
            f"unsupported hash algorithm {algorithm!r} (cvmlint recomputes {', '.join(sorted(ALGORITHMS))})",
        )
    return VeritySuperblock(
        version, hash_type, str(uuid.UUID(bytes=uid)), algorithm, dbs, hbs, blocks, salt[:salt_size], offset
    )


ALGORITHMS = frozenset({"sha1", "sha224", "sha256", "sha384", "sha512", "md5"})
"""Hashes dm-verity is used with that hashlib computes with a fixed digest size."""


def _hasher(algorithm: str) -> hashlib._Hash:
    try:
        return hashlib.new(algorithm)
    except ValueError:
        raise FormatError(FMT, "superblock", 32, f"unsupported hash algorithm {algorithm!r}") from None


@dataclass(frozen=True)
class _Geometry:
    digest_size: int
    slot: int
    per_block_bits: int
    level_start: tuple[int, ...]
    """Hash-block index of each level (0 = the level hashing data blocks)."""
    level_size: tuple[int, ...]


def geometry(sb: VeritySuperblock) -> _Geometry:
    """Where each level of the tree lies, as veritysetup lays it out."""
    ds = _hasher(sb.algorithm).digest_size
    bits = (sb.hash_block_size // ds).bit_length() - 1
    if bits <= 0:
        raise FormatError(FMT, "superblock", 68, f"hash block size {sb.hash_block_size} below the digest size")
    levels = 0
    while bits * levels < 64 and (sb.data_blocks - 1) >> (bits * levels):
        levels += 1
    if levels > MAX_LEVELS:
        raise FormatError(FMT, "superblock", 72, "hash tree needs more than 63 levels")
    starts = [0] * levels
    sizes = [0] * levels
    position = sb.first_hash_block
    for i in range(levels - 1, -1, -1):
        starts[i] = position
        sizes[i] = -(-sb.data_blocks // (1 << ((i + 1) * bits)))
        position += sizes[i]
    slot = 1 << (ds - 1).bit_length() if sb.hash_type == 1 else ds
    return _Geometry(ds, slot, bits, tuple(starts), tuple(sizes))


def _block_digest(sb: VeritySuperblock, block: bytes | memoryview) -> bytes:
    if sb.hash_type == 1:
        h = _hasher(sb.algorithm)
        h.update(sb.salt)
        h.update(block)
        return h.digest()
    h = _hasher(sb.algorithm)
    h.update(block)
    h.update(sb.salt)
    return h.digest()


class _PackedLevel(Sequence[bytes]):
    """The hash blocks holding `count` digests, laid out as veritysetup writes them, each made when it is
    read (a 1 GiB root's level 0 is 2,048 blocks: compared and hashed one at a time, never held)."""

    def __init__(self, sb: VeritySuperblock, geo: _Geometry, digests: bytes | memoryview, count: int) -> None:
        self.sb, self.geo, self.digests, self.digest_count = sb, geo, digests, count
        self.per_block = 1 << geo.per_block_bits

    def __len__(self) -> int:
        return -(-self.digest_count // self.per_block)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return [self[k] for k in range(*index.indices(len(self)))]
        if not 0 <= index < len(self):
            raise IndexError(index)
        geo, ds = self.geo, self.geo.digest_size
        start = index * self.per_block
        n = min(self.per_block, self.digest_count - start)
        if geo.slot == ds:
            body = bytes(self.digests[start * ds : (start + n) * ds])
        else:
            pad = bytes(geo.slot - ds)
            body = b"".join(bytes(self.digests[k * ds : (k + 1) * ds]) + pad for k in range(start, start + n))
        return body + bytes(self.sb.hash_block_size - len(body))


def _fd_and_offset(src: ByteSource) -> tuple[int, int] | None:
    offset = 0
    while isinstance(src, SliceSource):
        offset += src.start
        src = src.parent
    if isinstance(src, FileSource):
        return src.fileno(), offset
    return None


def _hash_range(fd: int, base: int, sb: VeritySuperblock, first: int, last: int, out: mmap.mmap) -> None:
    """Hash data blocks [first, last) of `fd` at `base`; digests into the shared `out`.

    The data is mapped (no copy, and resident memory bounded by the range, at most one chunk).
    """
    bs, ds = sb.data_block_size, _hasher(sb.algorithm).digest_size
    start = base + first * bs
    aligned = start - start % mmap.ALLOCATIONGRANULARITY
    skip = start - aligned
    n = last - first
    populate = getattr(mmap, "MAP_POPULATE", 0)  # the pages mapped in one call, not one fault each
    window = mmap.mmap(fd, skip + n * bs, mmap.MAP_SHARED | populate, mmap.PROT_READ, offset=aligned)
    window.madvise(mmap.MADV_SEQUENTIAL)
    view = memoryview(window)
    digests: list[bytes] = []
    add = digests.append
    if sb.hash_type == 1:
        seed = _hasher(sb.algorithm)
        seed.update(sb.salt)
        copy = seed.copy
        for o in range(skip, skip + n * bs, bs):
            h = copy()
            h.update(view[o : o + bs])
            add(h.digest())
    else:
        for o in range(skip, skip + n * bs, bs):
            add(_block_digest(sb, view[o : o + bs]))
    view.release()
    window.close()
    out[first * ds : last * ds] = b"".join(digests)


class _Level0:
    """The digests of every data block, computed by forked workers while the caller goes on (or serially
    when `wait` is called, for a small partition or one that is not a plain file).

    The blocks go in chunks of CHUNK bytes to whoever asks next: each worker, and the caller once it
    waits, so the work ends on every core at about the same time whatever else the caller had to do.
    """

    def __init__(self, data: ByteSource, sb: VeritySuperblock, workers: int) -> None:
        self.data, self.sb, self.workers = data, sb, workers
        self.digests = mmap.mmap(-1, max(1, sb.data_blocks * _hasher(sb.algorithm).digest_size))
        self.procs: list[multiprocessing.process.BaseProcess] = []
        self.per_chunk = max(1, CHUNK // sb.data_block_size)
        self.state = mmap.mmap(-1, 16)  # next chunk to claim (u64), blocks hashed (u64)
        located = _fd_and_offset(data)
        if located is None or workers <= 1 or sb.data_blocks < 4096:
            return
        self.fd, self.base = located
        ctx = multiprocessing.get_context("fork")
        self.lock = ctx.Lock()
        self.procs = [ctx.Process(target=self._work, args=(True,)) for _ in range(workers)]
        for p in self.procs:
            p.start()

    def _claim(self) -> tuple[int, int] | None:
        """The next chunk's blocks [first, last), or None when every chunk is taken."""
        with self.lock:
            chunk = struct.unpack_from("<Q", self.state)[0]
            first = chunk * self.per_chunk
            if first >= self.sb.data_blocks:
                return None
            struct.pack_into("<Q", self.state, 0, chunk + 1)
        return first, min(first + self.per_chunk, self.sb.data_blocks)

    def _finished(self, blocks: int) -> None:
        with self.lock:
            struct.pack_into("<Q", self.state, 8, struct.unpack_from("<Q", self.state, 8)[0] + blocks)

    def _work(self, in_worker: bool, progress: Progress | None = None) -> None:
        if in_worker:  # the caller's own reading comes first; the workers take the time it leaves
            with contextlib.suppress(OSError):
                os.nice(WORKER_NICENESS)
        try:
            while (claimed := self._claim()) is not None:
                _hash_range(self.fd, self.base, self.sb, *claimed, self.digests)
                self._finished(claimed[1] - claimed[0])
                if progress:
                    self._report(progress)
        except (OSError, ValueError):
            if in_worker:
                os._exit(1)
            raise FormatError(FMT, "data partition", 0, "could not read every data block") from None

    def _report(self, progress: Progress) -> None:
        hashed = struct.unpack_from("<Q", self.state, 8)[0]
        progress(HASHING, hashed * self.sb.data_block_size, self.sb.data_blocks * self.sb.data_block_size)

    def wait(self, progress: Progress | None) -> mmap.mmap:
        if not self.procs:
            _hash_serially(self.data, self.sb, self.digests, progress)
            return self.digests
        self._work(False, progress)
        while any(p.is_alive() for p in self.procs):
            if progress:
                self._report(progress)
            time.sleep(0.005)
        for p in self.procs:
            p.join()
        if any(p.exitcode != 0 for p in self.procs):
            raise FormatError(FMT, "data partition", 0, "could not read every data block (a hashing worker failed)")
        if progress:
            self._report(progress)
        return self.digests

    def cancel(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.kill()
            p.join()


def _hash_serially(data: ByteSource, sb: VeritySuperblock, out: mmap.mmap, progress: Progress | None) -> None:
    bs, ds = sb.data_block_size, _hasher(sb.algorithm).digest_size
    per = max(1, READ_CHUNK // bs)
    for first in range(0, sb.data_blocks, per):
        n = min(per, sb.data_blocks - first)
        chunk = read_exact(data, first * bs, n * bs, FMT, f"data block {first}")
        view = memoryview(chunk)
        for k in range(n):
            pos = (first + k) * ds
            out[pos : pos + ds] = _block_digest(sb, view[k * bs : (k + 1) * bs])
        if progress:
            progress(HASHING, (first + n) * bs, sb.data_blocks * bs)


@reader("verity", "hash tree")
def verify(
    data: ByteSource,
    hashes: ByteSource,
    sb: VeritySuperblock | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> VerityResult:
    """Recompute the root hash from `data` and compare the stored tree in `hashes` with it, level by level."""
    return finish_verify(start_verify(data, hashes, sb, workers), progress)


@dataclass
class PendingVerity:
    """A verification whose data blocks are being hashed: `finish_verify` waits and compares."""

    hashes: ByteSource
    sb: VeritySuperblock
    geo: _Geometry
    level0: _Level0


@reader("verity", "hash tree")
def start_verify(
    data: ByteSource, hashes: ByteSource, sb: VeritySuperblock | None = None, workers: int | None = None
) -> PendingVerity:
    """Check the geometry and start hashing the data blocks in worker processes (when it pays)."""
    sb = sb or read_superblock(hashes)
    geo = geometry(sb)
    if sb.data_blocks * sb.data_block_size > data.size:
        raise FormatError(
            FMT,
            "superblock",
            sb.offset + 72,
            f"{sb.data_blocks} data blocks of {sb.data_block_size} bytes exceed the data partition ({data.size} bytes)",
        )
    tree_end = (geo.level_start[0] + geo.level_size[0]) * sb.hash_block_size if geo.level_size else 0
    if tree_end > hashes.size:
        raise FormatError(
            FMT,
            "hash tree",
            sb.first_hash_block * sb.hash_block_size,
            f"needs {tree_end} bytes but the hash partition has {hashes.size}",
        )
    return PendingVerity(hashes, sb, geo, _Level0(data, sb, workers or min(2, os.cpu_count() or 1)))


@reader("verity", "hash tree")
def finish_verify(pending: PendingVerity, progress: Progress | None = None) -> VerityResult:
    """Wait for the data blocks' digests, build the levels above them and compare them with the stored tree."""
    hashes, sb, geo = pending.hashes, pending.sb, pending.geo
    try:
        digests = pending.level0.wait(progress)
    finally:
        pending.level0.cancel()
    result = VerityResult(
        "",
        sb.algorithm,
        sb.hash_type,
        sb.data_block_size,
        sb.hash_block_size,
        sb.data_blocks,
        sb.salt.hex(),
        len(geo.level_size),
        True,
    )
    if not geo.level_size:  # one data block: its digest is the root
        result.root_hash = result.stored_root_hash = bytes(digests[: geo.digest_size]).hex()
        return result
    current, count = memoryview(digests), sb.data_blocks
    for level, (start, size) in enumerate(zip(geo.level_start, geo.level_size, strict=True)):
        expected = _PackedLevel(sb, geo, current, count)
        assert len(expected) == size
        _compare_level(hashes, sb, geo, level, start, expected, result)
        current = memoryview(b"".join(_block_digest(sb, blk) for blk in expected))
        count = size
    result.root_hash = bytes(current[: geo.digest_size]).hex()
    top = read_exact(hashes, geo.level_start[-1] * sb.hash_block_size, sb.hash_block_size, FMT, "hash tree top block")
    result.stored_root_hash = _block_digest(sb, top).hex()
    return result


def _compare_level(
    hashes: ByteSource,
    sb: VeritySuperblock,
    geo: _Geometry,
    level: int,
    start: int,
    expected: Sequence[bytes],
    result: VerityResult,
) -> None:
    bs = sb.hash_block_size
    per_block = 1 << geo.per_block_bits
    batch = max(1, READ_CHUNK // bs)
    for first in range(0, len(expected), batch):
        stored = read_exact(
            hashes, (start + first) * bs, min(batch, len(expected) - first) * bs, FMT, f"hash tree level {level}"
        )
        for k in range(len(stored) // bs):
            want = expected[first + k]
            got = stored[k * bs : (k + 1) * bs]
            if got == want:
                continue
            result.tree_valid = False
            index = first + k
            slot = next(i for i in range(bs) if got[i] != want[i]) // geo.slot
            where = f"hash block {start + index}"
            if level == 0 and slot < per_block:
                block = index * per_block + slot
                if block < sb.data_blocks:
                    if result.first_bad_data_block is None:
                        result.first_bad_data_block = block
                    result.problems.append(f"level 0, {where}: digest of data block {block} differs")
                    return
            result.problems.append(f"level {level}, {where}: stored digests differ from the recomputed ones")
            return


def dps_uuids(root_hash: str) -> tuple[str, str]:
    """The data and hash partition UUIDs the Discoverable Partitions Spec derives from a root hash."""
    raw = bytes.fromhex(root_hash)
    if len(raw) < 32:
        raise ValueError(f"root hash of {len(raw)} bytes is too short to derive partition UUIDs")
    return str(uuid.UUID(bytes=raw[:16])), str(uuid.UUID(bytes=raw[-16:]))


@dataclass(frozen=True)
class VeritySignature:
    """The JSON of a root-verity-sig partition."""

    root_hash: str
    signature: bytes
    certificate_fingerprint: str


@reader("verity", "signature partition")
def read_signature_partition(src: ByteSource, limit: int = 16 * 4096) -> VeritySignature:
    """Parse `{"rootHash", "signature", "certificateFingerprint"}`, NUL-padded, at the partition start."""
    import base64
    import binascii
    import json

    raw = read_exact(src, 0, min(limit, src.size), FMT, "signature partition")
    text = raw.split(b"\0", 1)[0]
    try:
        doc = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(FMT, "signature partition JSON", 0, f"not JSON: {err}") from None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("rootHash"), str)
        or not isinstance(doc.get("signature"), str)
    ):
        raise FormatError(FMT, "signature partition JSON", 0, "needs string fields rootHash and signature")
    try:
        signature = base64.b64decode(doc["signature"], validate=True)
        bytes.fromhex(doc["rootHash"])
    except (binascii.Error, ValueError) as err:
        raise FormatError(FMT, "signature partition JSON", 0, f"bad rootHash or signature encoding: {err}") from None
    return VeritySignature(doc["rootHash"].lower(), signature, str(doc.get("certificateFingerprint", "")))
