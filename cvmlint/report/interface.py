"""The reporter seam: a reporter turns reports into text; it never prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cvmlint.policy.results import Report

Scored = tuple[Report, int]
"""A report and the exit code the run ends with for it."""


class Reporter(Protocol):
    """Formats reports."""

    def render(self, report: Report, exit_code: int) -> str:
        """The whole output for `report`, given the exit code the run will end with."""
        ...


def render_all(reporter: Reporter, reports: Sequence[Scored]) -> str:
    """Several targets' reports as one output: the reporter's own way of combining them (one SARIF
    file with a run per target, one JUnit file with a suite per target …), else one after the other."""
    combine = getattr(reporter, "render_all", None)
    if combine is not None:
        text: str = combine(reports)
        return text
    return "".join(reporter.render(report, code) for report, code in reports)
