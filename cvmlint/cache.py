"""cvmlint's per-user cache: tool roots, and parsed policy files keyed by their digest.

A parsed policy file is kept as a pickle, which is only safe to load from a file nobody else could
have written: a cache entry is read only when it and its directory belong to this user and are not
writable by group or others, and it is unpickled with only the policy AST's classes allowed, so a
planted entry can at worst make a policy parse again, never run code. CVMLINT_NO_CACHE=1 turns the
policy cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import stat
from pathlib import Path
from typing import Any


def default_cache() -> Path:
    """$CVMLINT_CACHE, else /var/cache/cvmlint for root, else $XDG_CACHE_HOME/cvmlint (~/.cache/cvmlint)."""
    if "CVMLINT_CACHE" in os.environ:
        return Path(os.environ["CVMLINT_CACHE"])
    if os.geteuid() == 0:
        return Path("/var/cache/cvmlint")
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cvmlint"


def _private(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


class _PolicyUnpickler(pickle.Unpickler):
    """Rebuilds only the policy AST's classes; anything else in a cache entry refuses the entry."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "cvmlint.policy.ast":
            from cvmlint.policy import ast

            found = getattr(ast, name, None)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"cache entry names {module}.{name}")


def _code_stamp() -> bytes:
    """What a parsed file's shape depends on besides its text: the parser's and the AST's code."""
    from cvmlint import __version__
    from cvmlint._resources import grammar_path
    from cvmlint.policy import ast

    parts = [__version__.encode()]
    for path in (Path(ast.__file__), Path(ast.__file__).with_name("parser.py"), grammar_path()):
        with contextlib.suppress(OSError):
            st = path.stat()
            parts.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return b"\0".join(parts)


def _entry(key: bytes) -> Path | None:
    if os.environ.get("CVMLINT_NO_CACHE"):
        return None
    digest = hashlib.sha256(_code_stamp() + b"\0" + key).hexdigest()
    return default_cache() / "policy" / f"{digest}.pickle"


def load_parsed(key: bytes) -> Any | None:
    """The parsed policy file stored under `key`, or None (absent, not private, or not a clean entry)."""
    entry = _entry(key)
    if entry is None:
        return None
    try:
        with open(entry, "rb") as fh:
            if not (_private(os.fstat(fh.fileno())) and _private(entry.parent.stat())):
                return None
            return _PolicyUnpickler(io.BytesIO(fh.read())).load()
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError, IndexError):
        return None


def store_parsed(key: bytes, parsed: Any) -> None:
    """Keep a parsed policy file under `key`; a cache that cannot be written is no error."""
    entry = _entry(key)
    if entry is None:
        return
    with contextlib.suppress(OSError):
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = entry.with_name(f".{entry.name}.{os.getpid()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(parsed, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, entry)
        _prune(entry.parent)


KEEP = 512
"""Cached parses kept; past it the least recently written are removed (only a miss writes, so this runs
rarely)."""


def _prune(directory: Path) -> None:
    entries = [e for e in os.scandir(directory) if e.name.endswith(".pickle")]
    if len(entries) <= KEEP:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns)
    for old in entries[: len(entries) - KEEP * 3 // 4]:
        with contextlib.suppress(OSError):
            os.unlink(old.path)
