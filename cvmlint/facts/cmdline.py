"""The kernel command line, split as the kernel splits it (shared by images and recipes)."""

from __future__ import annotations

from cvmlint.facts.model import Param
from cvmlint.facts.provenance import Provenance


def parse_cmdline(text: str, where: Provenance) -> list[Param]:
    """Kernel command-line parameters in order (quotes honoured, `-` and `_` alike in names; `--` ends them)."""
    params: list[Param] = []
    word: list[str] = []
    quoted = False
    for ch in text.strip() + " ":
        if ch == '"':
            quoted = not quoted
            continue
        if ch.isspace() and not quoted:
            if word:
                token = "".join(word)
                if token == "--":
                    break
                name, eq, value = token.partition("=")
                params.append(Param(name=name.replace("-", "_"), value=value if eq else None, where=where))
                word = []
            continue
        word.append(ch)
    return params
