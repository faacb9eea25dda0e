"""GitHub Actions workflow commands: `::error file=…,line=…,title=…::…` for failing findings and
`::warning` for unknown rules, and a `::notice` with each target's verdict and summary (also when every
rule passes). GitHub shows 10 errors and 10 warnings per step: the rest are not annotated but listed,
with everything else, in the step summary ($GITHUB_STEP_SUMMARY) as a Markdown table when that variable
is set (and counted in a notice either way)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cvmlint.policy.results import Finding, Report, Status
from cvmlint.report.places import place_of, repository_root

Row = tuple[str, str, str, Finding, str]
"""(error|warning, rule, severity, finding, target name)."""

PER_STEP = 10


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


class GithubReporter:
    """Annotations on stdout; the full list in the step summary."""

    def __init__(self, root: Path | None = None, summary: Path | None = None) -> None:
        self.root = root or repository_root()
        env = os.environ.get("GITHUB_STEP_SUMMARY")
        self.summary = summary or (Path(env) if env else None)

    def render(self, report: Report, exit_code: int) -> str:
        return self.render_all([(report, exit_code)])

    def render_all(self, reports: Sequence[tuple[Report, int]]) -> str:
        rows: list[Row] = []
        for report, _ in reports:
            for r in report.results:
                if r.status is Status.FAIL:
                    rows += [
                        ("error", r.rule_id, r.severity, f, report.target.name)
                        for f in r.findings
                        if f.waived_by is None
                    ]
                elif r.status is Status.UNKNOWN:
                    rows += [
                        ("warning", r.rule_id, r.severity, Finding(f"unknown: {reason}"), report.target.name)
                        for reason in r.reasons
                    ]
        lines, shown = [], {"error": 0, "warning": 0}
        for row in rows:
            if shown[row[0]] >= PER_STEP:
                continue
            shown[row[0]] += 1
            lines.append(self.command(row))
        for report, code in reports:  # a line for every target, also when nothing needs attention
            counts = ", ".join(f"{n} {s}" for s, n in report.summary().items() if n)
            verdict = "PASS" if code == 0 else "FAIL"
            said = f"{report.target.kind} {report.target.name}: {verdict} ({report.judged_by()}): {counts}; exit {code}"
            lines.append(f"::notice title={_property('cvmlint ' + verdict)}::{_data(said)}")
        hidden = len(rows) - sum(shown.values())
        if hidden:
            lines.append(
                f"::notice title=cvmlint::{hidden} more findings are not annotated (GitHub shows "
                f"{PER_STEP} errors and {PER_STEP} warnings per step); the step summary lists all"
            )
        if self.summary is not None:
            self.write_summary(reports, rows)
        return "".join(line + "\n" for line in lines)

    def command(self, row: Row) -> str:
        kind, rule, severity, finding, _ = row
        props = [f"title={_property(f'{rule} ({severity})')}"]
        place = place_of(finding, self.root)
        if place.path:
            props.insert(0, f"file={_property(place.path)}" + (f",line={place.line}" if place.line else ""))
        text = finding.message + (f" (at {place.logical})" if place.logical else "")
        return f"::{kind} {','.join(props)}::{_data(text)}"

    def write_summary(self, reports: Sequence[tuple[Report, int]], rows: list[Row]) -> None:
        assert self.summary is not None
        lines = ["## cvmlint", ""]
        for report, code in reports:
            counts = ", ".join(f"{n} {s}" for s, n in report.summary().items() if n)
            lines.append(f"* {report.target.kind} `{report.target.name}`: {counts}; exit {code}")
        if rows:
            lines += ["", "| | rule | severity | finding | where | target |", "|---|---|---|---|---|---|"]
            lines += [
                f"| {kind} | {rule} | {sev} | {f.message.replace('|', '/')} | `{f.location}` | {target} |"
                for kind, rule, sev, f, target in rows
            ]
        with open(self.summary, "a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
