"""Fixtures for image readers: real trees, and a synthetic tree with every kind of file."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tools import minbase_tree


@pytest.fixture(scope="session")
def minbase() -> Path:
    """The debootstrap'd Debian minbase root tree (about 6,800 files, 200 MB)."""
    return minbase_tree()


@pytest.fixture(scope="session")
def special_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small files, a sparse file, a multi-block directory, links, a FIFO, a device node, xattrs."""
    root = tmp_path_factory.mktemp("special") / "tree"
    (root / "dir/sub").mkdir(parents=True)
    (root / "emptydir").mkdir()
    rnd = random.Random(7)
    (root / "small.txt").write_text("hello\n")
    (root / "empty").write_bytes(b"")
    (root / "dir/exact4096").write_bytes(bytes(range(256)) * 16)
    (root / "dir/random.bin").write_bytes(rnd.randbytes(300_000))
    words = ["alpha ", "beta ", "gamma\n", "delta "]
    (root / "dir/sub/text.txt").write_text("".join(rnd.choice(words) for _ in range(200_000)))
    (root / "dir/sparse").write_bytes(b"\0" * 200_000 + b"x")
    (root / "link").symlink_to("dir/sub/text.txt")
    (root / "dangling").symlink_to("/absolute/nowhere")
    os.link(root / "small.txt", root / "hardlink")
    (root / "ünïcødé name").write_text("unicode\n")
    (root / ("n" * 200)).write_text("long name\n")  # erofs-utils 1.5 fails on longer ones
    for i in range(600):  # a directory spanning several blocks
        (root / f"dir/f{i:04d}-{'x' * 40}").write_text(str(i))
    os.mkfifo(root / "fifo")
    os.setxattr(root / "small.txt", "user.comment", b"hi there")
    os.chmod(root / "dir/random.bin", 0o4755)
    if os.geteuid() == 0:
        os.mknod(root / "null", 0o20666, os.makedev(1, 3))
        os.chown(root / "small.txt", 1000, 1001)
        os.setxattr(root / "dir/random.bin", "trusted.note", b"bar" * 30)
    return root


@pytest.fixture(scope="session")
def trixie() -> Path:
    """A cached Debian trixie chroot with erofs-utils 1.8 and systemd-repart 257."""
    from tests.tools import trixie_root

    return trixie_root()


@pytest.fixture
def trixie_work(trixie: Path, special_tree: Path) -> Iterator[Path]:
    """A fresh work folder inside the chroot (seen there as /work/<name>), holding a copy of the special tree."""
    import shutil
    import uuid

    from tests.tools import run

    work = trixie / "work" / uuid.uuid4().hex[:8]
    work.mkdir(parents=True)
    run("cp", "-a", special_tree, work / "tree")  # keeps the FIFO, the device node and the xattrs
    yield work
    shutil.rmtree(work, ignore_errors=True)
