"""Compare a source tree with what a reader returns: type, mode, owner, content, link, device, xattrs."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

Record = tuple[Any, ...]


def source_tree(root: Path, xattrs: bool = True) -> dict[str, Record]:
    """What the host file system says about every path below `root`."""
    out: dict[str, Record] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = "/" + os.path.relpath(path, root)
            extra: Any = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fh:
                    extra = hashlib.sha256(fh.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                extra = (os.major(st.st_rdev), os.minor(st.st_rdev))
            attrs = {}
            if xattrs and not stat.S_ISLNK(st.st_mode):
                attrs = {k: os.getxattr(path, k) for k in os.listxattr(path)}
            out[rel] = (
                stat.S_IFMT(st.st_mode),
                st.st_mode & 0o7777,
                st.st_uid,
                st.st_gid,
                extra,
                tuple(sorted(attrs.items())),
            )
    return out


def differences(expected: dict[str, Record], got: dict[str, Record]) -> list[str]:
    """Human-readable differences, at most 10."""
    out = []
    for path in sorted(set(expected) | set(got)):
        if expected.get(path) != got.get(path):
            out.append(f"{path}: expected {expected.get(path)}, got {got.get(path)}")
    return out[:10]


def digest(chunks: Iterable[bytes]) -> str:
    """SHA-256 of streamed content."""
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def image_tree(fs: Any, skip: tuple[str, ...] = ("/",), skip_xattrs: tuple[str, ...] = ()) -> dict[str, Record]:
    """What a reader (erofs, ext4) says of every entry, in source_tree's shape."""
    out: dict[str, Record] = {}
    for path, ino in fs.walk():
        if path in skip:
            continue
        extra: object = None
        if ino.is_reg:
            extra = digest(fs.iter_data(ino))
        elif ino.is_symlink:
            extra = fs.readlink(ino)
        elif stat.S_ISCHR(ino.mode) or stat.S_ISBLK(ino.mode):
            extra = ino.rdev
        attrs = {} if ino.is_symlink else {k: v for k, v in fs.xattrs(ino).items() if k not in skip_xattrs}
        out[path] = (stat.S_IFMT(ino.mode), ino.mode & 0o7777, ino.uid, ino.gid, extra, tuple(sorted(attrs.items())))
    return out
