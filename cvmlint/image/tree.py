"""What every inode-based file system reader (erofs, ext4) does the same way on top of its own
directory format: walking the tree and resolving paths, both bounded."""

from __future__ import annotations

import posixpath
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, TypeVar

from cvmlint import limits
from cvmlint.errors import FormatError

INDEX_ENTRIES = 1 << 20


class Tree(Protocol):
    """A read-only file tree (erofs or ext2/3/4) as scanning uses it."""

    def lookup(self, path: str, follow: bool = True) -> Any:
        """The node at an absolute path, or None."""

    def walk(self, top: str = "/") -> Iterator[tuple[str, Any]]:
        """(path, node) of every file below `top`."""

    def inode(self, number: int) -> Any:
        """The node with this inode number."""

    def children(self, node: Any) -> Iterable[tuple[str, int]]:
        """(name, inode number) of a directory's entries."""

    def head(self, node: Any, length: int) -> bytes:
        """A file's first bytes."""

    def read_at(self, node: Any, offset: int, length: int) -> bytes:
        """Bytes of a file at an offset."""

    def read(self, node: Any, limit: int = ...) -> bytes:
        """A file's whole content."""

    def readlink(self, node: Any) -> str:
        """A symlink's target."""

    def iter_data(self, node: Any, limit: int | None = None) -> Iterator[bytes]:
        """A file's content in pieces."""


class InodeTree:
    """Mixed into a reader that has `FMT`, `root()`, `inode(number)`, `readlink(inode)` and
    `children(inode)`: (name, inode number) of a directory's entries without `.` and `..`."""

    FMT: str

    def root(self) -> Any:
        raise NotImplementedError

    def inode(self, number: int) -> Any:
        raise NotImplementedError

    def readlink(self, ino: Any) -> str:
        raise NotImplementedError

    def children(self, ino: Any) -> Iterable[tuple[str, int]]:
        raise NotImplementedError

    def walk(self, top: str = "/") -> Iterator[tuple[str, Any]]:
        """(path, inode) of every file below `top`, parents first; loops and runaway trees refused."""
        root = self.root() if top == "/" else self.lookup(top)
        if root is None or not root.is_dir:
            return
        top = "/" + posixpath.normpath(top).lstrip("/")
        yield top, root
        stack: list[tuple[str, Any, int]] = [(top, root, 0)]
        seen_dirs = {root.offset}  # an inode's byte offset identifies it in both formats
        count, entries_limit = 0, limits.get("tree-entries")
        while stack:
            path, ino, depth = stack.pop()
            for name, number in self.children(ino):
                count += 1
                if not count & 1023:
                    limits.tick(self.FMT, f"directory {path}", ino.offset)
                if count > entries_limit:
                    limits.check("tree-entries", count, self.FMT, "directory tree", 0)
                child = self.inode(number)
                child_path = posixpath.join(path, name)
                if child.is_dir:
                    if child.offset in seen_dirs:
                        raise FormatError(
                            self.FMT,
                            f"directory {child_path}",
                            child.offset,
                            "contains itself or an ancestor (directory loop)",
                        )
                    limits.check("path-depth", depth + 1, self.FMT, f"directory {child_path}", child.offset)
                    seen_dirs.add(child.offset)
                    stack.append((child_path, child, depth + 1))
                yield child_path, child
        limits.check("tree-entries", count, self.FMT, "directory tree", 0)  # records the size for the stats

    def _index(self, ino: Any) -> dict[str, int]:
        """A directory's entries by name, from a small cache (a lookup in a huge directory must not
        re-read it per path: the cache holds at most INDEX_ENTRIES entries in all)."""
        cache: OrderedDict[int, dict[str, int]] = self.__dict__.setdefault("_dir_index", OrderedDict())
        found = cache.get(ino.offset)
        if found is not None:
            cache.move_to_end(ino.offset)
            return found
        found = dict(self.children(ino))
        cache[ino.offset] = found
        total = self.__dict__.get("_dir_index_total", 0) + len(found)
        while total > INDEX_ENTRIES and len(cache) > 1:
            total -= len(cache.popitem(last=False)[1])
        self.__dict__["_dir_index_total"] = total
        return found

    def lookup(self, path: str, follow: bool = True) -> Any:
        """The inode at an absolute path (None if absent), following symlinks inside the image."""
        parts = [p for p in path.split("/") if p]
        ino, current, hops = self.root(), "/", 0
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                current = posixpath.dirname(current) or "/"
                found = self.lookup(current, follow=False)
                if found is None:
                    return None
                ino = found
                continue
            number = self._index(ino).get(part)
            if number is None:
                return None
            child = self.inode(number)
            if child.is_symlink and (parts or follow):
                hops += 1
                limits.check("symlink-hops", hops, self.FMT, f"path {path}", child.offset)
                target = self.readlink(child)
                base = "/" if target.startswith("/") else current
                parts = [p for p in posixpath.normpath(posixpath.join(base, target)).split("/") if p] + parts
                ino, current = self.root(), "/"
                continue
            ino, current = child, posixpath.join(current, part)
            if parts and not ino.is_dir:
                return None
        return ino


def zeros(length: int) -> Iterator[bytes]:
    """`length` zero bytes in pieces of at most 1 MiB (holes, sparse extents)."""
    while length > 0:
        n = min(length, 1 << 20)
        yield bytes(n)
        length -= n


K = TypeVar("K")
V = TypeVar("V")


class Recent(dict[K, V]):
    """A cache that forgets its oldest entry past `size`: a reader's memory stays bounded whatever it reads."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def keep(self, key: K, value: V) -> V:
        """Remember `value` under `key` and return it."""
        self[key] = value
        if len(self) > self.size:
            del self[next(iter(self))]
        return value
