"""The files a recipe's trees put into the image, as mkosi copies them: `SkeletonTrees=` and
`ExtraTrees=` (and `mkosi.skeleton/`, `mkosi.extra/`, `mkosi.extra.tar` …) in order, the later tree's
file winning, then what `RemoveFiles=` removes.

A tree is a directory, or a tar archive (mkosi unpacks it: read here with libarchive, bounded). A file
that mkosi reads through the build host's file system is not known from the recipe: a symlink on the
path of a file the facts read (`/etc/kernel/cmdline -> /etc/default/…` resolves on the build host). A
tree that is neither (a raw disk image), or over a limit, makes the files unknown.

`RemoveFiles=` patterns are Python's `pathlib` globs against the image root (`*` within one name, `**`
across names), and a matched directory goes with everything below it, as mkosi's `rmtree` removes it.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cvmlint import limits
from cvmlint.errors import InputError
from cvmlint.facts.layout import file_kind
from cvmlint.facts.provenance import Unknown

Shown = Callable[[Path], str]
"""How a host path is shown in messages (relative to the working directory)."""


@dataclass(frozen=True)
class TreeEntry:
    """One entry a tree puts at `path` in the image."""

    path: str
    kind: str
    mode: int
    size: int
    target: str
    shown: str
    """Where it is written: a host path, or `archive.tar:member`."""
    host: Path | None = None
    """The host file of a directory tree's entry (None inside an archive)."""
    data: bytes | None = None
    """An archive member's bytes, when small enough to be read (text files the facts may need)."""
    uid: int = 0
    gid: int = 0


class Trees:
    """Every tree's entries, the later tree winning, minus what RemoveFiles= removes."""

    def __init__(self, trees: list[tuple[Path, str, str]], removed: list[str], shown: Shown) -> None:
        self.entries: dict[str, TreeEntry] = {}
        self.unknown: Unknown | None = None
        self.removed = [p for p in removed if p.strip("/")]
        count = 0
        for source, target, _ in trees:
            try:
                for entry in _entries(source, target, shown):
                    count += 1
                    if count > limits.get("recipe-tree-files"):
                        raise InputError(
                            f"{shown(source)}: more than {limits.get('recipe-tree-files')} files (limit "
                            "recipe-tree-files; raise it with --limit recipe-tree-files=N)"
                        )
                    if not self.is_removed(entry.path):
                        self.entries[entry.path] = entry
            except InputError as err:
                self.unknown = Unknown(f"the recipe's trees cannot be listed: {err}")
                self.entries = {}
                return

    def is_removed(self, path: str) -> bool:
        """Whether RemoveFiles= removes `path` (itself, or a directory above it)."""
        parts = path.strip("/").split("/")
        return any(_glob_match(pattern, parts[:n]) for pattern in self.removed for n in range(1, len(parts) + 1))

    def read(self, path: str) -> tuple[str, str] | Unknown | None:
        """The text a tree puts at `path` and where it is written; None when no tree puts a file there;
        unknown when the build host decides what mkosi reads there."""
        if self.unknown is not None:
            return self.unknown
        for above in _parents(path):
            entry = self.entries.get(above)
            if entry is not None and entry.kind == "symlink":
                return Unknown(
                    f"{entry.shown} is a symlink to {entry.target}: mkosi reads {path} through the build host's "
                    "file system"
                )
        entry = self.entries.get(path)
        if entry is None or entry.kind != "file":
            return None if entry is None else Unknown(f"{entry.shown} is a {entry.kind}, not a file")
        from cvmlint.recipe.ini import decode_text

        if entry.host is not None:
            from cvmlint.recipe.ini import read_text

            return read_text(entry.host, "file", entry.shown), entry.shown
        if entry.data is None:
            return Unknown(f"{entry.shown}: over the limit recipe-file-bytes, not read")
        return decode_text(entry.data, "file", entry.shown), entry.shown


def _parents(path: str) -> Iterator[str]:
    parts = path.strip("/").split("/")
    for n in range(1, len(parts) + 1):
        yield "/" + "/".join(parts[:n])


def _glob_match(pattern: str, parts: list[str]) -> bool:
    """pathlib's glob: does the relative path `parts` match `pattern` (`**` is any number of names)?"""
    pieces = [p for p in pattern.strip("/").split("/") if p]

    def match(i: int, j: int) -> bool:
        if i == len(pieces):
            return j == len(parts)
        if pieces[i] == "**":
            return any(match(i + 1, k) for k in range(j, len(parts) + 1))
        return j < len(parts) and fnmatch.fnmatchcase(parts[j], pieces[i]) and match(i + 1, j + 1)

    return match(0, 0)


def _entries(source: Path, target: str, shown: Shown) -> Iterator[TreeEntry]:
    prefix = posixpath.join("/", target.lstrip("/"))
    if source.is_dir():
        yield from _directory(source, prefix, shown)
    elif source.is_file() and ".tar" in source.name:
        yield from _archive(source, prefix, shown)
    elif source.exists():
        raise InputError(f"{shown(source)}: a tree that is neither a directory nor a tar archive is not read")


def _directory(source: Path, prefix: str, shown: Shown) -> Iterator[TreeEntry]:
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames.sort()
        rel = os.path.relpath(dirpath, source)
        for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            host = Path(dirpath) / name
            try:
                st = host.lstat()
            except OSError as err:
                raise InputError(f"{shown(host)}: cannot be read ({err.strerror or err})") from None
            kind = file_kind(st.st_mode)
            yield TreeEntry(
                path=posixpath.normpath(posixpath.join(prefix, rel, name)),
                kind=kind,
                mode=stat.S_IMODE(st.st_mode),
                size=st.st_size,
                target=os.readlink(host) if kind == "symlink" else "",
                shown=shown(host),
                host=host,
            )


def _archive(source: Path, prefix: str, shown: Shown) -> Iterator[TreeEntry]:
    """The members of a tar tree (libarchive; a member's bytes kept when small enough to be read)."""
    import libarchive

    most = limits.get("recipe-file-bytes")
    label = shown(source)
    try:
        with libarchive.file_reader(str(source)) as archive:
            for member in archive:
                raw = member.pathname
                text = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
                name = posixpath.normpath(text.removeprefix("./").lstrip("/")) if text not in (".", "./") else ""
                if name in (".", "") or name.startswith("../"):
                    continue
                if not name:
                    continue
                kind = file_kind(member.mode) if member.mode else ("dir" if member.isdir else "file")
                data = None
                if kind == "file" and member.size <= most:
                    data = b"".join(member.get_blocks())
                    if len(data) > most:
                        data = None
                yield TreeEntry(
                    path=posixpath.normpath(posixpath.join(prefix, name)),
                    kind=kind,
                    mode=stat.S_IMODE(member.mode),
                    size=member.size or 0,
                    target=(member.linkpath or "") if kind == "symlink" else "",
                    shown=f"{label}:{name}",
                    data=data,
                    uid=member.uid or 0,
                    gid=member.gid or 0,
                )
    except libarchive.ArchiveError as err:
        raise InputError(f"{label}: not a readable tar archive ({err})") from None
