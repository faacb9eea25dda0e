"""The dpkg databases read one way: the image's packages, the build tools recorded, the tool root's mkosi."""

from __future__ import annotations

from pathlib import Path

from cvmlint import dpkg
from cvmlint.build.mkosi import BUILD_TOOLS, Mkosi, _root_version, tool_versions
from cvmlint.build.rebuild import _tool_changes

STATUS = """\
Package: mkosi
Status: install ok installed
Version: 25.3-1
Description: build images
 continued line naming Package: fake

Package: systemd-repart
Status: hold ok installed
Version: 257.9-1

Package: dpkg
Status: deinstall ok config-files
Version: 1.21

Package: apt
Status: install ok half-configured
Version: 2.6
"""


def test_installed_means_dpkg_says_installed_whatever_the_selection() -> None:
    versions = dpkg.installed_versions(STATUS, ["mkosi", "systemd-repart", "dpkg", "apt", "fake"])
    assert versions == {"mkosi": "25.3-1", "systemd-repart": "257.9-1"}


def test_paragraphs_start_at_their_first_line() -> None:
    lines = [line for line, _ in dpkg.paragraphs("\n\n" + STATUS)]
    assert lines == [3, 9, 13, 17]


def test_tool_versions_read_from_the_tool_root(tmp_path: Path) -> None:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(STATUS)
    assert tool_versions(Mkosi("25", tmp_path)) == {"mkosi": "25.3-1", "systemd-repart": "257.9-1"}
    assert _root_version(tmp_path) == "25.3-1"


def test_unreadable_tool_versions_are_recorded_unknown_and_never_unchanged(tmp_path: Path) -> None:
    recorded = tool_versions(Mkosi("25", tmp_path))
    assert set(recorded) == set(BUILD_TOOLS)
    assert all(v.startswith("unknown (") and "status" in v for v in recorded.values())
    assert _root_version(tmp_path) == "unknown"
    changes = _tool_changes(recorded, dict(recorded))
    assert len(changes) == len(BUILD_TOOLS) and changes[0].startswith(sorted(BUILD_TOOLS)[0])
    assert _tool_changes({"mkosi": "25.3-1"}, {"mkosi": "25.3-1"}) == []
