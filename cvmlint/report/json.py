"""The JSON result format, schema `cvmlint.results/1` (documented in docs/results-json.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cvmlint import __version__
from cvmlint.facts.serialize import encode_provenance
from cvmlint.policy.results import Finding, Report, RuleResult

SCHEMA = "cvmlint.results/1"


def _finding(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {"message": f.message, "location": f.location}
    if f.where:
        out["where"] = encode_provenance(f.where)
    if f.subject is not None:
        out["subject"] = f.subject
    if f.also:
        out["also"] = [str(w) for w in f.also]
    if f.waived_by:
        w = f.waived_by
        out["waived_by"] = {
            "approver": w.approver,
            "reason": w.reason,
            "expires": w.expires.isoformat(),
            "where": w.where,
        }
    return out


def _result(r: RuleResult) -> dict[str, Any]:
    return {
        "rule": r.rule_id,
        "title": r.title,
        "severity": r.severity,
        "status": r.status.value,
        "findings": [_finding(f) for f in r.findings],
        "reasons": list(r.reasons),
        "note": r.note,
        "references": list(r.references),
    }


def report_to_json(report: Report, exit_code: int) -> dict[str, Any]:
    """The report as a JSON-ready object."""
    t = report.target
    return {
        "schema": SCHEMA,
        "tool": {"name": "cvmlint", "version": __version__},
        "policy": {
            "name": report.policy_name,
            "version": report.policy_version,
            "sha256": report.policy_sha256,
            "profiles": list(report.profiles),
            "profile_sources": dict(report.profile_sources),
        },
        "config": report.config,
        "target": {"kind": t.kind, "name": t.name, "digest": t.digest if isinstance(t.digest, str) else None},
        "summary": report.summary(),
        "notes": list(report.notes),
        "exit_code": exit_code,
        "results": [_result(r) for r in report.results],
    }


class JsonReporter:
    """Indented JSON, one document per run."""

    def render(self, report: Report, exit_code: int) -> str:
        """The report as JSON text."""
        return json.dumps(report_to_json(report, exit_code), indent=2) + "\n"

    def render_all(self, reports: Sequence[tuple[Report, int]]) -> str:
        """One report as an object, several as an array."""
        if len(reports) == 1:
            return self.render(*reports[0])
        return json.dumps([report_to_json(r, code) for r, code in reports], indent=2) + "\n"
