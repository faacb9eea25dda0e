"""The HTML report: one self-contained page (no scripts, fonts or network) an auditor can read cold.

Top to bottom: the verdict in one line and what failed (so a reader sees in five seconds what failed
and why), what was checked (target, digests, partitions, policy, tool, time, signature), then every
rule with its rationale, remediation, references, findings, unknowns and waivers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from html import escape
from typing import Any

from cvmlint import __version__
from cvmlint.policy.results import Report, RuleInfo, RuleResult, Status
from cvmlint.severity import SEVERITY_RANK

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1c1e21;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px} h3{font-size:15px;margin:0}
.verdict{border-radius:8px;padding:16px 20px;color:#fff;margin:12px 0}
.verdict.fail{background:#b3261e} .verdict.pass{background:#1e7b34}
.verdict .big{font-size:26px;font-weight:700} .warn{background:#8a5a00;color:#fff;padding:8px 12px;border-radius:6px}
table{border-collapse:collapse;width:100%;background:#fff} td,th{border:1px solid #d9dce1;padding:6px 8px;
text-align:left;vertical-align:top} th{background:#eef0f3} code{font:13px ui-monospace,Menlo,monospace;
word-break:break-all}
.st{font-weight:700;text-transform:uppercase;font-size:12px;padding:2px 6px;border-radius:4px;color:#fff}
.st.fail{background:#b3261e}.st.pass{background:#1e7b34}.st.unknown{background:#8a5a00}
.st.waived{background:#2d6cdf}.st.skipped{background:#7a7f87}.st.error{background:#6b2fa8}
.sev-critical{color:#b3261e;font-weight:700}.sev-high{color:#c2410c;font-weight:700}
details{background:#fff;border:1px solid #d9dce1;border-radius:6px;margin:6px 0;padding:8px 12px}
summary{cursor:pointer} .muted{color:#5f6670} td{overflow-wrap:anywhere}
@media (max-width:700px){main{padding:10px} table.failed,table.failed tr,table.failed td{display:block}
table.failed tr:first-child{display:none} table.failed td{border:0;padding:2px 6px}
table.failed tr{border:1px solid #d9dce1;margin:6px 0}}
"""
ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.UNKNOWN: 2, Status.WAIVED: 3, Status.PASS: 4, Status.SKIPPED: 5}


def render_html(
    report: Report,
    exit_code: int,
    inputs: dict[str, Any],
    signed_by: str | None,
    when: str | None = None,
    by: str | None = None,
    packages: int | None = None,
) -> str:
    """The whole page for one target; `packages` (a bundle's page) links the SBOMs beside it."""
    if packages is not None:
        inputs = inputs | {"sbom_packages": packages}
    return render_page([(report, exit_code, inputs)], signed_by, when, by)


def render_page(
    targets: Sequence[tuple[Report, int, dict[str, Any]]],
    signed_by: str | None,
    when: str | None = None,
    by: str | None = None,
) -> str:
    """One page for one or several targets (a lint of several recipes): a section per target."""
    if len(targets) == 1:
        title = f"{targets[0][0].target.kind} <code>{escape(targets[0][0].target.name)}</code>"
        page_title = targets[0][0].target.name
    else:
        title = f"{len(targets)} targets"
        page_title = ", ".join(r.target.name for r, _, _ in targets)
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'><title>cvmlint: "
        + f"{escape(page_title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>cvmlint report: {title}</h1>",
    ]
    if signed_by is None:
        parts.append("<p class=warn>This report is UNSIGNED: nothing ties it to who made it.</p>")
    for report, code, inputs in targets:
        if len(targets) > 1:
            parts.append(
                f"<h1 id='{escape(report.target.name)}'>{escape(report.target.kind)} "
                f"<code>{escape(report.target.name)}</code></h1>"
            )
        parts.append(_section(report, code, inputs, signed_by, when, by))
    parts.append(f"<p class=muted>Made by cvmlint {escape(__version__)}.</p></main></body></html>\n")
    return "".join(parts)


def _section(
    report: Report, exit_code: int, inputs: dict[str, Any], signed_by: str | None, when: str | None, by: str | None
) -> str:
    """One target: its verdict, what failed, what was checked, every rule."""
    rules = {r.id: r for r in report.rules}
    failing = [r for r in report.results if r.status in (Status.FAIL, Status.ERROR, Status.UNKNOWN)]
    failing.sort(key=lambda r: (ORDER[r.status], -SEVERITY_RANK.get(r.severity, 0), r.rule_id))
    parts = [_verdict(report, exit_code), *[f"<p class=warn>{escape(n)}</p>" for n in report.notes]]
    if failing:
        parts.append(
            "<h2>What failed, and why</h2><table class=failed><tr><th>rule</th><th>severity</th><th>result</th>"
            "<th>why</th><th>where</th></tr>"
        )
        parts += [_failing_row(r) for r in failing]
        parts.append("</table>")
    parts.append(_checked(report, inputs, signed_by, when, by))
    parts.append("<h2>Every rule</h2>")
    ordered = sorted(report.results, key=lambda r: (ORDER[r.status], -SEVERITY_RANK.get(r.severity, 0), r.rule_id))
    parts += [_rule(r, rules.get(r.rule_id)) for r in ordered]
    return "".join(parts)


def _verdict(report: Report, exit_code: int) -> str:
    counts = report.summary()
    by_severity = Counter(r.severity for r in report.results if r.status is Status.FAIL)
    severities = ", ".join(f"{n} {s}" for s, n in sorted(by_severity.items(), key=lambda x: -SEVERITY_RANK[x[0]]))
    word = "FAIL" if exit_code else "PASS"
    line = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return (
        f"<div class='verdict {word.lower()}'><div class=big>{word}: {counts['fail']} rules failed, "
        f"{counts['unknown']} unknown</div><div>{escape(line)}"
        f"{'; failures by severity: ' + escape(severities) if severities else ''}</div></div>"
    )


