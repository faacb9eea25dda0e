"""The default terminal view: what needs attention, then one summary line per target.

    recipe recipes/tdx-base: FAIL  (policy cvm-baseline 1.0, profiles: tdx-base (cvmlint.toml); config cvmlint.toml)
      FAIL    CVM-PKG-004  critical  No SSH server in production images
              SSH server package openssh-server is installed
                at recipes/common/mkosi.profiles/dev.conf:5
      summary: 16 pass, 2 fail, 5 skipped; failing: 1 critical, 1 high; exit 1

A passing target is its summary line alone. Locations sit on lines of their own and are never cut;
`--verbose` lists every rule. Colour only when asked (a terminal without NO_COLOR).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from cvmlint.policy.results import Report, RuleResult, Status
from cvmlint.severity import SEVERITY_RANK

COLOURS = {
    Status.FAIL: "31;1",
    Status.ERROR: "35;1",
    Status.UNKNOWN: "33",
    Status.WAIVED: "36",
    Status.PASS: "32",
    Status.SKIPPED: "2",
}
ATTENTION = (Status.FAIL, Status.ERROR, Status.UNKNOWN)
ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.UNKNOWN: 2, Status.WAIVED: 3, Status.PASS: 4, Status.SKIPPED: 5}


class TextReporter:
    """Findings grouped by rule, each once with its location; a summary line per target."""

    def __init__(self, color: bool = False, verbose: bool = False) -> None:
        self.color = color
        self.verbose = verbose

    def paint(self, text: str, status: Status) -> str:
        return f"\x1b[{COLOURS[status]}m{text}\x1b[0m" if self.color else text

    def render(self, report: Report, exit_code: int) -> str:
        return self.render_all([(report, exit_code)])

    def render_all(self, reports: Sequence[tuple[Report, int]]) -> str:
        return "".join(self.target(report, code) for report, code in reports)

    def target(self, report: Report, code: int) -> str:
        verdict = self.paint("PASS", Status.PASS) if code == 0 else self.paint("FAIL", Status.FAIL)
        head = f"{report.target.kind} {report.target.name}: {verdict}  ({report.judged_by()})"
        shown = report.results if self.verbose else [r for r in report.results if r.status in ATTENTION]
        shown = sorted(shown, key=lambda r: (ORDER[r.status], -SEVERITY_RANK.get(r.severity, 0), r.rule_id))
        lines = [head] if shown or report.notes else []
        for r in shown:
            lines += self.rule(r)
        lines += [f"  note: {n}" for n in report.notes]
        lines.append(("  " if lines else "") + self.summary(report, code, "" if lines else head))
        return "\n".join(lines) + "\n"

    def rule(self, r: RuleResult) -> list[str]:
        out = [f"  {self.paint(r.status.value.upper().ljust(7), r.status)} {r.rule_id}  {r.severity}  {r.title}"]
        seen: set[tuple[str, str]] = set()
        for f in r.findings:
            if (f.message, f.location) in seen:
                continue
            seen.add((f.message, f.location))
            out.append(f"          {f.message}" + (" [waived]" if f.waived_by else ""))
            if f.location:
                out.append(f"            at {f.location}")
        if r.status in ATTENTION or self.verbose:
            out += [f"          {reason}" for reason in r.reasons]
        return out

    def summary(self, report: Report, code: int, head: str) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in report.summary().items() if n)
        failing = Counter(r.severity for r in report.results if r.status is Status.FAIL)
        by_severity = ", ".join(f"{n} {s}" for s, n in sorted(failing.items(), key=lambda x: -SEVERITY_RANK[x[0]]))
        text = f"{counts}" + (f"; failing: {by_severity}" if by_severity else "") + f"; exit {code}"
        return f"{head}: {text}" if head else f"summary: {text}"
