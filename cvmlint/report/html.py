"""`--format html`: the evidence bundle's report page, for any command (see cvmlint/evidence/html.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cvmlint.policy.results import Report


class HtmlReporter:
    """One self-contained HTML page, for one target or several (a section each)."""

    def __init__(self, inputs: dict[str, Any] | None = None, signed_by: str | None = None) -> None:
        self.inputs = inputs or {}
        self.signed_by = signed_by

    def render(self, report: Report, exit_code: int) -> str:
        """The page of one target."""
        return self.render_all([(report, exit_code)])

    def render_all(self, reports: Sequence[tuple[Report, int]]) -> str:
        """One page for every target."""
        from datetime import UTC, datetime

        from cvmlint.evidence.html import render_page

        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        inputs = self.inputs if len(reports) == 1 else {}
        return render_page([(r, code, inputs) for r, code in reports], self.signed_by, when)
