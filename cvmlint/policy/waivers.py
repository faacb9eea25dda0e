"""Waivers: approved, expiring exceptions kept outside the policy, in a TOML file.

[[waiver]]
rule = "CVM-PKG-001"
subject = "openssh-server"     # optional: only findings about this package / path / parameter
target = "sha256:9f2c…"        # optional: only this image (digest) or recipe (name)
reason = "debug image for the Q3 incident, see TICKET-123"
approver = "alice@example.com"
expires = 2026-12-31           # stops applying the day after
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import date
from pathlib import Path

from cvmlint.errors import InputError
from cvmlint.facts.model import Target
from cvmlint.policy.results import Finding, Report, RuleResult, Status, Waiver

_REQUIRED = ("rule", "reason", "approver", "expires")
_ALLOWED = (*_REQUIRED, "subject", "target")


def load_waivers(path: str | Path, shown_as: str | None = None) -> list[Waiver]:
    """Parse a waivers file; every waiver needs a rule, a reason, an approver and an expiry date.
    `shown_as` names the file in each waiver's `where` (a replay reads a copy of the file it names)."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(f"{path}: cannot read waivers: {err.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a TOML waivers file: {err}") from None
    entries = doc.get("waiver", [])
    if not isinstance(entries, list) or set(doc) - {"waiver"}:
        raise InputError(f"{path}: expected only [[waiver]] tables")
    out = []
    for n, entry in enumerate(entries, start=1):
        where = f"{shown_as or path}: waiver #{n}"
        missing = [k for k in _REQUIRED if k not in entry]
        if missing:
            raise InputError(f"{where}: missing {', '.join(missing)} (every waiver needs {', '.join(_REQUIRED)})")
        extra = set(entry) - set(_ALLOWED)
        if extra:
            raise InputError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
        if not isinstance(entry["expires"], date):
            raise InputError(f"{where}: expires must be a TOML date such as 2026-12-31")
        for key in ("rule", "reason", "approver", "subject", "target"):
            if key in entry and not (isinstance(entry[key], str) and entry[key].strip()):
                raise InputError(f"{where}: {key} must be a non-empty string")
        out.append(
            Waiver(
                rule=entry["rule"],
                reason=entry["reason"],
                approver=entry["approver"],
                expires=entry["expires"],
                subject=entry.get("subject"),
                target=entry.get("target"),
                where=where,
            )
        )
    return out


def _on_target(waiver: Waiver, target: Target) -> bool:
    if waiver.target is None:
        return True
    digest = target.digest if isinstance(target.digest, str) else ""
    wanted = waiver.target.removeprefix("sha256:")
    return wanted in (digest.removeprefix("sha256:"), target.name)


def _waive(result: RuleResult, active: list[Waiver]) -> RuleResult:
    if result.status is Status.UNKNOWN:
        whole = next((w for w in active if w.subject is None), None)
        return replace(result, status=Status.WAIVED, note=_note(whole)) if whole else result
    findings: list[Finding] = []
    for finding in result.findings:
        waiver = next((w for w in active if w.subject is None or w.subject == finding.subject), None)
        findings.append(replace(finding, waived_by=waiver) if waiver else finding)
    if all(f.waived_by for f in findings):
        return replace(result, status=Status.WAIVED, findings=tuple(findings), note=_note(findings[0].waived_by))
    return replace(result, findings=tuple(findings))


def _note(w: Waiver | None) -> str:
    return f"waived by {w.approver} until {w.expires}: {w.reason}" if w else ""


def apply_waivers(report: Report, waivers: list[Waiver], today: date | None = None) -> None:
    """Mark waived findings and rules; an expired waiver is not applied and the result says so."""
    today = today or date.today()
    for i, result in enumerate(report.results):
        if result.status not in (Status.FAIL, Status.UNKNOWN):
            continue
        mine = [w for w in waivers if w.rule == result.rule_id and _on_target(w, report.target)]
        active = [w for w in mine if not w.expired(today)]
        expired = [w for w in mine if w.expired(today)]
        updated = _waive(result, active) if active else result
        if expired:
            notes = "; ".join(f"waiver by {w.approver} expired on {w.expires} and no longer applies" for w in expired)
            updated = replace(updated, note="; ".join(x for x in (updated.note, notes) if x))
        report.results[i] = updated
