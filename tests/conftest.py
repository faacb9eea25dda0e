"""Shared helpers: write policy text to a temp dir, load it, evaluate it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cvmlint.policy import load_policy
from cvmlint.policy.loader import Policy

ROOT = Path(__file__).resolve().parent.parent
HEADER = 'policy "t" version "1"\n'
# The suite runs in strict mode (cvmlint/errors.py `strict`): a TypeError, KeyError or IndexError inside a
# reader fails a test instead of passing as a refusal of malformed input. Subprocesses inherit it.
os.environ.setdefault("CVMLINT_STRICT", "1")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`cvmlint ARGS` in-process: exit code, standard output, standard error."""
    from cvmlint.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(args))
    out = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 0), out.out, out.err


@pytest.fixture
def write_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Write `text` (and extra files) into a temp dir and return the policy path."""
    monkeypatch.chdir(tmp_path)

    def write(text: str, name: str = "p.cvmp", header: bool = True, files: dict[str, str] | None = None) -> Path:
        for fname, content in (files or {}).items():
            (tmp_path / fname).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / fname).write_text(content)
        path = tmp_path / name
        path.write_text((HEADER if header else "") + text)
        return path

    return write


@pytest.fixture
def policy_of(write_policy: Callable[..., Path]) -> Callable[..., Policy]:
    """Load policy text (header added)."""

    def load(text: str, profiles: tuple[str, ...] = (), files: dict[str, str] | None = None) -> Policy:
        return load_policy(write_policy(text, files=files), profiles)

    return load
