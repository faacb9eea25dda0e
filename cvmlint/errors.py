"""The one error hierarchy: everything the CLI turns into a message and exit code 2."""

from __future__ import annotations

from dataclasses import dataclass


class CvmlintError(Exception):
    """Root of every error cvmlint reports to a user (exit code 2, no traceback)."""

    def diagnostics(self) -> str:
        """The text shown to the user."""
        return str(self)


class InputError(CvmlintError):
    """A file given to cvmlint cannot be used (missing, unreadable, malformed)."""


class FormatError(InputError):
    """Malformed binary input: names the format, the structure and the byte offset."""

    def __init__(self, fmt: str, structure: str, offset: int, problem: str) -> None:
        self.fmt = fmt
        self.structure = structure
        self.offset = offset
        self.problem = problem
        super().__init__(f"{fmt}: {structure} at byte {offset}: {problem}")


@dataclass(frozen=True)
class Diagnostic:
    """One compiler-style message about a policy or data file."""

    path: str
    line: int
    column: int
    message: str
    source_line: str = ""
    width: int = 1
    hint: str = ""
    severity: str = "error"

    def render(self) -> str:
        """`path:line:col: error: message`, the source line and a caret under the culprit."""
        head = f"{self.path}:{self.line}:{self.column}: {self.severity}: {self.message}"
        if not self.source_line:
            return head + (f"\n  hint: {self.hint}" if self.hint else "")
        gutter = f"{self.line:5d} | "
        caret = " " * (len(gutter) - 2) + "| " + " " * (self.column - 1) + "^" * max(1, self.width)
        text = f"{head}\n{gutter}{self.source_line.rstrip()}\n{caret}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class PolicyError(CvmlintError):
    """A policy (or a data file it loads) is malformed: one or more diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.items = diagnostics
        super().__init__("\n".join(d.render() for d in diagnostics))

    def diagnostics(self) -> str:
        """All diagnostics, each with its source line and caret."""
        return "\n".join(d.render() for d in self.items)
