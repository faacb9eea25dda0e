"""A package as apt reads a name given to `apt-get install` (what mkosi passes it from Packages=).

openssh-server            the package
openssh-server:amd64      the package, for that architecture
openssh-server=1:9.2p1-2  that version
openssh-server/trixie     from that release
openssh-server+           installed (a trailing + is apt's "install" mark: g++ is a package, so both
                          names are kept)
openssh-server-           removed instead (a trailing - is apt's "remove" mark)
openssh-*  ?name(ssh)  ~nssh  ./x.deb     resolved by apt at build time: not known from the recipe
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NAME = re.compile(r"[a-z0-9][a-z0-9+.-]*")
REGEX_CHARS = set(".?+*|[]^$")
"""A name holding one of these is a regular expression to apt when no package has that exact name."""


@dataclass(frozen=True)
class AptSpec:
    """What one item names: a package (and what else it fixes), or why that is decided by apt."""

    name: str = ""
    arch: str = ""
    version: str = ""
    removed: bool = False
    """A trailing `-`: apt removes the package instead of installing it."""
    unknown: str = ""
    also: str = ""
    """A second name apt may take it for (`g++` is a package, `openssh-server+` marks openssh-server)."""
    regex: str = ""
    """The regular expression (RE2 syntax, case-insensitive) apt matches package names with, when the item
    is one (see the module docstring); empty for a plain name."""


def parse_spec(text: str) -> AptSpec:
    """The package `text` names for `apt-get install` (see the module docstring)."""
    spec = text.strip()
    if spec.startswith("?exact-name(") and spec.endswith(")"):
        spec = spec[len("?exact-name(") : -1]
    elif spec.startswith(("?name(", "~n")):
        pattern = spec[len("?name(") : -1] if spec.startswith("?") else spec[2:]
        return AptSpec(name=text, regex="(?i)" + pattern)
    if not spec or spec[0] in "?~" or spec.startswith(("/", ".")) or spec.endswith((".deb", "^")) or "," in spec:
        return AptSpec(unknown=f"Packages={text!r}: apt resolves this pattern, task or file at build time")
    removed = False
    version = ""
    if "=" in spec:
        spec, version = spec.split("=", 1)
    elif "/" in spec:
        spec = spec.split("/", 1)[0]
    name, _, arch = spec.partition(":")
    also = ""
    if name.endswith("-") and len(name) > 1:
        name, removed = name[:-1], True
    elif name.endswith("+") and NAME.fullmatch(name[:-1] or "-"):
        also = name[:-1]
    regex = "(?i)" + _as_re2(name) if REGEX_CHARS & set(name) else ""
    return AptSpec(name=name, arch=arch, version=version, removed=removed, also=also, regex=regex)


def _as_re2(ere: str) -> str:
    """apt's POSIX extended expression in RE2's syntax: glibc reads a run of repetitions as nested ones
    (`c++` is `(c+)+`, that is `c+`; `+?` is `(x+)?`, that is `x*`), which RE2 refuses to compile."""
    return re.sub(r"[+*?]{2,}", lambda m: "+" if set(m.group(0)) == {"+"} else "*", ere)
