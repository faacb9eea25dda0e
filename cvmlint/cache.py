"""cvmlint's per-user cache: tool roots, parsed policy files keyed by their digest, and checked policies
keyed by their path (an entry is used only when every file it was made of still reads the same).

Entries are pickles, which are only safe to load from a file nobody else could have written: an entry is
read only when it and its directory belong to this user and are not writable by group or others, and it
is unpickled with only the policy's own classes allowed (the AST, the checked policy, its allowlists and
types, the fact records its types name), so a planted entry can at worst make a policy parse and check
again, never run code. CVMLINT_NO_CACHE=1 turns the policy cache off.
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


_CHECKED_CLASSES = {
    ("cvmlint.policy.loader", "Policy"),
    ("cvmlint.policy.loader", "_Checked"),
    ("cvmlint.policy.allowlist", "Allowlist"),
    ("cvmlint.policy.allowlist", "Entry"),
    ("cvmlint.policy.checker", "Binding"),
    ("cvmlint.policy.types", "Ty"),
    ("cvmlint.errors", "Diagnostic"),
}


class _PolicyUnpickler(pickle.Unpickler):
    """Rebuilds only the policy AST's classes (and, for a checked policy, the classes it is made of);
    anything else in a cache entry refuses the entry."""

    def __init__(self, data: bytes, checked: bool) -> None:
        super().__init__(io.BytesIO(data))
        self.checked = checked

    def find_class(self, module: str, name: str) -> Any:
        import importlib

        allowed = module == "cvmlint.policy.ast" or (
            self.checked and ((module, name) in _CHECKED_CLASSES or module == "cvmlint.facts.model")
        )
        if allowed:
            found = getattr(importlib.import_module(module), name, None)
            if isinstance(found, type) and (module != "cvmlint.facts.model" or _is_record(found)):
                return found
        raise pickle.UnpicklingError(f"cache entry names {module}.{name}")


def _is_record(cls: type) -> bool:
    from cvmlint.facts.model import Record

    return issubclass(cls, Record)


_STAMPED = (
    "policy/ast.py",
    "policy/parser.py",
    "policy/loader.py",
    "policy/checker.py",
    "policy/types.py",
    "policy/allowlist.py",
    "facts/model.py",
    "errors.py",
)
"""The code a parsed or checked policy's shape depends on besides the policy's text."""


def _code_stamp() -> bytes:
    from cvmlint import __version__
    from cvmlint._resources import grammar_path

    parts = [__version__.encode()]
    package = Path(__file__).parent
    for path in (*(package / name for name in _STAMPED), grammar_path()):
        with contextlib.suppress(OSError):
            st = path.stat()
            parts.append(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode())
    return b"\0".join(parts)


def _entry(key: bytes) -> Path | None:
    if os.environ.get("CVMLINT_NO_CACHE"):
        return None
    digest = hashlib.sha256(_code_stamp() + b"\0" + key).hexdigest()
    return default_cache() / "policy" / f"{digest}.pickle"


def load_parsed(key: bytes) -> Any | None:
    """The parsed policy file stored under `key`, or None (absent, not private, or not a clean entry)."""
    return _load(b"parsed\0" + key, checked=False)


def store_parsed(key: bytes, parsed: Any) -> None:
    """Keep a parsed policy file under `key`; a cache that cannot be written is no error."""
    _store(b"parsed\0" + key, parsed)


def load_checked(key: bytes) -> Any | None:
    """The checked policy stored under `key`, or None; the caller still sees that its files are unchanged."""
    return _load(b"checked\0" + key, checked=True)


def store_checked(key: bytes, checked: Any) -> None:
    """Keep a checked policy under `key`."""
    _store(b"checked\0" + key, checked)


def _load(key: bytes, checked: bool) -> Any | None:
    entry = _entry(key)
    if entry is None:
        return None
    try:
        with open(entry, "rb") as fh:
            if not (_private(os.fstat(fh.fileno())) and _private(entry.parent.stat())):
                return None
            return _PolicyUnpickler(fh.read(), checked).load()
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError, IndexError):
        return None


def _store(key: bytes, value: Any) -> None:
    entry = _entry(key)
    if entry is None:
        return
    with contextlib.suppress(OSError):
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = entry.with_name(f".{entry.name}.{os.getpid()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
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
