"""The per-user cache of parsed policy files: a hit gives the same policy without the parser, and an
entry that is planted, tampered with or writable by others is never trusted (it is parsed again)."""

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
    assert len(entries(cached)) == 1
    assert oct(entries(cached)[0].stat().st_mode & 0o777) == "0o600"

    def no_parser(text: str, path: str) -> None:
        raise AssertionError("parsed although cached")

    monkeypatch.setattr(loader, "parse_policy_text", no_parser)
    again = fresh_load(cached)
    assert again.rules == first.rules and again.sha256 == first.sha256


def test_a_changed_file_is_parsed_again(cached: Path) -> None:
    fresh_load(cached)
    cached.write_text(POLICY.replace("high", "low"))
    assert fresh_load(cached).rules[0].severity == "low"
    assert len(entries(cached)) == 2


def test_a_planted_entry_runs_nothing(cached: Path) -> None:
    first = fresh_load(cached)
    (entry,) = entries(cached)
    entry.write_bytes(pickle.dumps(Planted()))
    assert fresh_load(cached).rules == first.rules
    assert not (cached.parent / "PWNED").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="POSIX modes")
def test_an_entry_others_could_write_is_ignored(cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_load(cached)
    (entry,) = entries(cached)
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
