"""The kernel's own command-line splitter: `next_arg` (lib/cmdline.c), the ctype table (lib/ctype.c)
and `skip_spaces` (lib/string_helpers.c) of Debian's linux-source-6.1, compiled into a small program
that runs `parse_args`'s loop (stopping at `--`) on the first 2047 bytes of its input."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.tools import CACHE, kernel_source, require

HARNESS = r"""
#include <stdio.h>
#include <string.h>
#define EXPORT_SYMBOL(x)
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
    static char buf[2048];
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


NEXT_ARG = "char *next_arg(char *args, char **param, char **val)"


def _function(source: str, signature: str) -> str:
    start = source.index(signature)
    return source[start : source.index("\n}\n", start) + 3]


def kernel_splitter() -> Path:
    """The kernel's own command-line splitter, compiled from linux-source-6.1 (cached)."""
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
    }
    out = CACHE / "kernel-cmdline-split"
    source = out.with_suffix(".c")
    if not out.exists() or not source.exists() or source.read_text() != program:
        source.write_text(program)
        subprocess.run(["gcc", "-O1", "-w", "-o", str(out), str(source)], check=True)
    return out


def kernel_params(splitter: Path, line: bytes) -> list[tuple[bytes, bytes | None]]:
    """(name, value or None) of each parameter the kernel takes from `line` (the first 2047 bytes)."""
    done = subprocess.run([str(splitter)], input=line[:2047], capture_output=True, check=True)
    out = []
    for row in done.stdout.decode().splitlines():
        name, value = row.split(" ")
        out.append((bytes.fromhex(name), None if value == "-" else bytes.fromhex(value)))
    return out


def last_value(params: list[tuple[bytes, bytes | None]], name: str) -> bytes | None:
    """The value the kernel keeps for `name` (the last one; `-` and `_` alike), or None."""
    wanted = name.replace("-", "_").encode()
    found = [v for n, v in params if n.replace(b"-", b"_") == wanted]
    return found[-1] if found and found[-1] is not None else None
