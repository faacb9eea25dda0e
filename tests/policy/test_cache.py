"""The per-user cache of parsed policy files and checked policies: a hit gives the same policy without the
parser and the checker, a changed policy or data file is read again, and an entry that is planted,
tampered with or writable by others is never trusted (it is parsed and checked again)."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest

from cvmlint import cache
from cvmlint.policy import loader
from cvmlint.policy.loader import load_policy
from cvmlint.policy.parser import parse_policy_text

POLICY = """policy "cached" version "1"
rule T-001 "read-only root" {
  severity high
  require rootfs.read_only
}
"""


class Planted:
    """What an attacker would pickle: unpickling it runs os.system."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch PWNED",))


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CVMLINT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CVMLINT_NO_CACHE", raising=False)
    monkeypatch.chdir(tmp_path)
    loader._PARSED.clear()
    loader._CHECKED.clear()
    policy = tmp_path / "p.cvmp"
    policy.write_text(POLICY)
    return policy


def entries(policy: Path) -> list[Path]:
    return sorted((policy.parent / "cache" / "policy").glob("*.pickle"))


def fresh_load(policy: Path) -> loader.Policy:
    loader._PARSED.clear()
    loader._CHECKED.clear()
    return load_policy(policy)


def test_a_hit_needs_no_parser(cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = fresh_load(cached)
    assert len(entries(cached)) == 2  # the parsed file and the checked policy
    assert {oct(e.stat().st_mode & 0o777) for e in entries(cached)} == {"0o600"}

    def no_parser(text: str, path: str) -> None:
        raise AssertionError("parsed although cached")

    monkeypatch.setattr(loader, "parse_policy_text", no_parser)
    again = fresh_load(cached)
    assert again.rules == first.rules and again.sha256 == first.sha256
    for entry in entries(cached):  # without the checked policy, the parsed file still needs no parser
        if _holds_checked(entry):
            entry.unlink()
    assert fresh_load(cached).rules == first.rules


def _holds_checked(entry: Path) -> bool:
    return b"_Checked" in entry.read_bytes()


def test_a_checked_hit_needs_no_checker_until_a_data_file_changes(
    cached: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (cached.parent / "pkgs.list").write_text("bash\n")
    cached.write_text(
        POLICY.replace("rule T-001", 'use list "pkgs.list" as pkgs\nrule T-001').replace(
            "rootfs.read_only", "all p in packages: p.name in pkgs"
        )
    )
    first = fresh_load(cached)
    checks: list[Path] = []
    real = loader._check

    def counted(root: Path) -> Any:
        checks.append(root)
        return real(root)

    monkeypatch.setattr(loader, "_check", counted)
    assert fresh_load(cached).uses["pkgs"].names() == first.uses["pkgs"].names() == ["bash"]
    assert checks == []
    (cached.parent / "pkgs.list").write_text("bash\napt\n")
    assert fresh_load(cached).uses["pkgs"].names() == ["bash", "apt"]
    assert len(checks) == 1


def test_a_changed_file_is_parsed_again(cached: Path) -> None:
    fresh_load(cached)
    cached.write_text(POLICY.replace("high", "low"))
    assert fresh_load(cached).rules[0].severity == "low"
    assert len(entries(cached)) == 3  # two parses, one checked policy (the path's entry, replaced)


def test_a_planted_entry_runs_nothing(cached: Path) -> None:
    first = fresh_load(cached)
    for entry in entries(cached):
        entry.write_bytes(pickle.dumps(Planted()))
    assert fresh_load(cached).rules == first.rules
    assert not (cached.parent / "PWNED").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="POSIX modes")
def test_an_entry_others_could_write_is_ignored(cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_load(cached)
    for entry in entries(cached):
        entry.chmod(0o666)
    assert cache.load_parsed(b"absent") is None
    parsed_again: list[str] = []
    real = parse_policy_text

    def counted(text: str, path: str) -> Any:
        parsed_again.append(path)
        return real(text, path)

    monkeypatch.setattr(loader, "parse_policy_text", counted)
    fresh_load(cached)
    assert parsed_again == ["p.cvmp"]


def test_the_cache_can_be_turned_off(cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CVMLINT_NO_CACHE", "1")
    fresh_load(cached)
    assert entries(cached) == []


def test_the_cache_stays_bounded(cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "KEEP", 4)
    for n in range(10):
        cached.write_text(POLICY.replace('"1"', f'"{n}"'))
        fresh_load(cached)
    assert 3 <= len(entries(cached)) <= 4
