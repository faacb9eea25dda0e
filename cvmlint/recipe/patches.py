"""Kernel patches: `git format-patch` mails or plain unified diffs.

    From <sha> Mon Sep 17 00:00:00 2001        (mbox; optional)
    Subject: [PATCH 1/2] ACPI: …                 the subject, without the [PATCH …] tag
    diff --git a/drivers/x.c b/drivers/x.c
    --- a/drivers/x.c  /  +++ b/drivers/x.c      the files changed
    @@ -10,7 +10,9 @@ int func(void)           old start,count / new start,count; the text after the
                                                 second @@ is the function the hunk is in
A hunk whose lines do not add up to its counts (a hand-edited patch) makes the patch not
well formed, with the line of the hunk named.
"""

from __future__ import annotations

import re
from pathlib import Path

from cvmlint.facts.model import Patch
from cvmlint.facts.provenance import Provenance
from cvmlint.recipe.ini import read_text

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")
FUNCTION = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def parse_patch(path: Path, display: str) -> Patch:
    text = read_text(path, "patch", display)
    lines = text.splitlines()
    subject = _subject(lines)
    files: list[str] = []
    functions: list[str] = []
    problem = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("+++ ") and i > 0 and lines[i - 1].startswith("--- "):
            name = line[4:].split("\t")[0].strip()
            if name != "/dev/null":
                name = name[2:] if name.startswith("b/") else name
                files.append(name)
            elif lines[i - 1][4:].strip() != "/dev/null":
                removed = lines[i - 1][4:].split("\t")[0].strip()
                files.append(removed[2:] if removed.startswith("a/") else removed)
        m = HUNK.match(line)
        if m:
            old = int(m.group(2)) if m.group(2) is not None else 1
            new = int(m.group(4)) if m.group(4) is not None else 1
            fn = FUNCTION.search(m.group(5))
            if fn and fn.group(1) not in functions:
                functions.append(fn.group(1))
            header = i + 1
            i, found = _hunk(lines, i + 1, old, new)
            if found and not problem:
                problem = f"the hunk at line {header} {found}"
            continue
        i += 1
    if not files and not problem:
        problem = "no file changes (not a patch)"
    return Patch(
        file=display,
        subject=subject,
        files=tuple(dict.fromkeys(files)),
        functions=tuple(functions),
        well_formed=not problem,
        problem=problem,
        where=Provenance(file=display, line=1),
    )


def _hunk(lines: list[str], i: int, old: int, new: int) -> tuple[int, str]:
    """Walk a hunk's body; the index after it and what is wrong, if anything."""
    while old > 0 or new > 0:
        if i >= len(lines):
            return i, f"ends early: {old} old and {new} new lines missing"
        line = lines[i]
        if line.startswith("\\"):  # "\ No newline at end of file"
            i += 1
            continue
        tag = line[:1]
        if tag == " " or line == "":
            old, new = old - 1, new - 1
        elif tag == "-":
            old -= 1
        elif tag == "+":
            new -= 1
        else:
            return i, f"has a line that is not context, removal or addition: {line[:40]!r}"
        if old < 0 or new < 0:
            return i, "has more lines than its header counts"
        i += 1
    return i, ""


def _subject(lines: list[str]) -> str:
    for k, line in enumerate(lines):
        if line.lower().startswith("subject:"):
            subject = line.split(":", 1)[1].strip()
            for more in lines[k + 1 :]:
                if not more.startswith((" ", "\t")):
                    break
                subject += " " + more.strip()
            return re.sub(r"^\[PATCH[^\]]*\]\s*", "", subject)
        if line.startswith(("diff --git", "--- ")):
            break
    return ""
