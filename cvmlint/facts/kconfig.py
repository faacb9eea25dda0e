"""A kernel .config (or a fragment of one): `CONFIG_X=value` and `# CONFIG_X is not set` lines."""

from __future__ import annotations

import re


def parse_config(text: str) -> tuple[dict[str, str], dict[str, int]]:
    """A kernel .config: name -> value (`n` for "is not set"), and name -> line number."""
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        m = re.match(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$", line)
        if m:
            values[m.group(1)], lines[m.group(1)] = "n", number
        elif line.startswith("CONFIG_") and "=" in line:
            key, _, value = line.partition("=")
            values[key] = value.strip('"')
            lines[key] = number
    return values, lines
