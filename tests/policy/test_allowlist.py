"""Allowlist files: names, globs, Debian version constraints, malformed lines."""

from __future__ import annotations

import pytest

from cvmlint.errors import PolicyError
from cvmlint.facts import Unknown
from cvmlint.policy.allowlist import parse_allowlist, version_compare


def test_names_globs_and_ranges() -> None:
    allow = parse_allowlist("# c\nbash   # the shell\nlinux-image-*-cvm\nlibc6 (>= 2.36), (<< 2.37)\n", "a.txt")
    assert allow.names() == ["bash", "linux-image-*-cvm", "libc6"]
    assert allow.permits("bash", "anything") is True
    assert allow.permits("linux-image-6.8.0-48-cvm", "1") is True
    assert allow.permits("linux-image-6.8.0-48-generic", "1") is False
    assert allow.permits("libc6", "2.36-9+deb12u4") is True
    assert allow.permits("libc6", "2.37-1") is False
    assert allow.permits("libc6", "2.35") is False
    assert allow.permits("libc6", "9", check_version=False) is True


def test_constraint_on_an_unknown_version_is_unknown() -> None:
    allow = parse_allowlist("openssl (>= 3.0.13)\n", "a.txt")
    verdict = allow.permits("openssl", Unknown("decided at build time"))
    assert isinstance(verdict, Unknown) and "line 1 constrains the version" in verdict.reason


def test_dpkg_ordering() -> None:
    assert version_compare("1.0~rc1", "1.0") < 0
    assert version_compare("1:0.1", "2.0") > 0
    assert version_compare("3.0.13-0ubuntu3.4", "3.0.13-0ubuntu3.10") < 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Bash\n", "2:1|1:1: error: expected a package name"),
        ("foo (< 1.0)\n", "1:5: error: ambiguous operator '<'"),
        ("foo >= 1.0\n", "1:5: error: unexpected '>= 1.0' after the package name"),
        ("foo\nfoo\n", "2:1: error: 'foo' is listed twice (first on line 1)"),
    ],
)
def test_malformed_lines(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_allowlist(text, "a.txt")
    rendered = info.value.diagnostics()
    assert any(f"a.txt:{m}" in rendered for m in message.split("|")), rendered
