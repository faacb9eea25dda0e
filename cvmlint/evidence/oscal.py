"""OSCAL assessment-results (NIST OSCAL 1.1) from a report: the rules' NIST SP 800-53 references are the
controls reviewed, each rule an observation, each failed or unknown rule a finding.

Identifiers are UUIDv5 of the target digest and the rule, so one scan gives one document.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from cvmlint import __version__
from cvmlint.policy.results import Status

if TYPE_CHECKING:
    from cvmlint.evidence.bundle import Evidence

OSCAL_VERSION = "1.1.2"
NAMESPACE = uuid.UUID("6f0c7a52-9a59-4c87-8d3f-3f7a1d6a1c9e")
NIST = re.compile(r"^NIST-800-53:([A-Z]{2})-(\d+)(?:\((\d+)\))?$")
STATE = {
    Status.PASS: "satisfied",
    Status.WAIVED: "satisfied",
    Status.FAIL: "not-satisfied",
    Status.UNKNOWN: "not-satisfied",
    Status.ERROR: "not-satisfied",
}


NS = "https://cvmlint.dev/ns/oscal"
"""The namespace of cvmlint's own OSCAL properties."""


def control_id(reference: str) -> str | None:
    """`NIST-800-53:CM-7(5)` -> `cm-7.5`; None for references outside SP 800-53."""
    m = NIST.match(reference)
    if m is None:
        return None
    family, number, enhancement = m.groups()
    return f"{family.lower()}-{int(number)}" + (f".{int(enhancement)}" if enhancement else "")


def assessment_results(ev: Evidence) -> dict[str, Any]:
    report = ev.report
    seed = f"{report.target.kind}:{ev.inputs.get('sha256') or report.target.digest}:{ev.policy.sha256}"

    def uid(*parts: str) -> str:
        return str(uuid.uuid5(NAMESPACE, "/".join((seed, *parts))))

    when = ev.finished.strftime("%Y-%m-%dT%H:%M:%SZ")
    controls = sorted({c for r in report.results for c in map(control_id, r.references) if c})
    observations, findings = [], []
    for r in report.results:
        evidence = [{"description": f"{f.message} at {f.location}" if f.location else f.message} for f in r.findings]
        label = {Status.UNKNOWN: "unknown", Status.SKIPPED: "skipped"}.get(r.status, "reason")
        evidence += [{"description": f"{label}: {reason}"} for reason in r.reasons]
        observation = {
            "uuid": uid("obs", r.rule_id),
            "title": f"{r.rule_id}: {r.title}",
            "description": f"cvmlint rule {r.rule_id} ({r.severity}) on {report.target.name}: {r.status.value}",
            "methods": ["TEST"],
            "collected": when,
            "props": [{"name": "result", "ns": NS, "value": r.status.value}],
        }
        if evidence:
            observation["relevant-evidence"] = evidence
        observations.append(observation)
        if r.status in (Status.FAIL, Status.UNKNOWN, Status.ERROR):
            named = [c for c in map(control_id, r.references) if c]
            finding: dict[str, Any] = {
                "uuid": uid("finding", r.rule_id),
                "title": f"{r.rule_id}: {r.title}",
                "description": r.findings[0].message if r.findings else "; ".join(r.reasons),
                "target": {
                    "type": "objective-id",
                    "target-id": f"{named[0] if named else r.rule_id.lower()}_obj",
                    "status": {"state": STATE[r.status]},
                },
                "related-observations": [{"observation-uuid": uid("obs", r.rule_id)}],
            }
            if named:  # one finding per rule; every control it maps to is named on it
                finding["props"] = [{"name": "control-id", "ns": NS, "value": c} for c in named]
            findings.append(finding)
    result: dict[str, Any] = {
        "uuid": uid("result"),
        "title": f"cvmlint {report.policy_name} {report.policy_version} on {report.target.name}",
        "description": f"Policy {report.policy_name} {report.policy_version} (sha256 {report.policy_sha256}), "
        f"profiles: {', '.join(report.profiles) or 'none'}.",
        "start": ev.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": when,
        "reviewed-controls": {
            "control-selections": [
                {"include-controls": [{"control-id": c} for c in controls]} if controls else {"include-all": {}}
            ]
        },
    }
    if observations:
        result["observations"] = observations
    if findings:
        result["findings"] = findings
    return {
        "assessment-results": {
            "uuid": uid("document"),
            "metadata": {
                "title": f"cvmlint assessment of {report.target.name}",
                "last-modified": when,
                "version": __version__,
                "oscal-version": OSCAL_VERSION,
            },
            "import-ap": {"href": "#cvmlint-policy"},
            "results": [result],
        }
    }
