"""The packages a build used, pinned: name, version, architecture and the `.deb`'s SHA-256.

`cvmlint build` gives mkosi a package cache of its own, so the `.deb`s apt downloaded for the image and
its initrd are exactly what is left there; the recipe's package directories (`mkosi.packages/`, our
kernel) are recorded too. A rebuild fetches each recorded version from this machine's mirror, checks
its digest, and offers mkosi nothing else (a local repository of exactly these): a version the mirror
no longer serves stops the rebuild instead of building something else.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cvmlint import dpkg
from cvmlint.errors import CvmlintError

INDEX_BYTES = 256 << 20
"""A Packages index decompressed to more than this is refused."""
DEB_BYTES = 2 << 30


class PinError(CvmlintError):
    """A recorded package cannot be had as recorded (the message names it)."""


@dataclass(frozen=True)
class Pinned:
    """One package a build installed."""

    name: str
    version: str
    architecture: str
    sha256: str
    size: int
    origin: str
    """`mirror`, or the path of the `.deb` in the recipe's package directory."""

    @property
    def label(self) -> str:
        return f"{self.name} {self.version} ({self.architecture})"


def deb_identity(path: Path) -> tuple[str, str, str]:
    """(Package, Version, Architecture) from a `.deb`'s control file."""
    from debian.arfile import ArError
    from debian.debfile import DebFile

    try:
        control = DebFile(str(path)).debcontrol()
    except (ArError, OSError, ValueError, KeyError) as err:  # ArError: DebError's base, for a broken ar
        raise PinError(f"{path}: not a readable .deb ({err})") from err
    return control.get("Package", ""), control.get("Version", ""), control.get("Architecture", "")


def sha256_file(path: Path) -> str:
    from cvmlint.evidence.inputs import file_sha256

    return file_sha256(path)


def record(from_mirror: list[Path], package_dirs: list[Path], display_base: Path) -> list[Pinned]:
    """Every `.deb` below `from_mirror` (apt's package cache; a rebuild's pinned packages) and in the
    recipe's package directories."""
    found: dict[tuple[str, str, str], Pinned] = {}
    sources = [(p, "mirror") for d in from_mirror for p in sorted(d.rglob("*.deb"))]
    for directory in package_dirs:
        sources += [(p, os.path.relpath(p, display_base)) for p in sorted(directory.glob("*.deb"))]
    for path, origin in sources:
        name, version, arch = deb_identity(path)
        found[(name, version, arch)] = Pinned(name, version, arch, sha256_file(path), path.stat().st_size, origin)
    return sorted(found.values(), key=lambda p: (p.name, p.architecture, p.version))


def as_json(pins: list[Pinned]) -> list[dict[str, Any]]:
    return [asdict(p) for p in pins]


NAME = re.compile(r"[a-z0-9][a-z0-9+.-]*")
VERSION = re.compile(r"(?:[0-9]+:)?[A-Za-z0-9][A-Za-z0-9.+~-]*")
ARCH = re.compile(r"[a-z0-9][a-z0-9-]*")
SHA256 = re.compile(r"[0-9a-f]{64}")


def from_json(items: object) -> list[Pinned]:
    """The recorded packages, each field checked (a record is input: a name could otherwise be a path)."""
    if not isinstance(items, list):
        raise PinError("the recorded package list is not a list")
    out = []
    for i, item in enumerate(items):
        try:
            pin = Pinned(**item)
        except TypeError as err:
            raise PinError(f"recorded package {i} is malformed ({err})") from err
        checks = ((NAME, pin.name), (VERSION, pin.version), (ARCH, pin.architecture), (SHA256, pin.sha256))
        if not all(isinstance(v, str) and rx.fullmatch(v) for rx, v in checks) or not isinstance(pin.origin, str):
            shown = str(pin.name)[:60]
            raise PinError(f"recorded package {i} ({shown!r}) is not a Debian package name, version, arch and SHA-256")
        out.append(pin)
    return out


# ---- fetching the recorded versions -------------------------------------------------------------
@dataclass(frozen=True)
class IndexEntry:
    url: str
    sha256: str
    size: int


