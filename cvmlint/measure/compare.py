"""A real boot's event log next to the image's prediction: where they part, and the likely reason.

Each predicted PCR is compared event by event (type and digest in every bank both carry), in the
order the firmware logged them; the first event that differs in each PCR is named with what the
image predicted there, what the log holds, and the likely cause. The registers are compared too:
the log replayed to its PCRs next to the predicted values. A register whose prediction is unknown is
not compared past the unknown event, and says so.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

from cvmlint.facts.provenance import Unknown
from cvmlint.measure.eventlog import EV_NO_ACTION, EventLog, LoggedEvent
from cvmlint.measure.predict import BANKS, CALLING, PREDICTED, Event, Prediction

RETURNING = b"Returning from EFI Application from Boot Option"
SHOWN = 160
"""The most characters of an event's data shown."""
MAX_PATH_NODES = 64
"""Device path nodes read from one EV_EFI_BOOT_SERVICES_APPLICATION event."""


@dataclass(frozen=True)
class Difference:
    """The first event of one PCR where the log and the prediction part."""

    pcr: int
    logged: LoggedEvent | None
    """None: the log ends where the prediction has more."""
    predicted: Event | None
    """None: the log has more than the prediction."""
    cause: str


@dataclass(frozen=True)
class Register:
    """One register: the value the log replays to and the predicted one."""

    name: str
    logged: bytes
    predicted: bytes | Unknown

    @property
    def equal(self) -> bool | None:
        return None if isinstance(self.predicted, Unknown) else self.predicted == self.logged


@dataclass
class Comparison:
    """What the log shows next to the prediction."""

    banks: list[str]
    """The banks compared (those both the log and the prediction carry)."""
    registers: list[Register] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    """The first difference of each PCR, in the order of the log."""
    unknown: dict[int, str] = field(default_factory=dict)
    """PCR -> why it was not compared past some event."""
    boot_options: list[str] = field(default_factory=list)
    """What the log says of boot options tried before the image (OVMF's Calling/Returning events)."""

    @property
    def first(self) -> Difference | None:
        return self.differences[0] if self.differences else None

    @property
    def differs(self) -> bool:
        return bool(self.differences) or any(r.equal is False for r in self.registers)


def compare(prediction: Prediction, log: EventLog) -> Comparison:
    """Compare the log of a boot with the prediction for the image, PCR by PCR."""
    banks = [bank for bank in BANKS if bank in log.banks]
    result = Comparison(banks)
    result.boot_options = _boot_options(log)
    for bank in banks:
        replayed = log.replay(bank)
        for pcr, value in prediction.pcrs(bank).items():
            result.registers.append(Register(f"PCR {pcr} {bank}", replayed[pcr], value))
    for pcr in PREDICTED:
        logged = [e for e in log.events if e.pcr == pcr and e.type != EV_NO_ACTION]
        ours = [e for e in prediction.events if e.pcr == pcr]
        found = _first_difference(pcr, logged, ours, banks, result)
        if found is not None:
            result.differences.append(found)
    result.differences.sort(key=lambda d: d.logged.index if d.logged else len(log.events))
    return result


def _first_difference(
    pcr: int, logged: list[LoggedEvent], ours: list[Event], banks: list[str], result: Comparison
) -> Difference | None:
    for n in range(max(len(logged), len(ours))):
        mine = ours[n] if n < len(ours) else None
        real = logged[n] if n < len(logged) else None
        predicted = mine.digests if mine is not None else {}
        if isinstance(predicted, Unknown):
            result.unknown[pcr] = f"compared up to event {n + 1} of the PCR: {predicted.reason}"
            return None
        if mine is None or real is None:
            return Difference(pcr, real, mine, _cause(pcr, real, mine, result))
        if real.type_name != mine.type or any(real.digests.get(b) != predicted[b] for b in banks):
            return Difference(pcr, real, mine, _cause(pcr, real, mine, result))
    return None


def _boot_options(log: EventLog) -> list[str]:
    calls = [e for e in log.events if e.pcr == 4 and e.data == CALLING]
    returns = [e for e in log.events if e.pcr == 4 and e.data == RETURNING]
    if len(calls) <= 1 and not returns:
        return []
    return [
        f"the firmware started {len(calls)} boot options and {len(returns)} returned"
        f" (log events {', '.join(str(e.index) for e in sorted(calls + returns, key=lambda e: e.index))}):"
        " another boot option was tried before the image's"
    ]


