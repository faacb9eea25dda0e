"""The quick part of the BadAML patch's proof, run in CI: it applies to Debian's linux-source-6.1,
checkpatch --strict is clean on it and on the upstream series, and the strings it prints are the
markers the default policy looks for. (The kernel build is patches/test-kernel.sh, run by hand.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from cvmlint.policy import load_policy
from cvmlint.policy.probes import kernel_needles
from tests.conftest import ROOT
from tests.tools import kernel_source, require

PATCH = ROOT / "patches/0001-acpi-deny-aml-access-to-cvm-private-memory.patch"
UPSTREAM = sorted((ROOT / "patches/upstream").glob("*.patch"))
NEEDED = [
    "drivers/acpi/acpica/exregion.c",
    "scripts/checkpatch.pl",
    "scripts/spelling.txt",
    "scripts/const_structs.checkpatch",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def linux_61() -> Path:
    """The files of Debian's linux-source-6.1 the checks need, extracted once."""
    return kernel_source(*NEEDED)


def test_the_patch_applies_to_debian_linux_source_6_1(linux_61: Path) -> None:
    require("git")
    out = subprocess.run(
        ["git", "apply", "--check", "--verbose", str(PATCH)], cwd=linux_61, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "Checking patch drivers/acpi/acpica/exregion.c" in out.stderr


@pytest.mark.parametrize("patch", [PATCH, *UPSTREAM], ids=lambda p: p.name)
def test_checkpatch_strict_is_clean(linux_61: Path, patch: Path) -> None:
    require("perl")
    out = subprocess.run(
        ["perl", str(linux_61 / "scripts/checkpatch.pl"), "--strict", "--no-tree", str(patch)],
        capture_output=True,
        text=True,
    )
    assert "total: 0 errors, 0 warnings, 0 checks" in out.stdout, out.stdout[-2000:]


def test_the_upstream_patch_is_the_same_change() -> None:
    def body(p: Path) -> str:
        text = p.read_text()
        return text[text.index("diff --git") : text.rindex("\n-- \n")]

    assert body(UPSTREAM[-1]) == body(PATCH)


def test_the_policy_looks_for_the_strings_the_patch_prints() -> None:
    added = "\n".join(line[1:] for line in PATCH.read_text().splitlines() if line.startswith("+"))
    printed = re.findall(r'pr_\w+\("(cvm-aml-guard:[^"\\]*)', added)
    assert len(printed) == 2  # the one-time "active" line and the "denied" line
    ours = [m for m in kernel_needles(load_policy(ROOT / "policies/cvm-baseline.cvmp")) if m.startswith("cvm-aml")]
    assert sorted(ours) == ["cvm-aml-guard: active", "cvm-aml-guard: denied"]
    assert all(any(p.startswith(m) for p in printed) for m in ours)
