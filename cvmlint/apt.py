"""The Debian mirror this machine already uses, read from its own apt configuration.

cvmlint never names a mirror itself: a user behind a proxy or with a local mirror is served by
the same one apt uses. Both source formats are read:

    # /etc/apt/sources.list (one-line form)
    deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bookworm main

    # /etc/apt/sources.list.d/debian.sources (deb822 form)
    Types: deb
    URIs: http://mirror.example/debian
    Suites: bookworm bookworm-updates
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cvmlint.errors import InputError


@dataclass(frozen=True)
class AptSource:
    """One `deb` source: a URI and the suites it serves."""

    uri: str
    suites: tuple[str, ...]
    file: str


def apt_sources(etc_apt: Path = Path("/etc/apt")) -> list[AptSource]:
    """Every enabled binary (`deb`) source, in the order apt reads them."""
    out: list[AptSource] = []
    main = etc_apt / "sources.list"
    if main.is_file():
        out += _one_line_sources(main)
    parts = etc_apt / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                out += _one_line_sources(path)
            elif path.suffix == ".sources":
                out += _deb822_sources(path)
    return out


def debian_mirror(etc_apt: Path = Path("/etc/apt")) -> str:
    """The URI of the first source that serves Debian's main archive (not a -security or -updates suite)."""
    for source in apt_sources(etc_apt):
        if any(_is_archive_suite(s) for s in source.suites):
            return source.uri.rstrip("/")
    raise InputError(
        f"no Debian archive source in {etc_apt}/sources.list or {etc_apt}/sources.list.d/: "
        "cvmlint takes the mirror from this machine's apt configuration"
    )


def _is_archive_suite(suite: str) -> bool:
    return not suite.endswith(("-security", "-updates", "-backports", "-proposed-updates")) and "/" not in suite


def _one_line_sources(path: Path) -> list[AptSource]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            out.append(AptSource(words[0], (words[1],), str(path)))
    return out


def _deb822_sources(path: Path) -> list[AptSource]:
    out = []
    for stanza in path.read_text(errors="replace").split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            out.append(AptSource(uri, tuple(fields.get("suites", "").split()), str(path)))
    return out
