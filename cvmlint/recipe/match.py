"""mkosi's [Match] and [TriggerMatch] logic, in three values: a condition that depends on the build
host (its systemd version, an unset Distribution=) is undecided, and so is what it gates.

    [Match]                 every plain condition must hold; of the `|`-prefixed ones, at least one
    Distribution=|debian    `!` negates (after `|`: `|!fedora`)
    Distribution=|ubuntu
    [TriggerMatch]          a file with [TriggerMatch] sections applies when one of them holds
    Profiles=dev            (each as a [Match]), and every [Match] holds

A section's value is Kleene logic over its conditions; None stands for undecided.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

Truth = bool | None


@dataclass(frozen=True)
class Condition:
    """One `Key=value` of a match section, decoded."""

    trigger: bool
    negate: bool
    result: Truth


def decode(value: str) -> tuple[bool, bool, str]:
    """(`|` given, `!` given, the value itself): the prefixes in mkosi's order."""
    trigger = value.startswith("|")
    value = value.removeprefix("|")
    negate = value.startswith("!")
    return trigger, negate, value.removeprefix("!")


def all3(values: Iterable[Truth]) -> Truth:
    result: Truth = True
    for v in values:
        if v is False:
            return False
        if v is None:
            result = None
    return result


def any3(values: Iterable[Truth]) -> Truth:
    result: Truth = False
    for v in values:
        if v is True:
            return True
        if v is None:
            result = None
    return result


def section_holds(conditions: list[Condition]) -> Truth:
    """All plain conditions, and (when there are any) one of the `|` conditions."""

    def value(c: Condition) -> Truth:
        return c.result if c.result is None or not c.negate else not c.result

    plain = all3(value(c) for c in conditions if not c.trigger)
    triggers = [value(c) for c in conditions if c.trigger]
    return all3([plain, any3(triggers)]) if triggers else plain


def file_matches(matches: list[list[Condition]], triggers: list[list[Condition]]) -> Truth:
    """Every [Match] section, and one [TriggerMatch] section when the file has any."""
    plain = all3(section_holds(s) for s in matches)
    return all3([plain, any3(section_holds(s) for s in triggers)]) if triggers else plain


def compare_versions(match: str, value: str) -> bool:
    """`>=257`, `<2.0`, `==1.2`, `!=3`, or a bare version (equality), in systemd's version order."""
    for sigil in ("==", "!=", "<=", ">=", "<", ">"):
        if match.startswith(sigil):
            order = version_order(value, match[len(sigil) :])
            return {
                "==": order == 0,
                "!=": order != 0,
                "<=": order <= 0,
                ">=": order >= 0,
                "<": order < 0,
                ">": order > 0,
            }[sigil]
    return version_order(value, match) == 0


def version_order(a: str, b: str) -> int:
    """-1, 0 or 1: runs of digits compare as numbers, other runs as text, `~` sorts first."""
    pa, pb = _parts(a), _parts(b)
    for x, y in zip(pa, pb, strict=False):
        if x != y:
            return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


def _parts(text: str) -> list[tuple[int, int, str]]:
    parts = []
    for token in re.findall(r"\d+|~|[A-Za-z]+", text):
        if token == "~":
            parts.append((-1, 0, ""))
        elif token.isdigit():
            parts.append((1, int(token), ""))
        else:
            parts.append((0, 0, token))
    return parts
