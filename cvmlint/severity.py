"""Severities: the one table of them (the policy language's `severity`, `--fail-on`, cvmlint.toml's
`fail-on`, SARIF's levels), most severe first."""

from __future__ import annotations

import enum


class Severity(enum.StrEnum):
    """How much a rule's failure matters."""

    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    info = "info"


SEVERITIES = tuple(s.value for s in Severity)
SEVERITY_RANK = {s: len(SEVERITIES) - 1 - n for n, s in enumerate(SEVERITIES)}
"""info 0 … critical 4."""
