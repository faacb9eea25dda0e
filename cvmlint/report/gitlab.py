"""GitLab Code Quality: a JSON array of issues with stable fingerprints (failing findings, and unknown
rules as `info`). Severities: critical → blocker, high → critical, medium → major, low → minor,
info → info. An image finding has no file in the repository: its path is the image's name, line 1,
and the place inside the image is in the description."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cvmlint.policy.results import Finding, Report, Status
from cvmlint.report.places import Place, fingerprint, place_of, repository_root

SEVERITY = {"critical": "blocker", "high": "critical", "medium": "major", "low": "minor", "info": "info"}


class GitlabReporter:
    """One Code Quality report for one or several targets."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or repository_root()

    def render(self, report: Report, exit_code: int) -> str:
        return self.render_all([(report, exit_code)])

    def render_all(self, reports: Sequence[tuple[Report, int]]) -> str:
        """Every issue once: a shared file's finding in several recipes is one issue (one fingerprint)."""
        issues: dict[str, dict[str, Any]] = {}
        for report, _ in reports:
            for issue in self.issues(report):
                issues.setdefault(issue["fingerprint"], issue)
        return json.dumps(list(issues.values()), indent=2) + "\n"

    def issues(self, report: Report) -> list[dict[str, Any]]:
        out = []
        for r in report.results:
            if r.status is Status.FAIL:
                for f in r.findings:
                    if f.waived_by is None:
                        out.append(
                            self.issue(
                                report,
                                r.rule_id,
                                r.title,
                                SEVERITY.get(r.severity, "major"),
                                f,
                                fingerprint(r, f, place_of(f, self.root)),
                            )
                        )
            elif r.status is Status.UNKNOWN:
                for reason in r.reasons:
                    f = Finding(f"unknown: {reason}")
                    out.append(self.issue(report, r.rule_id, r.title, "info", f, fingerprint(r, f, Place())))
        return out

    def issue(self, report: Report, rule_id: str, title: str, severity: str, f: Finding, key: str) -> dict[str, Any]:
        place = place_of(f, self.root)
        path = place.path or report.target.name
        where = f" (at {place.logical})" if place.logical else ""
        return {
            "description": f"{rule_id} {title}: {f.message}{where}",
            "check_name": rule_id,
            "fingerprint": key,
            "severity": severity,
            "location": {"path": path, "lines": {"begin": place.line or 1}},
        }
