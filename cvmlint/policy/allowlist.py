"""Package allowlists: one package per line, `#` comments, optional Debian version constraints.

# Example lines:
systemd                         # any version
openssl (>= 3.0.13-0ubuntu3.4)  # at least the fixed release
linux-image-*-generic           # glob over the name
libc6 (>= 2.39), (<< 2.40)      # a range
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from cvmlint.errors import Diagnostic, PolicyError
from cvmlint.facts.provenance import Unknown

_NAME = re.compile(r"[a-z0-9*?][a-z0-9+.*?-]*")
_CONSTRAINT = re.compile(r"\(\s*(<<|<=|=|>=|>>|<|>)\s*([A-Za-z0-9.+~:-]+)\s*\)")
_OPS = {
    "<<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    "=": lambda c: c == 0,
    ">=": lambda c: c >= 0,
    ">>": lambda c: c > 0,
}


def version_compare(a: str, b: str) -> int:
    """dpkg's ordering of two Debian versions: negative, zero or positive."""
    from debian.debian_support import version_compare as compare

    result: int = compare(a, b)
    return result


@dataclass(frozen=True)
class Entry:
    """One allowlist line."""

    name: str
    constraints: tuple[tuple[str, str], ...]
    line: int

    @property
    def is_pattern(self) -> bool:
        """The name holds `*` or `?`."""
        return any(c in self.name for c in "*?")

    def matches_name(self, name: str) -> bool:
        """Whether this line is about package `name`."""
        return fnmatch.fnmatchcase(name, self.name) if self.is_pattern else name == self.name

    def admits(self, version: str | Unknown | None) -> bool | Unknown:
        """Whether `version` satisfies every constraint of the line."""
        if not self.constraints:
            return True
        if version is None or isinstance(version, Unknown) or version == "":
            reason = version.reason if isinstance(version, Unknown) else "no version known"
            return Unknown(f"allowlist line {self.line} constrains the version, but {reason}")
        return all(_OPS[op](version_compare(version, bound)) for op, bound in self.constraints)


@dataclass(frozen=True)
class Allowlist:
    """A parsed allowlist file."""

    path: str
    entries: tuple[Entry, ...]

    def __add__(self, other: Allowlist) -> Allowlist:
        return Allowlist(f"{self.path}+{other.path}", self.entries + other.entries)

    def names(self) -> list[str]:
        """The names and patterns listed, in file order."""
        return [e.name for e in self.entries]

    def _candidates(self, name: str) -> list[Entry]:
        """The lines that can be about `name`, in file order: its own lines and the patterns (indexed once, in
        one pass: a recipe naming 100,000 packages costs a lookup each, not a scan of the list)."""
        index: tuple[dict[str, list[tuple[int, Entry]]], list[tuple[int, Entry]], dict[str, list[Entry]]] | None = (
            self.__dict__.get("_index")
        )
        if index is None:
            own: dict[str, list[tuple[int, Entry]]] = {}
            patterns: list[tuple[int, Entry]] = []
            for position, e in enumerate(self.entries):
                (patterns if e.is_pattern else own.setdefault(e.name, [])).append((position, e))
            index = (own, patterns, {"": [e for _, e in patterns]})
            object.__setattr__(self, "_index", index)
        own, patterns, merged = index
        if name not in own:
            return merged[""]  # the patterns alone
        if name not in merged:  # at most one merge per listed name
            merged[name] = [e for _, e in sorted(own[name] + patterns, key=lambda pair: pair[0])]
        return merged[name]

    def permits(self, name: str, version: str | Unknown | None = None, check_version: bool = True) -> bool | Unknown:
        """Whether a package is allowed: listed by name (or pattern) and within its constraints."""
        unknown: Unknown | None = None
        for entry in self._candidates(name):
            if not entry.matches_name(name):
                continue
            if not check_version:
                return True
            verdict = entry.admits(version)
            if verdict is True:
                return True
            if isinstance(verdict, Unknown):
                unknown = verdict
        return unknown if unknown is not None else False


def parse_allowlist(text: str, path: str) -> Allowlist:
    """Parse allowlist text; every malformed line is a diagnostic with its line and column."""
    entries: list[Entry] = []
    diags: list[Diagnostic] = []
    seen: dict[str, int] = {}
    lines = text.splitlines()
    for number, raw in enumerate(lines, start=1):
        body = raw.split("#", 1)[0].rstrip()
        if not body.strip():
            continue
        col = len(body) - len(body.lstrip()) + 1
        m = _NAME.match(body, col - 1)
        if not m:
            diags.append(Diagnostic(path, number, col, "expected a package name", raw))
            continue
        name, rest = m.group(0), body[m.end() :]
        constraints, problem = _constraints(rest)
        if problem is not None:
            offset, text_ = problem
            diags.append(
                Diagnostic(
                    path,
                    number,
                    m.end() + offset + 1,
                    text_,
                    raw,
                    hint="constraints look like (>= 1.2-3) or (<< 2.0); "
                    "'<' and '>' are ambiguous in Debian, use '<<' / '<=' / '>>' / '>='",
                )
            )
            continue
        if name in seen and not constraints:
            diags.append(
                Diagnostic(
                    path,
                    number,
                    col,
                    f"'{name}' is listed twice (first on line {seen[name]})",
                    raw,
                    len(name),
                    severity="error",
                )
            )
            continue
        seen.setdefault(name, number)
        entries.append(Entry(name, constraints, number))
    if diags:
        raise PolicyError(diags)
    return Allowlist(path, tuple(entries))


def _constraints(rest: str) -> tuple[tuple[tuple[str, str], ...], tuple[int, str] | None]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(rest):
        if rest[pos] in " \t,":
            pos += 1
            continue
        m = _CONSTRAINT.match(rest, pos)
        if not m:
            return (), (pos, f"unexpected {rest[pos:].strip()!r} after the package name")
        op = m.group(1)
        if op in ("<", ">"):
            return (), (pos, f"ambiguous operator '{op}'")
        out.append((op, m.group(2)))
        pos = m.end()
    return tuple(out), None
