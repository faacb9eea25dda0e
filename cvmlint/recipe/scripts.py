"""Packages a recipe's build scripts install, found by reading them (never by running them).

Recognised, on a logical line (backslash continuations joined), after `;`, `&&`, `||`, `|` or
at the start: `apt-get install`, `apt install`, `aptitude install`, `dnf install`, `yum install`,
`zypper install|in`, `pacman -S`, `pip install`, `pip3 install`, `python3 -m pip install`,
`pipx install`, and mkosi's own `mkosi-install`. The package names are the words after the
verb that are not options; `$VAR` words are reported as such (their value is decided at build).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

VERBS = re.compile(
    r"""^(?:sudo\s+|env\s+(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*+|DEBIAN_FRONTEND=\S+\s+)*+
    (?P<tool>apt-get|apt|aptitude|dnf|yum|zypper|pacman|pip3?|pipx|python3?\s+-m\s+pip|mkosi-install)\b
    (?P<rest>.*)$""",
    re.X,
)
INSTALL = {"install", "in", "-S", "-Sy", "-Syu"}


@dataclass(frozen=True)
class ScriptPackage:
    name: str
    tool: str
    line: int


def installed_packages(text: str) -> list[ScriptPackage]:
    """Every package an install command in a shell script names, with the line it starts on."""
    out: list[ScriptPackage] = []
    for start, logical in _logical_lines(text):
        for command in re.split(r"&&|\|\||;|\|", logical.split(" #", 1)[0]):
            m = VERBS.match(command.strip())
            if m is None:
                continue
            tool = re.sub(r"\s+", " ", m.group("tool"))
            try:
                words = shlex.split(m.group("rest"), comments=True)
            except ValueError:
                words = m.group("rest").split()
            if tool != "mkosi-install":
                verbs = [i for i, w in enumerate(words) if w in INSTALL]
                if not verbs:
                    continue
                words = words[verbs[0] + 1 :]
            out += [ScriptPackage(w, tool, start) for w in words if w and not w.startswith("-")]
    return out


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    parts: list[str] = []  # joined once: a script of many continuation lines stays linear
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not parts:
            start = number
        if line.rstrip().endswith("\\"):
            parts.append(line.rstrip()[:-1] + " ")
            continue
        out.append((start, "".join(parts) + line))
        parts = []
    if parts:
        out.append((start, "".join(parts)))
    return out
