"""What a TPM was asked to extend, read from the commands swtpm logged (`--log level=20` dumps every
command it receives in hex): the oracle for boots whose guest cannot report its PCRs (an image we did
not build for the purpose boots its own system, and nothing in it prints the registers).

    command      u16 tag | u32 size | u32 command code | handles | [u32 auth size | auth] | parameters
    PCR_Extend   (0x182) handle = PCR; TPML_DIGEST_VALUES: u32 count, count x {u16 alg, digest}
    PCR_Event    (0x13C) handle = PCR; TPM2B_EVENT: u16 size, data (the TPM hashes it in every bank)

Any other command that extends a PCR (EventSequenceComplete) is refused: a replay must not miss one.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass

ALGORITHMS = {0x0004: "sha1", 0x000B: "sha256", 0x000C: "sha384", 0x000D: "sha512"}
PCR_EXTEND, PCR_EVENT, EVENT_SEQUENCE_COMPLETE = 0x182, 0x13C, 0x185
TPM_ST_SESSIONS = 0x8002


@dataclass(frozen=True)
class Extend:
    pcr: int
    digests: dict[str, bytes]


def commands(log: str) -> list[bytes]:
    """Every command swtpm received, in order."""
    out: list[bytes] = []
    current: list[str] | None = None
    for line in log.splitlines():
        if line.startswith(" SWTPM_IO_Read:"):
            current = []
            continue
        if current is not None and re.fullmatch(r"(?: [0-9A-F]{2})+ ?", line):
            current.append(line)
            continue
        if current is not None:
            out.append(bytes.fromhex("".join(current)))
            current = None
    if current:
        out.append(bytes.fromhex("".join(current)))
    return out


def extends(log: str, banks: tuple[str, ...]) -> list[Extend]:
    """The PCR extends the commands asked for, in order."""
    out = []
    for command in commands(log):
        tag, _size, code = struct.unpack_from(">HII", command)
        if code == EVENT_SEQUENCE_COMPLETE:
            raise AssertionError("EventSequenceComplete extends PCRs: not replayed here")
        if code not in (PCR_EXTEND, PCR_EVENT):
            continue
        (handle,) = struct.unpack_from(">I", command, 10)
        at = 14
        if tag == TPM_ST_SESSIONS:
            (auth,) = struct.unpack_from(">I", command, at)
            at += 4 + auth
        if code == PCR_EVENT:
            (size,) = struct.unpack_from(">H", command, at)
            data = command[at + 2 : at + 2 + size]
            out.append(Extend(handle, {bank: hashlib.new(bank, data).digest() for bank in banks}))
            continue
        (count,) = struct.unpack_from(">I", command, at)
        at += 4
        digests = {}
        for _ in range(count):
            (alg,) = struct.unpack_from(">H", command, at)
            name = ALGORITHMS[alg]
            size = hashlib.new(name).digest_size
            digests[name] = command[at + 2 : at + 2 + size]
            at += 2 + size
        out.append(Extend(handle, digests))
    return out


def replay(done: list[Extend], bank: str, pcrs: range = range(24)) -> dict[int, bytes]:
    """Each PCR after the extends, from zero (PCR 0's locality start aside)."""
    values = {pcr: bytes(hashlib.new(bank).digest_size) for pcr in pcrs}
    for extend in done:
        if extend.pcr in values and bank in extend.digests:
            values[extend.pcr] = hashlib.new(bank, values[extend.pcr] + extend.digests[bank]).digest()
    return values
