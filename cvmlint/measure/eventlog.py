"""TCG PC Client event logs (crypto-agile, "Spec ID Event03"): the events firmware and boot loaders
extended into the TPM's PCRs, and the PCR values they replay to.

    first event (SHA-1 layout)  u32 pcr | u32 type (EV_NO_ACTION) | digest[20] | u32 size | Spec ID event
    Spec ID event               "Spec ID Event03\\0" | u32 platform class | u8 minor, major, errata,
                                uintn size | u32 n | n x {u16 algorithm, u16 digest size} | u8 vendor size
    each further event          u32 pcr | u32 type | u32 count | count x {u16 algorithm, digest}
                                | u32 size | data[size]

EV_NO_ACTION events are recorded, not extended. Facts from the TCG PC Client Platform Firmware Profile
(sections 10.2 and 10.4) and tpm2-tools' tpm2_eventlog.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any

from cvmlint.errors import FormatError, reader

FMT = "event log"
SPEC_ID = b"Spec ID Event03\0"
EV_NO_ACTION = 0x3

ALGORITHMS = {0x0004: "sha1", 0x000B: "sha256", 0x000C: "sha384", 0x000D: "sha512"}
"""TPM_ALG_ID -> hashlib name (the banks a log can carry that cvmlint replays)."""

EVENT_TYPES = {
    0x0: "EV_PREBOOT_CERT",
    0x1: "EV_POST_CODE",
    0x3: "EV_NO_ACTION",
    0x4: "EV_SEPARATOR",
    0x5: "EV_ACTION",
    0x6: "EV_EVENT_TAG",
    0x7: "EV_S_CRTM_CONTENTS",
    0x8: "EV_S_CRTM_VERSION",
    0x9: "EV_CPU_MICROCODE",
    0xA: "EV_PLATFORM_CONFIG_FLAGS",
    0xB: "EV_TABLE_OF_DEVICES",
    0xC: "EV_COMPACT_HASH",
    0xD: "EV_IPL",
    0xE: "EV_IPL_PARTITION_DATA",
    0xF: "EV_NONHOST_CODE",
    0x10: "EV_NONHOST_CONFIG",
    0x11: "EV_NONHOST_INFO",
    0x12: "EV_OMIT_BOOT_DEVICE_EVENTS",
    0x80000001: "EV_EFI_VARIABLE_DRIVER_CONFIG",
    0x80000002: "EV_EFI_VARIABLE_BOOT",
    0x80000003: "EV_EFI_BOOT_SERVICES_APPLICATION",
    0x80000004: "EV_EFI_BOOT_SERVICES_DRIVER",
    0x80000005: "EV_EFI_RUNTIME_SERVICES_DRIVER",
    0x80000006: "EV_EFI_GPT_EVENT",
    0x80000007: "EV_EFI_ACTION",
    0x80000008: "EV_EFI_PLATFORM_FIRMWARE_BLOB",
    0x80000009: "EV_EFI_HANDOFF_TABLES",
    0x8000000A: "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
    0x8000000B: "EV_EFI_HANDOFF_TABLES2",
    0x8000000C: "EV_EFI_VARIABLE_BOOT2",
    0x80000010: "EV_EFI_HCRTM_EVENT",
    0x800000E0: "EV_EFI_VARIABLE_AUTHORITY",
    0x800000E1: "EV_EFI_SPDM_FIRMWARE_BLOB",
    0x800000E2: "EV_EFI_SPDM_FIRMWARE_CONFIG",
}

_FIRST = struct.Struct("<II20sI")
_SPEC = struct.Struct("<16sIBBBBI")
_ALG = struct.Struct("<HH")
_EVENT = struct.Struct("<III")
_U16, _U32 = struct.Struct("<H"), struct.Struct("<I")
MAX_PCR = 23


@dataclass
class LoggedEvent:
    """One event as the log records it."""

    index: int
    """Position in the log (the Spec ID event is 0)."""
    pcr: int
    type: int
    digests: dict[str, bytes]
    """Algorithm name -> digest."""
    data: bytes
    offset: int
    """Byte offset of the event in the log."""

    @property
    def type_name(self) -> str:
        return EVENT_TYPES.get(self.type, f"0x{self.type:08x}")


@dataclass
class EventLog:
    """A parsed log: its banks (algorithm -> digest size) and its events, in order."""

    banks: dict[str, int]
    events: list[LoggedEvent] = field(default_factory=list)
    unknown_algorithms: list[int] = field(default_factory=list)

    def replay(self, bank: str, pcrs: range = range(MAX_PCR + 1)) -> dict[int, bytes]:
        """Each PCR's value after extending, from zero, every event of `bank` (EV_NO_ACTION aside)."""
        size = self.banks[bank]
        values = {pcr: bytes(size) for pcr in pcrs}
        for event in self.events:
            if event.type == EV_NO_ACTION or event.pcr not in values:
                continue
            values[event.pcr] = hashlib.new(bank, values[event.pcr] + event.digests[bank]).digest()
        return values