def mirror_index(
    sources: list[tuple[str, str]], architecture: str, wanted: set[str]
) -> dict[tuple[str, str, str], IndexEntry]:
    """(name, version, architecture) -> where it is, for the `wanted` package names in these (URI, suite)
    sources' `main` Packages indexes (binary-ARCH holds the `all` packages too)."""
    out: dict[tuple[str, str, str], IndexEntry] = {}
    for uri, suite in sources:
        base = uri.rstrip("/")
        for stanza in _stanzas(f"{base}/dists/{suite}/main/binary-{architecture}/Packages.xz", wanted):
            key = (stanza.get("Package", ""), stanza.get("Version", ""), stanza.get("Architecture", ""))
            if all(key) and "Filename" in stanza:
                size = int(stanza.get("Size", "0") or 0)
                out.setdefault(key, IndexEntry(f"{base}/{stanza['Filename']}", stanza.get("SHA256", ""), size))
    return out


def _stanzas(url: str, wanted: set[str]) -> Iterator[Mapping[str, str]]:
    """The single-line fields of each stanza of an xz-compressed index naming a wanted package, read and
    decompressed a piece at a time (a whole index is ~100 MB of text)."""
    decompressor, tail, total = lzma.LZMADecompressor(), "", 0
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            while not decompressor.eof:
                packed = response.read(1 << 20) if decompressor.needs_input else b""
                if decompressor.needs_input and not packed:
                    raise PinError(f"{url}: the index is cut short")
                text = decompressor.decompress(packed, max_length=4 << 20)
                total += len(text)
                if total > INDEX_BYTES:
                    raise PinError(f"{url}: larger than {INDEX_BYTES >> 20} MiB decompressed")
                blocks = (tail + text.decode("utf-8", errors="replace")).split("\n\n")
                tail = blocks.pop()
                yield from _wanted(blocks, wanted)
    except (urllib.error.URLError, OSError) as err:
        raise PinError(f"the mirror's package index {url} could not be read: {err}") from err
    except lzma.LZMAError as err:
        raise PinError(f"{url}: not an xz-compressed Packages index ({err})") from err
    yield from _wanted([tail], wanted)


def _wanted(blocks: list[str], wanted: set[str]) -> Iterator[Mapping[str, str]]:
    for block in blocks:
        if block.startswith("Package: ") and block[9:].split("\n", 1)[0].strip() in wanted:
            yield from (para for _, para in dpkg.paragraphs(block))


def fetch(
    pins: list[Pinned], index: dict[tuple[str, str, str], IndexEntry], dest: Path, recipe_base: Path
) -> list[Path]:
    """Each recorded package into `dest`, its digest checked: from the mirror, or the recipe's own file.
    The first package that cannot be had as recorded raises PinError naming it."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for pin in pins:
        if pin.origin != "mirror":
            local = recipe_base / pin.origin
            if not local.is_file() or sha256_file(local) != pin.sha256:
                state = "missing" if not local.is_file() else "a different file"
                raise PinError(f"{pin.label}: the recipe's {pin.origin} is {state} (recorded sha256 {pin.sha256})")
            continue  # mkosi reads it from the recipe's own package directory
        entry = index.get((pin.name, pin.version, pin.architecture))
        if entry is None:
            raise PinError(
                f"{pin.label}: the mirror no longer serves this version; the rebuild would install a different "
                "one, so it stops here (a snapshot mirror that serves it, configured in apt, makes the rebuild "
                "possible)"
            )
        if entry.sha256 and entry.sha256 != pin.sha256:
            raise PinError(f"{pin.label}: the mirror's index has sha256 {entry.sha256}, the record {pin.sha256}")
        target = dest / f"{pin.name}_{pin.version.replace(':', '%3a')}_{pin.architecture}.deb"
        _download(entry.url, target, pin)
        out.append(target)
    return out


def _download(url: str, target: Path, pin: Pinned) -> None:
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=120) as response, open(target, "wb") as out:
            done = 0
            while block := response.read(1 << 20):
                done += len(block)
                if done > DEB_BYTES:
                    raise PinError(f"{pin.label}: {url} is larger than {DEB_BYTES >> 20} MiB")
                h.update(block)
                out.write(block)
    except (urllib.error.URLError, OSError) as err:
        raise PinError(f"{pin.label}: could not be downloaded from {url}: {err}") from err
    if h.hexdigest() != pin.sha256:
        raise PinError(f"{pin.label}: {url} has sha256 {h.hexdigest()}, the record {pin.sha256}")
