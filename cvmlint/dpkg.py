"""dpkg's control-file databases (the status file, a mirror's Packages index), read one way everywhere.

A database is paragraphs of `Field: value` lines (a value continues on lines that start with a space
or a tab) separated by blank lines. A package counts as installed when the last word of its `Status`
is `installed`, whatever the selection before it (`install ok installed`, `hold ok installed`): that
is what dpkg itself reports, and what an image runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

STATUS = "/var/lib/dpkg/status"


def paragraphs(text: str) -> Iterator[tuple[int, Mapping[str, str]]]:
    """Each paragraph of `text` with the number of its first line (from 1)."""
    from debian.deb822 import Deb822

    lines = text.splitlines(keepends=True)
    start = 0
    for number in range(len(lines) + 1):
        if number < len(lines) and lines[number].strip():
            continue
        if number > start:
            yield start + 1, Deb822("".join(lines[start:number]))
        start = number + 1


def is_installed(paragraph: Mapping[str, str]) -> bool:
    return bool(paragraph.get("Package")) and paragraph.get("Status", "").split()[-1:] == ["installed"]


def installed_versions(text: str, names: Iterable[str]) -> dict[str, str]:
    """The installed version of each of `names` the status database `text` lists, sorted by name."""
    wanted = set(names)
    found = {
        para["Package"]: para.get("Version", "")
        for _, para in paragraphs(text)
        if is_installed(para) and para["Package"] in wanted
    }
    return dict(sorted(found.items()))
