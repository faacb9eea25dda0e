"""Real disk images for the scan tests (tests/images.py builds them once, cached by its own hash),
and a helper that runs `cvmlint` as a user would, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import images
from tests.images import Variant

pytestmark = pytest.mark.slow


def _needs_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CVMLINT_CI"):
            pytest.fail("building the test images needs root (debootstrap)")
        pytest.skip("building the test images needs root (debootstrap)")


@dataclass
class Run:
    """One cvmlint run: exit code, parsed JSON (when asked for) and stderr."""

    code: int
    out: Any
    err: str
    by_rule: dict[str, dict[str, Any]] = field(default_factory=dict)

    def status(self, rule: str) -> str:
        return str(self.by_rule[rule]["status"])

    def findings(self, rule: str) -> list[str]:
        """Each finding as 'message @ location'."""
        return [f"{f['message']} @ {f.get('location', '')}" for f in self.by_rule[rule]["findings"]]

    def locations(self, rule: str) -> set[str]:
        return {f.get("location", "") for f in self.by_rule[rule]["findings"]}

    def explain(self, rule: str) -> str:
        r = self.by_rule[rule]
        return f"{rule} {r['status']}: findings {self.findings(rule)[:5]} reasons {r['reasons']}"


def cvmlint(*args: str | Path) -> Run:
    """`cvmlint ARGS` in a fresh interpreter; JSON output parsed when there is any."""
    proc = subprocess.run(
        [sys.executable, "-m", "cvmlint", *map(str, args)], capture_output=True, text=True, timeout=600
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    out: Any = None
    if proc.stdout.lstrip().startswith("{"):
        out = json.loads(proc.stdout)
    run = Run(proc.returncode, out, proc.stderr)
    if isinstance(out, dict) and "results" in out:
        run.by_rule = {r["rule"]: r for r in out["results"]}
    return run


def scan(image: Path, *options: str) -> Run:
    return cvmlint("scan", "--format", "json", *options, image)


@pytest.fixture(scope="session")
def payload() -> images.Payload:
    _needs_root()
    return images.payload()


@pytest.fixture(scope="session")
def hardened_grub(payload: images.Payload) -> Path:
    return images.hardened()


@pytest.fixture(scope="session")
def hardened_uki(payload: images.Payload) -> Path:
    return images.hardened("hardened-uki", uki=True)


@pytest.fixture(scope="session")
def cloud_image(payload: images.Payload) -> Path:
    return images.cloud()


@pytest.fixture(scope="session")
def variant_image(payload: images.Payload) -> Any:
    """Build (once) a hardened GRUB image that differs by a Variant."""

    def build(name: str, variant: Variant) -> Path:
        return images.hardened(name, variant=variant)

    return build


@pytest.fixture(scope="session")
def hardened_grub_scan(hardened_grub: Path) -> Run:
    return scan(hardened_grub)
