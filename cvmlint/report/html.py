"""`--format html`: the evidence bundle's report page, for any command (see cvmlint/evidence/html.py)."""

from __future__ import annotations

from typing import Any

from cvmlint.policy.loader import Policy
from cvmlint.policy.results import Report


class HtmlReporter:
    """One self-contained HTML page per report; it needs the policy for the rules' rationale."""

    def __init__(self, policy: Policy, inputs: dict[str, Any] | None = None, signed_by: str | None = None) -> None:
        self.policy = policy
        self.inputs = inputs or {}
        self.signed_by = signed_by

    def render(self, report: Report, exit_code: int) -> str:
        """The page."""
        from datetime import UTC, datetime

        from cvmlint.evidence.html import render_html

        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return render_html(report, exit_code, self.inputs, self.policy, self.signed_by, when)
