"""Evidence bundles are hostile input: an auditor replays and verifies bundles a vendor sent. Replay and
verify read nothing outside the bundle, check the shape of every document before using it (naming the
file and the JSON path), and keep sizes, counts and depth within the bundle-* limits."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT


def cvmlint(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "cvmlint", *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd
    )
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A recipe's bundle with the shipped policy, and one with the site policy (which includes the
    shipped baseline as `cvmlint:cvm-baseline.cvmp`)."""
    out = tmp_path_factory.mktemp("bundles")
    made = {"baseline": out / "baseline", "site": out / "site"}
    assert cvmlint("lint", "recipes/tdx-base", "--evidence", made["baseline"]).returncode == 0
    site = ("--policy", "examples/policies/site.cvmp", "--profile", "site-prod")
    assert cvmlint("lint", *site, "recipes/tdx-base", "--evidence", made["site"]).returncode == 0
    return made


def copy(bundle: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(bundle, dest)
    return dest


def edit_json(path: Path, change: Callable[[Any], object]) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_bundles_replay_as_made(bundles: dict[str, Path]) -> None:
    for bundle in bundles.values():
        proc = cvmlint("evidence", "replay", bundle)
        assert proc.returncode == 0 and "verified" in proc.stdout, proc.stdout + proc.stderr
    meta = json.loads((bundles["site"] / "policy/policy.json").read_text())
    assert meta["shipped"] == "policies" and (bundles["site"] / "policy/policies/cvm-baseline.cvmp").is_file()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("main", "/etc/passwd", "policy/policy.json: member '/etc/passwd' is absolute"),
        ("main", "../../../../etc/passwd", "leaves the bundle (..)"),
        ("main", "nothere.cvmp", "policy/policy.json: $.main: policy/nothere.cvmp is not a file of the bundle"),
        ("waivers", "/dev/zero", "policy/policy.json: member '/dev/zero' is absolute"),
        ("main", 7, "policy/policy.json: $.main: expected a string, found an integer"),
        ("evaluated_on", "yesterday", "policy/policy.json: $.evaluated_on: 'yesterday' is not a date"),
        ("profiles", "dev", "policy/policy.json: $.profiles: expected a list, found a string"),
    ],
)
def test_policy_json_cannot_reach_outside(
    bundles: dict[str, Path], tmp_path: Path, key: str, value: object, message: str
) -> None:
    bundle = copy(bundles["baseline"], tmp_path / "b")
    edit_json(bundle / "policy/policy.json", lambda doc: doc.__setitem__(key, value))
    proc = cvmlint("evidence", "replay", bundle)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "root:" not in proc.stderr  # no line of a host file


def test_a_bundled_include_of_a_host_file_is_refused(bundles: dict[str, Path], tmp_path: Path) -> None:
    bundle = copy(bundles["baseline"], tmp_path / "b")
    main = bundle / "policy" / json.loads((bundle / "policy/policy.json").read_text())["main"]
    main.write_text(
        main.read_text().replace(
            'use list "allowlists/common.txt"', 'include "/etc/passwd"\nuse list "allowlists/common.txt"', 1
        )
    )
    proc = cvmlint("evidence", "replay", bundle)
    assert proc.returncode == 2 and "/etc/passwd: it is outside the evidence bundle" in proc.stderr, proc.stderr
    assert "root:x:0" not in proc.stderr


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("results.json", '{"results": 3}', "results.json: $.results: expected a list, found an integer"),
        ("results.json", '{"results": [{"rule": "A"}]}', "results.json: $.results[0].status: missing"),
        ("results.json", '{"exit_code": ' + "9" * 5000 + "}", "results.json: not valid JSON"),
        ("facts.json", "[" * 100_000 + "]" * 100_000, "facts.json: JSON nested too deeply"),
        ("policy/policy.json", "{", "policy/policy.json: not valid JSON"),
    ],
)
def test_malformed_documents_are_named_with_their_path(
    bundles: dict[str, Path], tmp_path: Path, name: str, text: str, message: str
) -> None:
    bundle = copy(bundles["baseline"], tmp_path / "b")
    (bundle / name).write_text(text)
    proc = cvmlint("evidence", "replay", bundle)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda env: env.__setitem__("signatures", {"a": 1}), "NOT verified"),
        (lambda env: env.__setitem__("payload", ["x"]), "NOT verified"),
    ],
)
def test_malformed_envelopes_are_problems_not_crashes(
    bundles: dict[str, Path], tmp_path: Path, change: Callable[[dict[str, object]], None], message: str
) -> None:
    bundle = copy(bundles["baseline"], tmp_path / "b")
    edit_json(bundle / "statement.json", change)
    proc = cvmlint("evidence", "verify", "--allow-unsigned", bundle)
    assert proc.returncode in (1, 2) and (message in proc.stdout or "statement.json" in proc.stderr), proc.stdout


