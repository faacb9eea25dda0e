"""Fixture recipes written at test time: a dict of relative path -> text (or None for a directory)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

Maker = Callable[[dict[str, str | None]], Path]


@pytest.fixture
def make_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Maker:
    """Write files under tmp_path (the working directory, so locations read `recipe/mkosi.conf:3`)."""
    monkeypatch.chdir(tmp_path)

    def make(files: dict[str, str | None]) -> Path:
        for rel, text in files.items():
            path = tmp_path / rel
            if text is None:
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"))
        return tmp_path

    return make
