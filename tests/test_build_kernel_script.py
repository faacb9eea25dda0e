"""patches/build-kernel.sh checks the signing key and certificate before it compiles anything (it runs for
a quarter of an hour, in another directory): a missing file, a lone SB_KEY or a certificate of another key
is exit 2 within seconds, with relative paths as its usage line shows them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.tools import run

SCRIPT = ROOT / "patches/build-kernel.sh"


def build(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SCRIPT), "out"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def key_pair(tmp_path: Path, name: str) -> None:
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", tmp_path / f"{name}.key",
        "-out", tmp_path / f"{name}.crt", "-subj", f"/CN={name}", "-days", "1")  # fmt: skip


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"SB_KEY": "db.key", "SB_CERT": "db.crt"}, "SB_KEY=db.key: no such readable file"),
        ({"SB_KEY": "a.key"}, "SB_CERT is not set (SB_KEY and SB_CERT go together)"),
        ({"SB_KEY": "a.key", "SB_CERT": "b.crt"}, "SB_KEY and SB_CERT do not belong together"),
        ({"SB_KEY": "a.crt", "SB_CERT": "a.crt"}, "is not an unencrypted PEM private key"),
    ],
)
def test_a_key_that_cannot_sign_stops_the_build_before_it_starts(
    tmp_path: Path, env: dict[str, str], words: str
) -> None:
    key_pair(tmp_path, "a")
    key_pair(tmp_path, "b")
    done = build(tmp_path, **env)
    assert done.returncode == 2 and words in done.stderr, done.stderr
    assert (tmp_path / "out").is_dir()  # the output directory is resolved (and made) first


def test_the_test_only_kernel_is_not_offered_to_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "recipes/common/mkosi.packages/vmlinuz-6.1.0-cvm-test-forced-guard"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert ignored.returncode == 0, "the forced-guard kernel build-kernel.sh copies there must be ignored"