@reader("eventlog", "event log")
def parse_event_log(data: bytes) -> EventLog:
    """Parse a crypto-agile TCG event log (the binary_bios_measurements file)."""
    pcr, kind, _sha1, size = _unpack(_FIRST, data, 0, "first event")
    if kind != EV_NO_ACTION or pcr != 0:
        raise FormatError(FMT, "first event", 0, f"is type {kind:#x} in PCR {pcr}, not the Spec ID event")
    start = _FIRST.size
    spec = _slice(data, start, size, "Spec ID event")
    signature, _cls, _minor, _major, _errata, _uintn, count = _unpack(_SPEC, spec, 0, "Spec ID event")
    if signature != SPEC_ID:
        raise FormatError(FMT, "Spec ID event", start, f"signature {signature!r}: not a crypto-agile log")
    if count == 0 or _SPEC.size + count * _ALG.size > len(spec):
        raise FormatError(FMT, "Spec ID event", start + 24, f"{count} algorithms do not fit in {len(spec)} bytes")
    log = EventLog(banks={})
    sizes: dict[int, int] = {}
    for k in range(count):
        alg, digest_size = _ALG.unpack_from(spec, _SPEC.size + k * _ALG.size)
        sizes[alg] = digest_size
        if alg in ALGORITHMS:
            if hashlib.new(ALGORITHMS[alg]).digest_size != digest_size:
                raise FormatError(
                    FMT, "Spec ID event", start, f"{ALGORITHMS[alg]} digests said to be {digest_size} bytes"
                )
            log.banks[ALGORITHMS[alg]] = digest_size
        else:
            log.unknown_algorithms.append(alg)
    log.events.append(LoggedEvent(0, 0, EV_NO_ACTION, {}, bytes(spec), 0))
    offset = start + size
    while offset < len(data):
        event, offset = _event(data, offset, sizes, len(log.events))
        missing = [bank for bank in log.banks if bank not in event.digests]
        if missing and event.type != EV_NO_ACTION:  # it could not be replayed in those banks
            raise FormatError(
                FMT,
                f"event {event.index}",
                event.offset,
                f"no {', '.join(missing)} digest, which the Spec ID event lists",
            )
        log.events.append(event)
    return log


def _event(data: bytes, offset: int, sizes: dict[int, int], index: int) -> tuple[LoggedEvent, int]:
    what = f"event {index}"
    pcr, kind, count = _unpack(_EVENT, data, offset, what)
    if pcr > MAX_PCR and kind != EV_NO_ACTION:
        raise FormatError(FMT, what, offset, f"PCR {pcr} does not exist")
    if count > len(sizes):
        raise FormatError(FMT, what, offset + 8, f"{count} digests, but the log has {len(sizes)} algorithms")
    at = offset + 12
    digests: dict[str, bytes] = {}
    for _ in range(count):
        (alg,) = _unpack(_U16, data, at, what)
        if alg not in sizes:
            raise FormatError(FMT, what, at, f"digest of algorithm {alg:#06x}, which the Spec ID event does not list")
        digest = _slice(data, at + 2, sizes[alg], f"{what} digest")
        if alg in ALGORITHMS:
            digests[ALGORITHMS[alg]] = digest
        at += 2 + sizes[alg]
    (size,) = _unpack(_U32, data, at, what)
    body = _slice(data, at + 4, size, f"{what} data")
    return LoggedEvent(index, pcr, kind, digests, body, offset), at + 4 + size


def _unpack(layout: struct.Struct, data: bytes, offset: int, what: str) -> tuple[Any, ...]:
    if offset + layout.size > len(data):
        raise FormatError(FMT, what, offset, f"needs {layout.size} bytes, {max(0, len(data) - offset)} left")
    return layout.unpack_from(data, offset)


def _slice(data: bytes, offset: int, size: int, what: str) -> bytes:
    if offset + size > len(data):
        raise FormatError(FMT, what, offset, f"{size} bytes announced, {max(0, len(data) - offset)} left")
    return data[offset : offset + size]
