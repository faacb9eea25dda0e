"""The terminal table: rule, severity, result, message, where."""

from __future__ import annotations

import io

from cvmlint.policy.results import Report, RuleResult, Status

_STYLE = {
    Status.PASS: "green",
    Status.FAIL: "bold red",
    Status.UNKNOWN: "yellow",
    Status.WAIVED: "cyan",
    Status.SKIPPED: "dim",
    Status.ERROR: "bold magenta",
}


def _rows(r: RuleResult) -> list[tuple[str, str]]:
    """(message, where) lines for one result."""
    if r.findings:
        return [(f.message + (" [waived]" if f.waived_by else ""), f.location) for f in r.findings]
    if r.reasons:
        return [(reason, "") for reason in r.reasons]
    return [(r.title, "")]


FIXED = 15 + 10 + 9 + 16
"""The rule, severity and result columns, and the borders and padding of five columns."""


def break_path(text: str, width: int) -> str:
    """`text` in lines of at most `width`, broken after a `/` (a name longer than a line is folded)."""
    import re

    lines, line = [], ""
    for part in re.split(r"(?<=/)", text):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    return "\n".join([*lines, line])


def columns(color: bool) -> int | None:
    """The width: $COLUMNS when it is set (piped output too), else the terminal's, else 160."""
    import os

    text = os.environ.get("COLUMNS", "")
    if text.isdigit() and 40 <= int(text) <= 1000:
        return int(text)
    return None if color else 160


class TableReporter:
    """A rich table; colour only when `color` is set (the CLI sets it on a terminal)."""

    def __init__(self, color: bool = False, width: int | None = None) -> None:
        self.color = color
        self.width = width

    def render(self, report: Report, exit_code: int) -> str:
        """The table, a summary line and any notes."""
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        out = io.StringIO()
        # NOTE: cells are Text objects and markup is off: messages quote file contents (brackets
        # included), and parsing markup in every cell was most of the rendering time.
        console = Console(
            file=out,
            force_terminal=self.color,
            no_color=not self.color,
            markup=False,
            emoji=False,
            width=self.width or columns(self.color),
            highlight=False,
        )
        # A location is never split inside a name: its column is as wide as the longest one (up to half
        # of what the fixed columns leave), a longer one is broken after a `/`, and the message wraps at
        # spaces instead.
        longest = max((len(where) for r in report.results for _, where in _rows(r)), default=5)
        where_width = max(5, min(longest, (console.width - FIXED) // 2))
        table = Table(show_lines=False, expand=False)
        for col, kw in (
            ("rule", {"no_wrap": True}),
            ("severity", {"no_wrap": True}),
            ("result", {"no_wrap": True}),
            ("message", {"ratio": 1, "min_width": 16}),
            ("where", {"width": where_width, "overflow": "fold"}),
        ):
            table.add_column(col, **kw)
        for r in report.results:
            for i, (message, where) in enumerate(_rows(r)):
                first = i == 0
                table.add_row(
                    Text(r.rule_id if first else ""),
                    Text(r.severity if first else ""),
                    Text(r.status.value, _STYLE[r.status]) if first else Text(""),
                    Text(message),
                    Text(break_path(where, where_width)),
                )
            if r.note and r.findings:
                table.add_row(Text(""), Text(""), Text(""), Text(r.note, "dim"), Text(""))
        console.print(table)
        counts = ", ".join(f"{n} {s}" for s, n in report.summary().items() if n)
        console.print(f"{report.target.kind} {report.target.name}: {report.judged_by()}: {counts}; exit {exit_code}")
        for note in report.notes:
            console.print(f"note: {note}")
        return out.getvalue()
