"""A short text overview of a fact set (`cvmlint facts TARGET` without --json)."""

from __future__ import annotations

from dataclasses import fields

from cvmlint.facts.model import Facts, Record
from cvmlint.facts.provenance import Items, Unknown


def _line(name: str, value: object) -> str:
    if isinstance(value, Unknown):
        return f"{name:12} unknown: {value.reason}"
    if isinstance(value, Items):
        count = "lazy" if value.lazy else f"{sum(1 for _ in value)} items"
        return f"{name:12} {count}" + (f" from {value.where}" if value.where else "")
    if isinstance(value, Record):
        where = f" from {value.where}" if value.where else ""
        return f"{name:12} {type(value).__name__}{where}"
    return f"{name:12} {value}"


def summarise(facts: Facts) -> str:
    """One line per fact: what is known, how much, and from where."""
    t = facts.target
    lines = [f"target: {t.kind} {t.name}" + (f" ({t.digest})" if isinstance(t.digest, str) and t.digest else "")]
    lines += [_line(f.name, getattr(facts, f.name)) for f in fields(Facts) if f.name != "target"]
    return "\n".join(lines) + "\n"
