"""The reporter seam: a reporter turns a Report into text; it never prints."""

from __future__ import annotations

from typing import Protocol

from cvmlint.policy.results import Report


class Reporter(Protocol):
    """Formats one report."""

    def render(self, report: Report, exit_code: int) -> str:
        """The whole output for `report`, given the exit code the run will end with."""
        ...
