"""Digests of what a verdict was made from: the image (whole file and each partition) or the recipe's files.

For a raw image one sequential read feeds every digest at once (the whole file and the partition each
byte belongs to), so recording them costs one pass, mostly served from the page cache after a scan.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cvmlint.errors import CvmlintError
from cvmlint.facts.model import Facts, Verity

CHUNK = 4 << 20

if TYPE_CHECKING:
    from cvmlint.image.verity import Progress


def image_inputs(path: Path, progress: Progress | None = None) -> dict[str, Any]:
    """The image file's size and SHA-256, and each GPT partition's (add_verity adds the root hashes)."""
    from cvmlint.image.container import open_image
    from cvmlint.image.gpt import read_partition_table

    out: dict[str, Any] = {"kind": "image", "name": path.name, "size": path.stat().st_size}
    with open_image(path) as (source, kind):
        out["container"] = kind
        try:
            parts = read_partition_table(source).partitions
        except CvmlintError as err:
            parts = []
            out["partitions_unknown"] = str(err)
        ranges = [(p.number, p.name, p.type_name, p.start, p.size) for p in parts]
        if kind == "raw":
            whole, digests = _one_pass(path, [(s, n) for _, _, _, s, n in ranges], progress)
        else:
            whole = file_sha256(path)
            digests = [_source_sha256(source, s, n) for _, _, _, s, n in ranges]
    out["sha256"] = whole
    out["partitions"] = [
        {"number": num, "name": name, "type": type_name, "offset": start, "size": size, "sha256": digest}
        for (num, name, type_name, start, size), digest in zip(ranges, digests, strict=True)
    ]
    return out


def add_verity(inputs: dict[str, Any], facts: Facts) -> dict[str, Any]:
    """The stored and the recomputed verity root hashes, when the scan established them."""
    if isinstance(facts.verity, Verity):
        v = facts.verity
        inputs["verity"] = {
            "root_hash": v.root_hash if isinstance(v.root_hash, str) else None,
            "data_root_hash": v.data_root_hash if isinstance(v.data_root_hash, str) else None,
        }
    return inputs


def recipe_inputs(name: str, files: list[Path], display_base: Path) -> dict[str, Any]:
    """Every file the recipe reader read, with its SHA-256, in the order read."""
    seen: dict[str, str] = {}
    for path in files:
        shown = os.path.relpath(path, display_base)
        if shown not in seen and path.is_file():
            seen[shown] = file_sha256(path)
    return {"kind": "recipe", "name": name, "files": [{"path": p, "sha256": d} for p, d in seen.items()]}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _one_pass(path: Path, ranges: list[tuple[int, int]], progress: Progress | None) -> tuple[str, list[str]]:
    """The file's digest and each (offset, size) range's, from one sequential read."""
    whole = hashlib.sha256()
    parts = [hashlib.sha256() for _ in ranges]
    total = path.stat().st_size
    with open(path, "rb") as fh:
        offset = 0
        for block in iter(lambda: fh.read(CHUNK), b""):
            whole.update(block)
            end = offset + len(block)
            for (start, size), h in zip(ranges, parts, strict=True):
                lo, hi = max(start, offset), min(start + size, end)
                if lo < hi:
                    h.update(block[lo - offset : hi - offset])
            offset = end
            if progress:
                progress("sha256 of the image and its partitions", offset, total)
    return whole.hexdigest(), [h.hexdigest() for h in parts]


def _source_sha256(source: Any, start: int, size: int) -> str:
    h = hashlib.sha256()
    done = 0
    while done < size:
        n = min(CHUNK, size - done)
        h.update(source.pread(start + done, n))
        done += n
    return h.hexdigest()
