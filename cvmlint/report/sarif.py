"""SARIF 2.1.0, as GitHub code scanning reads it: one run per target, every rule of the policy.

Severity mapping (security-severity, level): critical 9.5 error, high 8.0 error, medium 5.5 warning,
low 3.0 note, info 0.1 note. Failing findings are results at the recipe file and line (relative to
the repository root) or, for an image, at a logical location (`root:/usr/bin/gcc`) with the image as
the artifact; waived findings carry `suppressions`; unknown rules are `note` results with the reason.
`partialFingerprints.cvmlint/v1` hashes the rule, the file and the finding's subject, not the line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cvmlint import __version__
from cvmlint.policy.results import Finding, Report, RuleInfo, RuleResult, Status
from cvmlint.report.places import Place, fingerprint, place_of, repository_root

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/cvmlint/cvmlint"
HELP_URI = INFORMATION_URI + "/blob/main/docs/rules.md#"
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.1"}
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
MAX_RUNS, MAX_RESULTS, MAX_TAGS = 20, 25_000, 20
"""GitHub's limits per file, per run and per rule."""


class SarifReporter:
    """One SARIF log for one or several targets."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or repository_root()

    def render(self, report: Report, exit_code: int) -> str:
        return self.render_all([(report, exit_code)])

    def render_all(self, reports: Sequence[tuple[Report, int]]) -> str:
        """The log: a run per target (at most 20: GitHub's limit)."""
        runs = [self.run(report) for report, _ in reports[:MAX_RUNS]]
        log = {"$schema": SCHEMA, "version": "2.1.0", "runs": runs}
        return json.dumps(log, indent=2) + "\n"

    def run(self, report: Report) -> dict[str, Any]:
        rules = [rule_descriptor(r) for r in report.rules]
        index = {r["id"]: i for i, r in enumerate(rules)}
        results = [res for r in report.results for res in self.results(r, index, report)][:MAX_RESULTS]
        target = report.target
        run: dict[str, Any] = {
            "tool": {
                "driver": {
                    "name": "cvmlint",
                    "version": __version__,
                    "semanticVersion": __version__,
                    "informationUri": INFORMATION_URI,
                    "rules": rules,
                }
            },
            "automationDetails": {"id": f"cvmlint/{target.kind}/{target.name}/"},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": self.root.as_uri() + "/"}},
            "results": results,
            "properties": {
                "target": {
                    "kind": target.kind,
                    "name": target.name,
                    "digest": target.digest if isinstance(target.digest, str) else None,
                },
                "policy": {
                    "name": report.policy_name,
                    "version": report.policy_version,
                    "sha256": report.policy_sha256,
                    "profiles": list(report.profiles),
                    "profile_sources": dict(report.profile_sources),
                },
                "config": report.config,
                "summary": report.summary(),
                "notes": list(report.notes),
            },
        }
        if target.kind == "image":
            artifact: dict[str, Any] = {"location": {"uri": target.name}, "roles": ["analysisTarget"]}
            if isinstance(target.digest, str) and target.digest:
                artifact["hashes"] = {"sha-256": target.digest.removeprefix("sha256:")}
            run["artifacts"] = [artifact]
        return run

    def results(self, r: RuleResult, index: dict[str, int], report: Report) -> list[dict[str, Any]]:
        if r.status is Status.UNKNOWN:
            return [
                _result(
                    r,
                    index,
                    "note",
                    f"{r.rule_id} is unknown: {reason}",
                    Place(),
                    report,
                    fingerprint(r, Finding(reason), Place()),
                )
                for reason in r.reasons
            ]
        if r.status not in (Status.FAIL, Status.WAIVED):
            return []
        out = []
        for f in r.findings:
            place = place_of(f, self.root)
            result = _result(
                r, index, LEVEL.get(r.severity, "warning"), f.message, place, report, fingerprint(r, f, place)
            )
            if f.waived_by is not None:
                w = f.waived_by
                result["suppressions"] = [
                    {
                        "kind": "external",
                        "status": "accepted",
                        "justification": f"{w.reason} (approved by {w.approver}, until "
                        f"{w.expires.isoformat()}; {w.where})",
                    }
                ]
            out.append(result)
        return out


def _result(
    r: RuleResult, index: dict[str, int], level: str, message: str, place: Place, report: Report, print_key: str
) -> dict[str, Any]:
    result: dict[str, Any] = {"ruleId": r.rule_id, "level": level, "message": {"text": message}}
    if r.rule_id in index:
        result["ruleIndex"] = index[r.rule_id]
    if place.path:
        physical: dict[str, Any] = {"artifactLocation": {"uri": place.path, "uriBaseId": "%SRCROOT%"}}
        if place.line:
            physical["region"] = {"startLine": place.line}
        result["locations"] = [{"physicalLocation": physical}]
    elif report.target.kind == "image":
        location: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": report.target.name, "index": 0}}}
        if place.logical:
            location["logicalLocations"] = [{"fullyQualifiedName": place.logical, "kind": "resource"}]
        result["locations"] = [location]
    result["partialFingerprints"] = {"cvmlint/v1": print_key}
    return result


def rule_descriptor(rule: RuleInfo) -> dict[str, Any]:
    """A rule, as the report judged with it, as a SARIF reportingDescriptor."""
    rationale = " ".join((rule.rationale or rule.title).split())
    remediation = " ".join((rule.remediation or "").split()) or "See the rule's rationale."
    tags = ["security", *rule.references][:MAX_TAGS]
    return {
        "id": rule.id,
        "name": "".join(w.capitalize() for w in rule.title.replace("-", " ").split() if w.isalnum()),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rationale},
        "help": {
            "text": remediation,
            "markdown": f"**{rule.title}** ({rule.severity})\n\n{rationale}\n\n**Remediation.** {remediation}",
        },
        "helpUri": HELP_URI + rule.id.lower(),
        "defaultConfiguration": {"level": LEVEL.get(rule.severity, "warning")},
        "properties": {
            "tags": tags,
            "precision": "high",
            "security-severity": SECURITY_SEVERITY.get(rule.severity, "5.5"),
        },
    }
