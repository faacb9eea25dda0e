"""ELF or not, machine and interpreter, from a file's first bytes (images and recipe trees)."""

from __future__ import annotations

from typing import Literal

ELF_MACHINES = {
    3: "x86",
    62: "x86-64",
    183: "aarch64",
    40: "arm",
    243: "riscv",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390",
    2: "sparc",
    43: "sparcv9",
    50: "ia64",
    258: "loongarch",
}


def elf_info(head: bytes) -> tuple[bool, str, str]:
    """(is ELF, machine, interpreter) from the first bytes of a file."""
    if len(head) < 52 or head[:4] != b"\x7fELF":
        return False, "", ""
    is64, little = head[4] == 2, head[5] == 1
    order: Literal["little", "big"] = "little" if little else "big"
    machine = ELF_MACHINES.get(int.from_bytes(head[18:20], order), f"machine {int.from_bytes(head[18:20], order)}")
    if is64:
        phoff, phentsize, phnum = (
            int.from_bytes(head[32:40], order),
            int.from_bytes(head[54:56], order),
            int.from_bytes(head[56:58], order),
        )
    else:
        phoff, phentsize, phnum = (
            int.from_bytes(head[28:32], order),
            int.from_bytes(head[42:44], order),
            int.from_bytes(head[44:46], order),
        )
    interp = ""
    for k in range(min(phnum, 64)):
        off = phoff + k * phentsize
        if off + (56 if is64 else 32) > len(head):
            break
        if int.from_bytes(head[off : off + 4], order) != 3:  # PT_INTERP
            continue
        if is64:
            start, size = (
                int.from_bytes(head[off + 8 : off + 16], order),
                int.from_bytes(head[off + 32 : off + 40], order),
            )
        else:
            start, size = (
                int.from_bytes(head[off + 4 : off + 8], order),
                int.from_bytes(head[off + 16 : off + 20], order),
            )
        if start + size <= len(head) and size < 4096:
            interp = head[start : start + size].split(b"\0", 1)[0].decode("utf-8", "replace")
        break
    return True, machine, interp
