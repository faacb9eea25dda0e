"""The console examples of a Markdown file, and whether a command's real output matches one.

An example is a ```console block: `$ command  # comment` lines, each followed by its output. When
compared with the real output, digests (runs of 12 or more hex digits) and durations (`93 s`, `0.4 s`)
are ignored, a line that is `…` alone stands for any number of lines, and `…` inside a line for any
text there (a package version the mirror moves on from)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HEX = re.compile(r"[0-9a-f]{12,}")
DURATION = re.compile(r"\b\d+(\.\d+)? (s|ms|min)\b")


@dataclass(frozen=True)
class Example:
    file: str
    line: int
    command: str
    expected: tuple[str, ...]


def console_examples(path: Path) -> list[Example]:
    """Every `$ command` of every console block, with the output shown under it."""
    examples: list[Example] = []
    inside, current, output = False, None, list[str]()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.startswith("```"):
            if inside and current is not None:
                examples.append(Example(path.name, current[0], current[1], tuple(output)))
            inside, current, output = line.strip() == "```console", None, []
            continue
        if not inside:
            continue
        if line.startswith("$ "):
            if current is not None:
                examples.append(Example(path.name, current[0], current[1], tuple(output)))
            command = line[2:].split("  #", 1)[0].strip()
            current, output = (number, command), []
        else:
            output.append(line)
    return examples


def _normal(line: str) -> str:
    return DURATION.sub("<time>", HEX.sub("<hex>", line.rstrip()))


def _line_matches(expected: str, actual: str) -> bool:
    expected, actual = _normal(expected), _normal(actual)
    if "…" not in expected:
        return expected == actual
    pattern = ".*?".join(re.escape(part) for part in expected.split("…"))
    return re.fullmatch(pattern, actual) is not None


def matches(expected: tuple[str, ...], actual: list[str]) -> bool:
    """Whether the real output `actual` is what the example shows (see the module's docstring)."""
    if not expected:
        return not actual
    head = expected[0]
    if head.strip() == "…":
        return any(matches(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and _line_matches(head, actual[0]) and matches(expected[1:], actual[1:])