def _cause(pcr: int, real: LoggedEvent | None, mine: Event | None, result: Comparison) -> str:
    """The likely reason the log parts from the prediction here, in words an engineer can act on."""
    if real is None:
        assert mine is not None
        return (
            f"the log has no more events in PCR {pcr}: {mine.by} did not measure {mine.what}"
            " (another version of it, or it measured through another protocol)"
        )
    if pcr == 4 and result.boot_options:
        return (
            result.boot_options[0] + "; make the disk the first boot option"
            " (QEMU: bootindex=0 on the disk; otherwise the firmware's BootOrder)"
        )
    if mine is None:
        return f"the log has an event the prediction does not model: {real.type_name} {describe(real)}"
    if real.type_name != mine.type:
        return f"the log has {real.type_name} {describe(real)} where the prediction has {mine.type} ({mine.what})"
    return _same_type_cause(pcr, real, mine)


def _same_type_cause(pcr: int, real: LoggedEvent, mine: Event) -> str:
    logged = describe(real)
    if real.type_name == "EV_EFI_BOOT_SERVICES_APPLICATION":
        ours = mine.where.file if mine.where and mine.where.file else mine.what
        return (
            f"{mine.by} loaded {logged}, whose digest is not that of the image's {ours}:"
            " the file differs from the one booted, or another loader ran"
        )
    if real.type_name == "EV_EFI_GPT_EVENT":
        return "the partition table the firmware read differs from the image's (another disk, or the GPT changed)"
    if pcr == 8 and real.data.startswith(b"kernel_cmdline:"):
        return f"another kernel command line: the log has {logged}, the image {_shown_data(mine.data)}"
    if pcr == 8:
        return (
            f"GRUB ran another command: the log has {logged}, the image {_shown_data(mine.data)}"
            " (a changed grub.cfg or grubenv, or another menu entry)"
        )
    if pcr == 9 and real.type_name == "EV_EVENT_TAG":
        other = "another initrd" if "initrd" in mine.what else "another command line"
        return f"the kernel's EFI stub measured {mine.what} with other contents than the image's: {other}"
    if pcr == 9:
        return f"GRUB read another file, or the file changed: the log has {logged}, the image {mine.what}"
    if pcr == 11:
        return f"another UKI: its {mine.what} differs from the image's"
    if pcr == 12:
        return (
            f"another command line: the log has {logged}, the image {_shown_data(mine.data)}"
            " (edited at the boot menu; or Secure Boot is on and systemd-stub ignored it: see --secure-boot)"
        )
    if pcr == 14:
        return f"shim's {mine.what} differs: keys enrolled in MOK, or another shim"
    return f"{mine.what} differs: the log has {logged}"


def describe(event: LoggedEvent) -> str:
    """The event's data as text where it is text, the file path an application was loaded from."""
    if event.type_name == "EV_EFI_BOOT_SERVICES_APPLICATION":
        return _loaded_from(event.data)
    if event.type_name == "EV_EVENT_TAG" and len(event.data) >= 8:
        _tag, size = struct.unpack_from("<II", event.data)
        return _shown_data(event.data[8 : 8 + size])
    return _shown_data(event.data)


def _shown_data(data: bytes | None) -> str:
    if data is None:
        return "(data not predicted)"
    for codec in ("ascii", "utf-16-le"):
        try:
            text = data.decode(codec).rstrip("\0")
        except UnicodeDecodeError:
            continue
        if text.isprintable():
            return repr(text if len(text) <= SHOWN else text[:SHOWN] + "…")
    return f"{len(data)} bytes"


def _loaded_from(data: bytes) -> str:
    """The file path nodes of a UEFI_IMAGE_LOAD_EVENT's device path (four u64, then the path)."""
    if len(data) < 32:
        return f"{len(data)} bytes (not an image load event)"
    (length,) = struct.unpack_from("<Q", data, 24)
    path = data[32 : 32 + min(length, len(data) - 32)]
    names: list[str] = []
    at = 0
    for _ in range(MAX_PATH_NODES):
        if at + 4 > len(path):
            break
        kind, sub, size = struct.unpack_from("<BBH", path, at)
        if kind == 0x7F or size < 4:
            break
        body = path[at + 4 : at + size]
        if (kind, sub) == (4, 4):
            names.append(body.decode("utf-16-le", "replace").rstrip("\0").replace("\\", "/"))
        elif (kind, sub) == (4, 3) and len(body) >= 16:
            names.append(f"vendor media {uuid.UUID(bytes_le=bytes(body[:16]))}")
        at += size
    return repr(" ".join(names)) if names else "a device path with no file name"
