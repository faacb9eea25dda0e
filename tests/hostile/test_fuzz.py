"""The fuzz targets in CI: every input that ever failed (tests/hostile/corpus/TARGET/) runs under the
memory and time caps, and each fuzzer runs briefly from the real-tool seeds; any crash, an input over
the memory cap or over the time cap fails the test. The long campaign is `python3 fuzz/run.py TARGET
--seconds 3600` (fuzz/README.md)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
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
    """Each committed input, and each seed the real tools make for the target, ends in a result or one
    CvmlintError: no other exception, within the caps (address space 1.5 GiB: the interpreter and its
    libraries take ~0.5 of it; 30 s an input)."""
    from seeds import seeds_for

    committed = sorted(p for p in (CORPUS / target).glob("*") if p.is_file()) if (CORPUS / target).is_dir() else []
    seeds = sorted(p for p in seeds_for(target).glob("*") if p.is_file()) if seeds_for(target).is_dir() else []
    assert committed or seeds, f"{target}: no regression inputs and no seeds"
    proc = _run_capped(target, [*committed, *seeds])
    assert proc.returncode == 0, proc.stderr[-2000:]


def _run_capped(target: str, paths: list[Path]) -> subprocess.CompletedProcess[str]:
    """Every input in one capped process (one interpreter start per target, not per input), each under
    its own alarm; a failure names the input."""
    code = (
        "import signal, sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/fuzz']\n"
        "from targets import run_one\n"
        "def late(*_): raise TimeoutError('over the time cap')\n"
        "signal.signal(signal.SIGALRM, late)\n"
        "for path in sys.argv[4:]:\n"
        "    signal.alarm(int(sys.argv[3]))\n"
        "    try:\n"
        "        run_one(sys.argv[2], open(path, 'rb').read())\n"
        "    except BaseException:\n"
        "        print(f'input {path}:', file=sys.stderr)\n"
        "        raise\n"
        "    signal.alarm(0)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(ROOT), target, str(PER_INPUT_SECONDS), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=PER_INPUT_SECONDS * len(paths) + 60,
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
        proc = _run_capped(target, [path])
        assert proc.returncode == 0, f"{name}: {proc.stderr[-2000:]}"


@pytest.fixture(scope="module")
def fuzz_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Future[tuple[int, str, list[str]]]]:
    """Every fuzzer started at once, one per core (each is one CPU-bound process): the tests wait for
    their own."""
    pytest.importorskip("atheris")
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="fuzz")
    return {target: pool.submit(_fuzz, target, tmp_path_factory.mktemp(f"fuzz-{target}")) for target in TARGETS}


def _fuzz(target: str, artifacts: Path) -> tuple[int, str, list[str]]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "fuzz/run.py"),
            target,
            "--seconds",
            str(CI_SECONDS),
            f"-artifact_prefix={artifacts}/",
        ],
        capture_output=True,
        text=True,
        timeout=CI_SECONDS + 240,
        env=env,
    )
    return proc.returncode, proc.stderr[-3000:], [p.name for p in artifacts.iterdir()]


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_fuzzer_finds_nothing_new(target: str, fuzz_runs: dict[str, Future[tuple[int, str, list[str]]]]) -> None:
    code, stderr, found = fuzz_runs[target].result()
    assert code == 0 and not found, (found, stderr)
