"""Patterns matched against text an image or recipe chose (`matches`, `glob`): RE2, linear time.

Python's `re` backtracks: `^(a+)+$` against a file name of thirty `a`s and a `!` never ends. RE2
matches in time linear in the text and refuses what it cannot do so (back-references, look-around);
the policy checker reports such a pattern as a compile error at its line. RE2 syntax is Perl's for
everything else (`\\d`, `(?i)`, `[[:alpha:]]`, non-greedy repetition).
"""

from __future__ import annotations

import fnmatch
import re
from functools import lru_cache
from typing import Any

MAX_PROGRAM = 8 << 20
"""RE2's memory budget for one compiled pattern (a pattern that needs more is refused)."""


class PatternError(ValueError):
    """A pattern RE2 cannot compile; the message says why."""


def _options() -> Any:
    import re2

    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_PROGRAM
    # NOTE: a policy asks only whether a pattern matches: groups need not be captured, and capturing
    # costs each search time in proportion to the number of groups (thousands of nested empty groups
    # made every file name's search take milliseconds).
    options.never_capture = True
    return options


PATTERNS_KEPT = 1024
"""Compiled patterns kept (a policy has a few dozen; a process reading many policies stays bounded)."""


@lru_cache(maxsize=PATTERNS_KEPT)
def regex(pattern: str) -> Any:
    """The compiled pattern (`.search(text)` finds a match anywhere, like `re.search`)."""
    import re2

    try:
        compiled = re2.compile(pattern, options=_options())
    except re2.error as err:
        message = err.args[0].decode(errors="replace") if err.args and isinstance(err.args[0], bytes) else str(err)
        raise PatternError(f"{message} (patterns are RE2: no back-references or look-around)") from None
    from cvmlint import limits

    most = limits.get("pattern-instructions")
    if compiled.programsize > most:
        raise PatternError(
            f"the pattern compiles to {compiled.programsize} RE2 instructions, over the limit pattern-instructions "
            f"= {most}: write it simpler (every file name of an image is matched against it)"
        )
    return compiled


def check(pattern: str) -> str | None:
    """Why `pattern` cannot be used, or None."""
    try:
        regex(pattern)
    except PatternError as err:
        return str(err)
    return None


@lru_cache(maxsize=PATTERNS_KEPT)
def glob(pattern: str) -> Any:
    """A path glob: `*` and `?` stay within one path component; `**` crosses `/`; `[...]` a class.
    Matched with `.fullmatch(text)`."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) > 0:
            out.append(fnmatch.translate(pattern[i : end + 1])[4:-3])
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return regex("(?s)" + "".join(out))
