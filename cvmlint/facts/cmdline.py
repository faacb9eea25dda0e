"""The kernel command line, split as the kernel splits it (shared by images and recipes).

The kernel reads bytes (`lib/cmdline.c` `next_arg`, `kernel/params.c` `parse_args`, Linux 6.1):

    * at most COMMAND_LINE_SIZE - 1 bytes (2047 on x86): what a boot loader passes beyond is cut off;
    * a parameter ends at a space outside double quotes; spaces are bytes 0x09-0x0d, 0x20 and 0xa0
      (the kernel's ctype: the second byte of a UTF-8 no-break space is one);
    * a `"` anywhere toggles quoting, and stays in the text, except a `"` that opens the parameter or
      its value, and the `"` that then ends it;
    * the name ends at the first `=` after its first byte (`=x` has no value); `-` and `_` in names
      are alike;
    * `--` alone ends the kernel's parameters: the rest goes to init.

    lockdown="integrity"      -> lockdown = integrity
    x="a lockdown=none b"     -> x = a lockdown=none b            (one parameter)
    lockdown=integ"rity"      -> lockdown = integ"rity"           (not integrity)
"""

from __future__ import annotations

from collections.abc import Sequence

from cvmlint.facts.model import Param
from cvmlint.facts.provenance import Provenance

COMMAND_LINE_SIZE = 2048
"""x86's: the kernel keeps COMMAND_LINE_SIZE - 1 bytes of what the boot loader gives it."""
SPACES = frozenset(b"\t\n\v\f\r \xa0")


def parse_cmdline(text: str, where: Provenance) -> list[Param]:
    """Kernel command-line parameters in order, as the kernel reads `text` (see the module docstring)."""
    return parse_joined([(text, where)])


def parse_joined(parts: Sequence[tuple[str, Provenance]], glue: Sequence[str] = ()) -> list[Param]:
    """The parameters of the line made by joining `parts` (as mkosi joins /etc/kernel/cmdline, the root
    hash and KernelCommandLine=), each placed where its first byte was written. `glue[k]` is what joins
    part k to the one before (a space when not given; a file's own line break between its lines)."""
    data, starts = b"", list[tuple[int, Provenance]]()
    for k, (text, where) in enumerate(parts):
        data += (glue[k] if k < len(glue) else " ").encode() if starts else b""
        starts.append((len(data), where))
        data += text.encode("utf-8", "surrogateescape")
    data = data[: COMMAND_LINE_SIZE - 1]
    params = []
    for offset, name, value in split_bytes(data):
        where = next(w for start, w in reversed(starts) if start <= offset)
        params.append(
            Param(name=_text(name).replace("-", "_"), value=None if value is None else _text(value), where=where)
        )
    return params


def split_bytes(data: bytes) -> list[tuple[int, bytes, bytes | None]]:
    """(offset, name, value or None) of each parameter the kernel takes from `data`, up to `--`."""
    out = []
    i = _skip(data, 0)
    while i < len(data):
        start = i
        quoted = data[i] == 0x22
        if quoted:
            i += 1
        begin, in_quote, equals = i, quoted, -1
        while i < len(data) and (in_quote or data[i] not in SPACES):
            if equals < 0 and data[i] == 0x3D and i > begin:
                equals = i
            if data[i] == 0x22:
                in_quote = not in_quote
            i += 1
        token, end = data[begin:i], i
        name, value = (token, None) if equals < 0 else (data[begin:equals], data[equals + 1 : end])
        if value is not None and value.startswith(b'"'):
            value = value[1:-1] if len(value) > 1 and value.endswith(b'"') else value[1:]
        elif quoted and token.endswith(b'"'):
            name = name[:-1] if value is None else name
            value = value[:-1] if value is not None else None
        if value is None and name == b"--":
            break
        out.append((start, name, value))
        i = _skip(data, i)
    return out


def _skip(data: bytes, i: int) -> int:
    while i < len(data) and data[i] in SPACES:
        i += 1
    return i


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")
