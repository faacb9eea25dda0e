"""The one error hierarchy: everything the CLI turns into a message and exit code 2."""

from __future__ import annotations

import functools
import inspect
import lzma
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar


class CvmlintError(Exception):
    """Root of every error cvmlint reports to a user (exit code 2, no traceback); `hint` says what to do."""

    def __init__(self, *args: object, hint: str = "") -> None:
        super().__init__(*args)
        self.hint = hint

    def diagnostics(self) -> str:
        """The text shown to the user, with the fix on a `Tip:` line when there is one."""
        return str(self) + (f"\nTip: {self.hint}" if self.hint else "")


class InputError(CvmlintError):
    """A file given to cvmlint cannot be used (missing, unreadable, malformed)."""


class FormatError(InputError):
    """Malformed binary input: names the format, the structure and the byte offset."""

    def __init__(self, fmt: str, structure: str, offset: int, problem: str) -> None:
        self.fmt = fmt
        self.structure = structure
        self.offset = offset
        self.problem = problem
        place = f" at byte {offset}" if offset >= 0 else ""
        super().__init__(f"{fmt}: {structure}{place}: {problem}")


SHOWN_LINE = 160
"""The most of a source line a diagnostic shows."""


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
        source, column = self.source_line.rstrip(), self.column
        if len(source) > SHOWN_LINE:  # a window around the culprit, not a policy's megabyte line
            start = max(0, column - 1 - SHOWN_LINE // 3)
            source = ("…" if start else "") + source[start : start + SHOWN_LINE] + "…"
            column = column - start + (1 if start else 0)
        width = max(1, min(self.width, SHOWN_LINE - column + 1))
        caret = " " * (len(gutter) - 2) + "| " + " " * (column - 1) + "^" * width
        text = f"{head}\n{gutter}{source}\n{caret}"
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


F = TypeVar("F", bound=Callable[..., Any])

_PARSE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OverflowError,
    RecursionError,
    UnicodeError,
    NotImplementedError,
)
_LIBRARY_ERRORS = (
    ("elftools.common.exceptions", "ELFError"),
    ("libarchive.exception", "ArchiveError"),
    ("zstandard", "ZstdError"),
    ("cryptography.exceptions", "UnsupportedAlgorithm"),
    ("cryptography.x509", "InvalidVersion"),
    ("pefile", "PEFormatError"),
    ("lz4.block", "LZ4BlockError"),
)


_BUG_ERRORS = (TypeError, KeyError, IndexError)
"""Exceptions that, inside a reader, are more often cvmlint's own bug than the input's fault."""


def strict() -> bool:
    """CVMLINT_STRICT=1 (the test suite and the fuzzers): a TypeError, KeyError or IndexError inside a
    reader is not relabelled as malformed input, so a bug of ours fails the run instead of hiding as a
    refusal of the input."""
    import os

    return os.environ.get("CVMLINT_STRICT", "") not in ("", "0")


def _parse_errors() -> tuple[type[BaseException], ...]:
    """What the parsing libraries raise on malformed input (only those already imported: a library that
    was never loaded raised nothing); in strict mode without the exceptions of our own bugs."""
    extra = [
        getattr(sys.modules[m], name)
        for m, name in _LIBRARY_ERRORS
        if m in sys.modules and isinstance(getattr(sys.modules[m], name, None), type)
    ]
    found = _PARSE_ERRORS + tuple(extra)
    return tuple(e for e in found if e not in _BUG_ERRORS) if strict() else found


def _convert(err: BaseException, fmt: str, structure: str) -> FormatError:
    text = str(err).splitlines()[0][:200] if str(err) else ""
    return FormatError(fmt, structure, -1, f"malformed ({type(err).__name__}{': ' + text if text else ''})")


def reader(fmt: str, structure: str) -> Callable[[F], F]:
    """A reader's public entry: every failure of its parsing and of the libraries it calls leaves as one
    FormatError naming the format and the structure (a CvmlintError passes through unchanged)."""

    def wrap(fn: F) -> F:
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen(*args: Any, **kwargs: Any) -> Any:
                try:
                    yield from fn(*args, **kwargs)
                except CvmlintError:
                    raise
                except _parse_errors() as err:
                    raise _convert(err, fmt, structure) from None

            return gen  # type: ignore[return-value]

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except CvmlintError:
                raise
            except _parse_errors() as err:
                raise _convert(err, fmt, structure) from None

        return call  # type: ignore[return-value]

    return wrap


SHOWN_BYTES = "cvmlint-bytes"
"""The codec error handler output is written with: a byte a name carries that is not UTF-8 (read with
surrogate escapes) is shown as `\\xff`, as the text view writes it, other unencodable text as `\\uXXXX`."""


def _show_bytes(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    bad = error.object[error.start : error.end]
    shown = "".join(
        f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else c.encode("ascii", "backslashreplace").decode()
        for c in bad
    )
    return shown, error.end


def register_output_errors() -> None:
    """Make SHOWN_BYTES known to the codecs (once per process; registering again replaces it)."""
    import codecs

    codecs.register_error(SHOWN_BYTES, _show_bytes)
