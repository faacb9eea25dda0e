"""Licences from DEP-5 copyright files an image holds: hostile text gives no licence, never an error."""

from __future__ import annotations

from cvmlint.sbom import _dep5_licences, spdx_expression

FORMAT = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"


def test_the_applying_licences_are_read_and_mapped() -> None:
    text = FORMAT + "\nFiles: *\nCopyright: 2001 A\nLicense: GPL-2+ or Artistic\n\nFiles: b/*\nLicense: Expat\n"
    text += "\nLicense: Expat\n Permission is hereby granted …\n"  # a stand-alone text, not an applying licence
    assert _dep5_licences(text) == ["GPL-2+ or Artistic", "Expat"]
    assert spdx_expression(["GPL-2+ or Artistic", "Expat"]) == "(GPL-2.0-or-later OR Artistic-1.0-Perl) AND MIT"
    assert spdx_expression(["GPL-2", "public-domain"]) is None  # no SPDX identifier: the names are given


def test_a_malformed_field_found_only_when_read_gives_no_licence() -> None:
    """python-debian parses a field when it is read; a bad continuation line raised there (found by fuzzing
    the copyright files of a Debian tree)."""
    text = FORMAT + "License: BSD-variant\n\t   2012-2015 A <a@example.org>\n"  # a tab, not a space, continues
    assert _dep5_licences(text) == []
    assert _dep5_licences("Format: \x00\n\n\n:\n") == []
