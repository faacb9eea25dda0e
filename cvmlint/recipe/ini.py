"""mkosi's configuration file syntax, as its own parser reads it (not configparser).

    [Section]
    Key=value               the same key may repeat; `Key=` alone is an (empty) assignment
        more value          an indented line continues the value (joined with a newline)
    # comment               everything from the first `#` on a line is cut, inside values too;
                            blank and comment lines do not end a multi-line value

The text is dedented as a whole first. A setting outside a section, a line without `=` in a
section that is read, a bad section header or a binary file is an input error naming the file and
line. Lines of sections that are not read (`sections`) are skipped unparsed, as mkosi skips them:
free text there is no error.
"""

from __future__ import annotations

import textwrap
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from cvmlint.errors import InputError


@dataclass(frozen=True)
class Setting:
    """One `Key=value` with its continuation lines, each with its line number."""

    section: str
    key: str
    lines: tuple[tuple[str, int], ...]
    """(text, line number) of the value's first line and of every continuation line."""

    @property
    def line(self) -> int:
        return self.lines[0][1]

    @property
    def value(self) -> str:
        return "\n".join(text for text, _ in self.lines).strip()


@dataclass(frozen=True)
class Section:
    """A `[Section]` header."""

    name: str
    line: int


def read_text(path: Path, what: str = "configuration file", display: str | None = None) -> str:
    """A text file, refused when missing, too large or binary (errors name it as `display`)."""
    from cvmlint.files import read_bounded

    shown = display or str(path)
    data = read_bounded(path, "script-bytes" if "script" in what else "recipe-file-bytes", what, shown)
    return decode_text(data, what, shown)


def decode_text(data: bytes, what: str, shown: str) -> str:
    """A file's bytes as text, refused when binary or not UTF-8 (the error names it as `shown`)."""
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise InputError(f"{shown}:{line}: {what} is binary (NUL byte)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(f"{shown}:{line}: {what} is not UTF-8 text") from None


def parse(
    path: Path, text: str | None = None, display: str | None = None, sections: Collection[str] | None = None
) -> list[Section | Setting]:
    """Section headers and settings in file order (errors name the file as `display`); the settings of
    sections outside `sections` (when given) are skipped."""
    shown = display or str(path)
    text = read_text(path, display=shown) if text is None else text
    out: list[Section | Setting] = []
    section: str | None = None
    key: str | None = None
    lines: list[tuple[str, int]] = []

    def flush() -> None:
        nonlocal key, lines
        if section is not None and key is not None:
            out.append(Setting(section, key, tuple(lines)))
        key, lines = None, []

    # NOTE: as mkosi reads the file (Path.read_text: universal newlines, then textwrap.dedent and
    # str.splitlines, which also ends a line at \f, \v, \x1c-\x1e, \x85, \u2028 and \u2029).
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for number, raw in enumerate(textwrap.dedent(text).splitlines(), start=1):
        line = raw.split("#", 1)[0]
        if not line.strip():
            continue
        if key is not None and line[0].isspace():
            lines.append((line.strip(), number))
            continue
        flush()
        line = line.strip()
        if line.startswith("["):
            if not line.endswith("]") or not line[1:-1].strip():
                raise InputError(f"{shown}:{number}: {line!r} is not a valid section header")
            section = line[1:-1].strip()
            out.append(Section(section, number))
            continue
        if section is None:
            raise InputError(f"{shown}:{number}: setting {line!r} is outside of any section")
        if sections is not None and section not in sections:
            continue
        name, eq, value = line.partition("=")
        if not eq:
            raise InputError(f"{shown}:{number}: {line!r} is not a `Key=value` setting")
        if not name.strip():
            raise InputError(f"{shown}:{number}: missing setting name before '='")
        key, lines = name.strip(), [(value.strip(), number)]
    flush()
    return out
