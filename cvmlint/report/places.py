"""Where a finding is, in the terms CI formats want: a repository file and line, or a place in an image."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cvmlint.policy.results import Finding, RuleResult


@dataclass(frozen=True)
class Place:
    """A finding's place: `path` and `line` for a file in the repository, `logical` for anything else."""

    path: str | None = None
    line: int | None = None
    logical: str | None = None


def repository_root(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` (the working directory) holding .git or cvmlint.toml."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / ".git").exists() or (directory / "cvmlint.toml").is_file():
            return directory
    return here


def place_of(finding: Finding, root: Path) -> Place:
    """A recipe finding's file relative to the repository root (with its line); an image's place as text."""
    where = finding.where
    if where is None:
        return Place()
    if where.partition or not where.file:
        return Place(logical=str(where))
    path = Path(where.file)
    absolute = path if path.is_absolute() else Path.cwd() / path
    relative = os.path.relpath(absolute.resolve() if absolute.exists() else absolute, root)
    if relative.startswith(".."):
        return Place(logical=str(where))
    return Place(path=Path(relative).as_posix(), line=where.line)


def fingerprint(rule: RuleResult, finding: Finding, place: Place) -> str:
    """Stable across runs and unrelated edits: the rule, the file (not the line) and what the finding is about."""
    about = finding.subject if finding.subject is not None else finding.message
    key = "\0".join((rule.rule_id, place.path or place.logical or "", about))
    return hashlib.sha256(key.encode()).hexdigest()
