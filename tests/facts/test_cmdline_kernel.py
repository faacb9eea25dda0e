"""The kernel command line as the kernel itself splits it: `next_arg` (lib/cmdline.c), the ctype table
(lib/ctype.c) and `skip_spaces` (lib/string_helpers.c) of Debian's linux-source-6.1, compiled here into a small
program that runs `parse_args`'s loop, against `cvmlint.facts.cmdline` on corner cases and random lines."""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import pytest

from cvmlint.facts.cmdline import COMMAND_LINE_SIZE, parse_joined, split_bytes
from cvmlint.facts.provenance import Provenance
from tests.tools import CACHE, kernel_source, require

pytestmark = pytest.mark.slow  # extracts three files from the kernel tarball (once) and compiles them

HARNESS = r"""
#include <stdio.h>
#include <string.h>
#define EXPORT_SYMBOL(x)
#define __init
#define _U 0x01
#define _L 0x02
#define _D 0x04
#define _C 0x08
#define _P 0x10
#define _S 0x20
#define _X 0x40
#define _SP 0x80
%(ctype)s
#define isspace(c) ((_ctype[(int)(unsigned char)(c)] & (_S)) != 0)
%(skip_spaces)s
%(next_arg)s
static void hex(const char *s) { for (; *s; s++) printf("%%02x", (unsigned char)*s); }
int main(void) {
    static char buf[%(size)d];
    size_t n = fread(buf, 1, sizeof(buf) - 1, stdin);
    buf[n] = 0;
    char *args = skip_spaces(buf), *param, *val;
    while (*args) {
        args = next_arg(args, &param, &val);
        if (!val && strcmp(param, "--") == 0)
            break;
        hex(param); printf(" "); if (val) hex(val); else printf("-"); printf("\n");
    }
    return 0;
}
"""


def _function(source: str, signature: str) -> str:
    start = source.index(signature)
    body = source.index("\n}\n", start) + 3
    return source[start:body]


@pytest.fixture(scope="module")
def kernel_split() -> Path:
    """The kernel's own splitter, compiled (cached by the kernel source)."""
    require("gcc")
    src = kernel_source("lib/cmdline.c", "lib/ctype.c", "lib/string_helpers.c")
    ctype = re.search(r"const unsigned char _ctype\[\] = \{.*?\};", (src / "lib/ctype.c").read_text(), re.S)
    assert ctype is not None
    program = HARNESS % {
        "ctype": ctype.group(0),
        "skip_spaces": _function((src / "lib/string_helpers.c").read_text(), "char *skip_spaces(const char *str)"),
        "next_arg": _function(
            (src / "lib/cmdline.c").read_text(), "char *next_arg(char *args, char **param, char **val)"
        ),
        "size": COMMAND_LINE_SIZE,
    }
    out = CACHE / "kernel-cmdline-split"
    source = out.with_suffix(".c")
    if not out.exists() or not source.exists() or source.read_text() != program:
        source.write_text(program)
        subprocess.run(["gcc", "-O1", "-w", "-o", str(out), str(source)], check=True)
    return out


def kernel(split: Path, line: bytes) -> list[tuple[bytes, bytes | None]]:
    done = subprocess.run([str(split)], input=line, capture_output=True, check=True)
    out = []
    for row in done.stdout.decode().splitlines():
        name, value = row.split(" ")
        out.append((bytes.fromhex(name), None if value == "-" else bytes.fromhex(value)))
    return out


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
    for _ in range(400):
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
