"""The fuzz targets in CI: every input that ever failed (tests/hostile/corpus/TARGET/) runs under the
memory and time caps, and each fuzzer runs briefly from the real-tool seeds; any crash, an input over
the memory cap or over the time cap fails the test. The long campaign is `python3 fuzz/run.py TARGET
--seconds 3600` (fuzz/README.md)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "fuzz"))
from targets import TARGETS

pytestmark = pytest.mark.slow  # replays the corpus and runs every fuzzer under memory caps

CORPUS = ROOT / "tests/hostile/corpus"
MEMORY_CAP = 1 << 30
PER_INPUT_SECONDS = 30
CI_SECONDS = int(os.environ.get("CVMLINT_FUZZ_SECONDS", "3"))


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP + (512 << 20), MEMORY_CAP + (512 << 20)))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_regression_corpus_is_refused_cleanly(target: str) -> None:
    """Each committed input ends in a result or one CvmlintError: no other exception, within the caps
    (address space 1.5 GiB: the interpreter and its libraries take ~0.5 of it)."""
    inputs = sorted(p for p in (CORPUS / target).glob("*") if p.is_file()) if (CORPUS / target).is_dir() else []
    if not inputs:
        pytest.skip(f"no regression inputs for {target} yet")
    for path in inputs:
        proc = _run_capped(target, path)
        assert proc.returncode == 0, f"{path.name}: {proc.stderr[-2000:]}"


def _run_capped(target: str, path: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/fuzz']\n"
        "from targets import run_one\n"
        "run_one(sys.argv[2], open(sys.argv[3], 'rb').read())\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(ROOT), target, str(path)],
        capture_output=True,
        text=True,
        timeout=PER_INPUT_SECONDS,
        preexec_fn=_capped,
    )


@pytest.mark.slow
def test_inputs_made_from_the_real_kernel_are_refused_cleanly(tmp_path: Path) -> None:
    from tests import images
    from tests.hostile.generated import bzimage_cases

    kernel = images.payload().kernel.read_bytes()
    for target, name, data in bzimage_cases(kernel):
        path = tmp_path / name
        path.write_bytes(data)
        proc = _run_capped(target, path)
        assert proc.returncode == 0, f"{name}: {proc.stderr[-2000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_fuzzer_finds_nothing_new(target: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "fuzz/run.py"),
            target,
            "--seconds",
            str(CI_SECONDS),
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        timeout=CI_SECONDS + 240,
        env=env,
    )
    found = [p.name for p in tmp_path.iterdir()]
    assert proc.returncode == 0 and not found, (found, proc.stderr[-3000:])
