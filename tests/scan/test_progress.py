"""A long read (the image digest, dm-verity hashing) shows a progress bar on a terminal's stderr, and
nothing when stderr is not a terminal or the read is short."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from cvmlint.scan import _digest
from tests.report.test_text import on_a_terminal

pytestmark = pytest.mark.slow


@pytest.fixture
def large_image(hardened_grub: Path, tmp_path: Path) -> Path:
    """The hardened image grown (sparsely) past the size from which a bar is shown."""
    image = tmp_path / "large.raw"
    subprocess.run(["cp", "--sparse=always", str(hardened_grub), str(image)], check=True)
    with open(image, "r+b") as fh:
        fh.truncate(320 << 20)
    return image


def test_a_long_digest_shows_a_bar_on_a_terminal_only(large_image: Path) -> None:
    args = ("scan", "--digest", "--no-verity", str(large_image))
    shown = on_a_terminal(large_image.parent, *args, env={"COLUMNS": "100"})
    assert "sha256 of the image" in shown and "MB/s" in shown
    assert "summary:" in shown
    piped = subprocess.run([sys.executable, "-m", "cvmlint", *args], capture_output=True, text=True)
    assert piped.returncode == 1 and piped.stderr == ""


def test_a_short_read_shows_no_bar(large_image: Path) -> None:
    with open(large_image, "r+b") as fh:  # 160 MB, below the bar (what it cuts off only changes verdicts)
        fh.truncate(160 << 20)
    shown = on_a_terminal(
        large_image.parent, "scan", "--digest", "--no-verity", str(large_image), env={"COLUMNS": "100"}
    )
    assert "summary:" in shown and "sha256 of the image" not in shown


def test_the_digest_reports_its_progress_to_the_end(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_bytes(b"x" * (3 << 20) + b"y")
    seen: list[tuple[str, int, int]] = []
    digest = _digest(data, lambda what, done, total: seen.append((what, done, total)))
    assert digest == "sha256:" + hashlib.sha256(data.read_bytes()).hexdigest()
    assert [d for _, d, _ in seen] == sorted(d for _, d, _ in seen) and seen[-1][1:] == (data.stat().st_size,) * 2