def test_an_empty_subject_is_named(bundles: dict[str, Path], tmp_path: Path) -> None:
    import base64

    bundle = copy(bundles["baseline"], tmp_path / "b")

    def empty_subject(env: dict[str, object]) -> None:
        statement = json.loads(base64.b64decode(str(env["payload"])))
        statement["subject"] = []
        env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()

    edit_json(bundle / "statement.json", empty_subject)
    proc = cvmlint("evidence", "verify", "--allow-unsigned", bundle)
    assert proc.returncode == 2 and "$.subject: empty" in proc.stderr, proc.stderr


def tar_bundle(path: Path, members: list[tuple[str, bytes, bytes]]) -> Path:
    """(name, type, data) members written as a tar."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.type, info.size = kind, len(data)
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return path


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (
            [("policy/a", tarfile.REGTYPE, b"x"), ("policy/a/b", tarfile.REGTYPE, b"y")],
            "policy/a is both a file and a directory",
        ),
        ([("../x", tarfile.REGTYPE, b"x")], "leaves the bundle"),
        ([("/etc/x", tarfile.REGTYPE, b"x")], "is absolute"),
        ([("a" * 300, tarfile.REGTYPE, b"x")], "longer than 255 bytes"),
        ([("link", tarfile.SYMTYPE, b"")], "is not a regular file"),
        ([("x", tarfile.REGTYPE, b"1"), ("x", tarfile.REGTYPE, b"2")], "appears twice"),
    ],
)
def test_tar_bundles_hold_plain_regular_files(
    tmp_path: Path, members: list[tuple[str, bytes, bytes]], message: str
) -> None:
    bundle = tar_bundle(tmp_path / "b.tar", members)
    for command in (("evidence", "verify", "--allow-unsigned"), ("evidence", "replay")):
        proc = cvmlint(*command, bundle)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def remove_chain(top: Path, depth: int) -> None:
    """Remove a chain of `depth` nested `d` directories below `top`, deepest first (shutil.rmtree of
    Python 3.11 recurses once per level and cannot)."""
    fds = [os.open(top, os.O_RDONLY)]
    for _ in range(depth - 1):
        fds.append(os.open("d", os.O_RDONLY, dir_fd=fds[-1]))
    while fds:
        fd = fds.pop()
        os.rmdir("d", dir_fd=fd)
        os.close(fd)


def test_deep_directories_and_too_many_files_meet_a_limit(tmp_path: Path) -> None:
    deep = tmp_path / "deep"
    deep.mkdir()
    fd = os.open(deep, os.O_RDONLY)
    for _ in range(1900):  # deeper than PATH_MAX allows to name: made a directory at a time
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)
    try:
        proc = cvmlint("evidence", "verify", "--allow-unsigned", deep)
        assert proc.returncode == 2 and "over the limit bundle-depth" in proc.stderr, proc.stderr
    finally:
        remove_chain(deep, 1900)
    many = tmp_path / "many"
    many.mkdir()
    for k in range(30):
        (many / f"f{k}").write_text("x")
    proc = cvmlint("--limit", "bundle-files=20", "evidence", "verify", "--allow-unsigned", many)
    assert proc.returncode == 2 and "over the limit bundle-files" in proc.stderr, proc.stderr


def test_a_key_that_is_not_a_key_file_is_refused(bundles: dict[str, Path], tmp_path: Path) -> None:
    proc = cvmlint("evidence", "verify", "--key", "/dev/zero", bundles["baseline"])
    assert proc.returncode == 2 and "/dev/zero: cannot read key: it is a character device" in proc.stderr, proc.stderr
    sparse = tmp_path / "sparse.pem"
    with open(sparse, "wb") as fh:
        fh.truncate(2 << 30)
    proc = cvmlint("evidence", "verify", "--key", sparse, bundles["baseline"])
    assert proc.returncode == 2 and "over the limit key-bytes" in proc.stderr, proc.stderr
