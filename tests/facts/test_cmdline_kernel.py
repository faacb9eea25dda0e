"""The kernel command line as the kernel itself splits it (its own code, compiled: tests/kernel_cmdline.py)
against `cvmlint.facts.cmdline`, on corner cases and random lines."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cvmlint.facts.cmdline import COMMAND_LINE_SIZE, parse_joined, split_bytes
from cvmlint.facts.provenance import Provenance
from tests.kernel_cmdline import kernel_params, kernel_splitter

pytestmark = pytest.mark.slow  # extracts three files from the kernel tarball (once) and compiles them


@pytest.fixture(scope="module")
def kernel_split() -> Path:
    return kernel_splitter()


def kernel(split: Path, line: bytes) -> list[tuple[bytes, bytes | None]]:
    return kernel_params(split, line)


def ours(line: bytes) -> list[tuple[bytes, bytes | None]]:
    return [(name, value) for _, name, value in split_bytes(line[: COMMAND_LINE_SIZE - 1])]


CORNERS = [
    b'lockdown="integrity"',
    b'x="a module.sig_enforce=1 lockdown=integrity b" y',
    b'lockdown=integ"rity" roothash=ab',
    b"ro quiet -- lockdown=integrity",
    b'"--" lockdown=integrity',
    b"--=x lockdown=integrity",
    b'"a=b" "c"',
    b"=a=b ==",
    b'a="b c lockdown=integrity',
    b'a=" b',
    b'"',
    b'""',
    b'a=""',
    b"a\xc2\xa0lockdown=none",
    b"a\x0bb\x0cc\rd\te",
    b'k="v"w x',
    b'"k=v"w" y',
    b"x" * 2100 + b" lockdown=integrity",
    b"lockdown=integrity " + b"y" * 2030 + b" module.sig_enforce=1",
]


@pytest.mark.parametrize("line", CORNERS, ids=lambda line: line[:40].decode("latin-1"))
def test_corners_split_as_the_kernel_splits_them(kernel_split: Path, line: bytes) -> None:
    assert ours(line) == kernel(kernel_split, line)


def test_random_lines_split_as_the_kernel_splits_them(kernel_split: Path) -> None:
    rng = random.Random(24)
    alphabet = [b"a", b"b", b"=", b'"', b" ", b"-", b"--", b"\t", b"\n", b"\xa0", b"\xc2", b".", b"lockdown", b"x"]
    for _ in range(2000):
        line = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert ours(line) == kernel(kernel_split, line), line


def test_joined_parts_keep_where_each_parameter_was_written() -> None:
    first, second = Provenance(file="etc/kernel/cmdline", line=1), Provenance(file="mkosi.conf", line=9)
    params = parse_joined([('console=ttyS0 x="a', first), ('lockdown=integrity" b', second)])
    assert [(p.name, p.value, p.where) for p in params] == [
        ("console", "ttyS0", first),
        ("x", "a lockdown=integrity", first),
        ("b", None, second),
    ]
    assert [p.name for p in parse_joined([("ro --", first), ("roothash=ab lockdown=integrity", second)])] == ["ro"]