def _failing_row(r: RuleResult) -> str:
    why = r.findings[0].message if r.findings else (r.reasons[0] if r.reasons else r.title)
    more = f" <span class=muted>(+{len(r.findings) - 1} more)</span>" if len(r.findings) > 1 else ""
    where = r.findings[0].location if r.findings else ""
    return (
        f"<tr><td><a href='#{escape(r.rule_id)}'>{escape(r.rule_id)}</a><br>{_prose(r.title)}</td>"
        f"<td class=sev-{escape(r.severity)}>{escape(r.severity)}</td><td>{_status(r.status)}</td>"
        f"<td>{_prose(why)}{more}</td><td><code>{escape(where)}</code></td></tr>"
    )


def _prose(text: str) -> str:
    """Text a rule or finding wrote, escaped, with its `code` spans shown as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def _status(status: Status) -> str:
    return f"<span class='st {status.value}'>{status.value}</span>"


def _checked(report: Report, inputs: dict[str, Any], signed_by: str | None, when: str | None, by: str | None) -> str:
    rows = [("target", f"{report.target.kind} <code>{escape(report.target.name)}</code>")]
    if inputs.get("sha256"):
        rows.append(("SHA-256", f"<code>{escape(inputs['sha256'])}</code>"))
    if inputs.get("size"):
        rows.append(("size", f"{inputs['size']:,} bytes"))
    verity = inputs.get("verity") or {}
    if verity.get("root_hash"):
        rows.append(("dm-verity root hash", f"<code>{escape(verity['root_hash'])}</code>"))
    rows.append(
        (
            "policy",
            f"{escape(report.policy_name)} {escape(report.policy_version)}, sha256 "
            f"<code>{escape(report.policy_sha256)}</code>",
        )
    )
    rows.append(("profiles", escape(report.profiles_text() or "none")))
    if report.config:
        rows.append(("configuration", escape(report.config)))
    if "sbom_packages" in inputs:
        rows.append(("software", _software(inputs)))
    rows.append(("signed", f"by key <code>{escape(signed_by)}</code>" if signed_by else "<b>no: unsigned</b>"))
    rows.append(("checked", escape(f"{when or 'now'} by cvmlint {__version__}" + (f", run by {by}" if by else ""))))
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    partitions = inputs.get("partitions") or []
    if partitions:
        table += (
            "<tr><th>partitions</th><td><table><tr><th>#</th><th>name</th><th>type</th><th>size</th>"
            "<th>SHA-256</th></tr>"
            + "".join(
                f"<tr><td>{p['number']}</td><td>{escape(p['name'])}</td><td>{escape(p['type'])}</td>"
                f"<td>{p['size']:,}</td><td><code>{escape(p['sha256'])}</code></td></tr>"
                for p in partitions
            )
            + "</table></td></tr>"
        )
    for item in inputs.get("files", [])[:200]:
        table += (
            f"<tr><th>read</th><td><code>{escape(item['path'])}</code> <code>{escape(item['sha256'])}</code></td></tr>"
        )
    return f"<h2>What was checked</h2><table>{table}</table>"


def _software(inputs: dict[str, Any]) -> str:
    """The package count, by origin when a build knows it, and the bill of materials beside the page."""
    count = inputs["sbom_packages"]
    origins = inputs.get("package_origins") or {}
    text = f"{count} packages"
    if origins:
        declared, pulled = len(origins.get("declared", [])), len(origins.get("pulled_in", []))
        text += f": {declared} declared by the recipe, {pulled} pulled in as dependencies"
    links = "<a href='sbom.cdx.json'>CycloneDX</a>, <a href='sbom.spdx.json'>SPDX</a>"
    return f"{escape(text)}; bill of materials: {links}"


def _rule(r: RuleResult, rule: RuleInfo | None) -> str:
    body = [f"<p>{_status(r.status)} <span class=sev-{escape(r.severity)}>{escape(r.severity)}</span></p>"]
    if rule is not None and rule.rationale:
        body.append(f"<p><b>Why it matters.</b> {_prose(rule.rationale)}</p>")
    if rule is not None and rule.remediation:
        body.append(f"<p><b>What to do.</b> {_prose(rule.remediation)}</p>")
    if r.references:
        body.append(f"<p><b>Controls.</b> {escape(', '.join(r.references))}</p>")
    if r.findings:
        body.append(
            "<table><tr><th>finding</th><th>where</th><th>waiver</th></tr>"
            + "".join(
                f"<tr><td>{_prose(f.message)}</td><td><code>{escape(f.location)}</code></td><td>{_waiver(f)}</td></tr>"
                for f in r.findings
            )
            + "</table>"
        )
    body += [
        f"<p><b>{'Unknown because' if r.status is Status.UNKNOWN else 'Reason'}:</b> {_prose(x)}</p>" for x in r.reasons
    ]
    if r.note:
        body.append(f"<p class=muted>{escape(r.note)}</p>")
    opened = " open" if r.status in (Status.FAIL, Status.ERROR, Status.UNKNOWN) else ""
    return (
        f"<details id='{escape(r.rule_id)}'{opened}><summary><h3 style=display:inline>{escape(r.rule_id)} — "
        f"{_prose(r.title)}</h3> {_status(r.status)}</summary>{''.join(body)}</details>"
    )


def _waiver(f: Any) -> str:
    w = f.waived_by
    if w is None:
        return ""
    return escape(f"waived by {w.approver} until {w.expires.isoformat()}: {w.reason}")
