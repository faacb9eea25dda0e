"""Where the grammar and the shipped policies are: inside the wheel, or top-level in a checkout."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    for candidate in (_HERE / name, _HERE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cvmlint is installed without its {name}/ folder (looked in {_HERE})")


def grammar_path() -> Path:
    """The policy grammar file."""
    return _shipped("grammar") / "cvmlint.lark"


def policies_dir() -> Path:
    """The folder of shipped policies and allowlists."""
    return _shipped("policies")


def default_policy_path() -> Path:
    """The default policy, `cvm-baseline.cvmp`."""
    return policies_dir() / "cvm-baseline.cvmp"
