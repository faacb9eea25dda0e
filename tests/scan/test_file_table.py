"""The image's file table (scan/rootfs.FileTable) on an erofs root made by mkfs.erofs: its records
against the source tree, its column lookups against a plain filter of every record, the ELF fields
read only when asked, and a tree over the column limit walked instead of held."""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cvmlint.facts import File
from cvmlint.image.erofs import ErofsFileSystem
from cvmlint.image.source import FileSource
from cvmlint.policy.evaluator import compare
from cvmlint.scan import rootfs
from tests.tools import require, run

pytestmark = pytest.mark.slow  # makes an image with mkfs.erofs


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small root: programs (one a real ELF), a set-uid file, links, a device node; and its erofs image."""
    tree = tmp_path_factory.mktemp("files") / "tree"
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "etc/apt").mkdir(parents=True)
    shutil.copy("/bin/true", tree / "usr/bin/true")
    (tree / "usr/bin/script").write_text("#!/bin/sh\necho hi\n" * 10)
    (tree / "usr/bin/sudo").write_bytes(b"not really sudo, but set-uid" * 4)
    (tree / "etc/apt/sources.list").write_text("deb file:/nowhere stable main\n")
    (tree / "etc/tiny").write_text("x")
    os.symlink("true", tree / "usr/bin/also-true")
    os.mknod(tree / "etc/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(tree / "usr/bin/script", 0o755)
    os.chmod(tree / "usr/bin/sudo", 0o4755)
    os.chown(tree / "etc/tiny", 1000, 1001)
    require("mkfs.erofs")
    image = tree.parent / "root.erofs"
    run("mkfs.erofs", "--quiet", "-zlz4", image, tree)
    return tree, image


def table(image: Path) -> rootfs.FileTable:
    part: Any = SimpleNamespace(name="root")  # only the partition's name goes into the records
    return rootfs.files(ErofsFileSystem(FileSource(image)), part)


def test_records_are_the_tree(root: tuple[Path, Path]) -> None:
    tree, image = root
    records = {f.path: f for f in table(image)}
    expected = {"/" + str(p.relative_to(tree)) for p in tree.rglob("*")}
    assert set(records) == expected
    for path, f in records.items():
        st = os.lstat(tree / path.lstrip("/"))
        assert (f.mode, f.uid, f.gid, f.perms) == (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, f"{f.mode:04o}")
        assert f.name == os.path.basename(path)
        if f.type == "file":
            assert f.size == st.st_size
    assert records["/usr/bin/also-true"].target == "true"
    assert records["/etc/null"].type == "char"
    assert records["/usr/bin/sudo"].setuid and records["/usr/bin/script"].executable
    assert not records["/etc/tiny"].executable


CONDITIONS = [
    ("type", frozenset(["file"])),
    ("name", frozenset(["true", "sources.list", "absent"])),
    ("executable", frozenset([True])),
    ("setuid", frozenset([True])),
    ("perms", frozenset(["4755"])),
    ("uid", frozenset([1000])),
    ("path", lambda value: compare("matches", value, "^/etc/") is not False),
    ("size", lambda value: compare(">", value, 30) is not False),
    ("target", lambda value: compare("!=", value, "") is not False),
]


@pytest.mark.parametrize(("field", "accept"), CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_column_lookups_match_a_filter_of_every_record(root: tuple[Path, Path], field: str, accept: Any) -> None:
    files = table(root[1])
    wanted = [
        f
        for f in files
        if (getattr(f, field) in accept if isinstance(accept, frozenset) else accept(getattr(f, field)))
    ]
    found = files.positions(field, accept)
    assert found is not None and wanted
    assert files.take(found) == wanted


def test_conditions_intersect(root: tuple[Path, Path]) -> None:
    files = table(root[1])
    both = files.positions("type", frozenset(["file"]))
    executable = files.positions("executable", frozenset([True]))
    assert both is not None and executable is not None
    assert sorted(f.path for f in files.take(both & executable)) == sorted(
        ["/usr/bin/true", "/usr/bin/script", "/usr/bin/sudo"]
    )


def test_elf_fields_read_the_file_only_when_asked(root: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    files = table(root[1])
    heads: list[int] = []
    real_head = files.tree.head

    def counted(node: Any, length: int) -> bytes:
        heads.append(length)
        return real_head(node, length)

    monkeypatch.setattr(files.tree, "head", counted)
    records = {f.path: f for f in files}
    assert [f.mode for f in records.values()] and heads == []
    true = records["/usr/bin/true"]
    assert (true.is_elf, true.elf_machine) == (True, "x86-64")
    assert str(true.elf_interpreter).startswith("/lib")
    assert records["/usr/bin/script"].is_elf is False
    assert len(heads) == 2
    assert isinstance(true, File)


def test_a_tree_over_the_column_limit_is_walked_each_time(
    root: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    held = list(table(root[1]))
    monkeypatch.setattr(rootfs, "COLUMNS_LIMIT", 3)
    files = table(root[1])
    assert files.load() is None
    assert files.positions("type", frozenset(["file"])) is None
    assert list(files) == held == list(files)
    assert [f.path for f in held if re.search("^/usr/bin/", f.path)]
