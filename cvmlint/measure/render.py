"""A prediction as a person reads it (summary or transcript) and as programs read it (JSON, reference)."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from cvmlint.facts.provenance import Unknown
from cvmlint.measure.compare import Comparison, Difference, describe
from cvmlint.measure.eventlog import LoggedEvent
from cvmlint.measure.predict import BANKS, Event, Prediction

REFERENCE_FORMAT = "cvmlint.measurements/1"


def _hex(value: bytes | Unknown) -> str | None:
    return value.hex() if isinstance(value, bytes) else None


def _unknowns(prediction: Prediction) -> dict[str, str]:
    out = {}
    for bank in BANKS:
        for pcr, value in prediction.pcrs(bank).items():
            if isinstance(value, Unknown):
                out[f"pcr{pcr}"] = value.reason
    for rtmr, value in prediction.rtmrs().items():
        if isinstance(value, Unknown):
            out[f"rtmr{rtmr}"] = value.reason
    return out


WIDTH = 80
"""Prose is wrapped to this many columns (the same on every terminal, so transcripts diff); digests are not."""


def _wrapped(line: str) -> list[str]:
    return textwrap.wrap(line, WIDTH, subsequent_indent="    ", break_on_hyphens=False, break_long_words=False)


def text(prediction: Prediction, image: str, transcript: bool = False) -> str:
    """The registers (and with `transcript`, every event) as lines a person can read and diff."""
    lines = [f"image: {image}", f"entry: {prediction.entry or '(none)'}"]
    lines += _wrapped("chain: " + " -> ".join(prediction.chain))
    lines += [w for a in prediction.assumptions for w in _wrapped(f"assumes: {a}")]
    if transcript:
        lines.append("")
        lines += [line for n, event in enumerate(prediction.events, 1) for line in _event_lines(n, event)]
    lines.append("")
    for bank in BANKS:
        for pcr, value in prediction.pcrs(bank).items():
            lines.append(f"PCR {pcr:<2} {bank}  {_hex(value) or 'unknown'}")
    for rtmr, value in prediction.rtmrs().items():
        lines.append(f"RTMR[{rtmr}] sha384  {_hex(value) or 'unknown'}")
    lines += _wrapped("RTMRs (TDX) hold the events of: " + ", ".join(sorted(prediction.on_tdx)))
    unknown = _unknowns(prediction)
    if unknown:
        lines.append("")
        lines += [w for name, reason in unknown.items() for w in _wrapped(f"unknown {name}: {reason}")]
    return "\n".join(lines) + "\n"


def _event_lines(number: int, event: Event) -> list[str]:
    where = f" ({event.where})" if event.where else ""
    lines = _wrapped(f"#{number} PCR {event.pcr} {event.type} by {event.by}: {event.what}{where}")
    if isinstance(event.digests, Unknown):
        return [*lines, *_wrapped(f"    unknown: {event.digests.reason}")]
    return lines + [f"    {bank} {event.digests[bank].hex()}" for bank in BANKS]


def as_json(prediction: Prediction, image: str, compared: dict[str, Any] | None = None) -> str:
    """Every event (type, digests, what it covers, where in the image it came from) and the registers;
    `compared`: a real boot's log next to them (comparison_json)."""
    doc: dict[str, Any] = {
        "image": image,
        "entry": prediction.entry,
        "chain": prediction.chain,
        "assumptions": prediction.assumptions,
        "events": [_event_json(e) for e in prediction.events],
        "pcrs": {bank: {str(p): _hex(v) for p, v in prediction.pcrs(bank).items()} for bank in BANKS},
        "rtmrs": {str(r): _hex(v) for r, v in prediction.rtmrs().items()},
        "rtmr_components": sorted(prediction.on_tdx),
        "unknown": _unknowns(prediction),
    }
    if compared is not None:
        doc["eventlog"] = compared
    return json.dumps(doc, indent=2) + "\n"


def _event_json(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"pcr": event.pcr, "type": event.type, "by": event.by, "covers": event.what}
    if isinstance(event.digests, Unknown):
        out["digests"] = None
        out["unknown"] = event.digests.reason
    else:
        out["digests"] = {bank: event.digests[bank].hex() for bank in BANKS}
    if event.data is not None:
        out["data"] = event.data.hex()
    if event.where is not None:
        out["where"] = str(event.where)
    return out


def reference(prediction: Prediction, image: str, image_sha256: str) -> str:
    """Reference values for a verifier: each known register once, by name, with the assumptions they
    hold under; unknown registers are listed with their reason and no value (see docs/measure.md)."""
    registers: dict[str, str] = {}
    for bank in BANKS:
        for pcr, value in prediction.pcrs(bank).items():
            if isinstance(value, bytes):
                registers[f"pcr{pcr}.{bank}"] = value.hex()
    for rtmr, value in prediction.rtmrs().items():
        if isinstance(value, bytes):
            registers[f"rtmr{rtmr}"] = value.hex()
    doc = {
        "format": REFERENCE_FORMAT,
        "image": {"name": image, "sha256": image_sha256},
        "entry": prediction.entry,
        "assumptions": prediction.assumptions,
        "registers": registers,
        "rtmr_components": sorted(prediction.on_tdx),
        "unknown": _unknowns(prediction),
    }
    return json.dumps(doc, indent=2) + "\n"


TRUSTEE_MESSAGE_VERSION = "0.1.0"


def trustee_reference(prediction: Prediction) -> str:
    """The reference values as a message for Trustee's Reference Value Provider Service (`rvps-tool
    register --path FILE`): `{"version": "0.1.0", "type": "sample", "payload": base64(JSON)}`, the payload
    mapping each reference value name to its accepted values. The names are those Trustee's default
    attestation policy queries: `rtmr_1`, `rtmr_2` (TDX, compared with the quote's hex registers) and
    `tpm_pcr<N>` (the SHA-256 bank; the policy reads `tpm_pcr11`). A register cvmlint could not predict
    is left out: RVPS then has no value for it and the policy fails that claim, never passes it."""
    import base64

    values: dict[str, list[str]] = {}
    for rtmr, value in prediction.rtmrs().items():
        if isinstance(value, bytes):
            values[f"rtmr_{rtmr}"] = [value.hex()]
    for pcr, value in prediction.pcrs("sha256").items():
        if isinstance(value, bytes):
            values[f"tpm_pcr{pcr}"] = [value.hex()]
    payload = json.dumps(values, indent=2, sort_keys=True).encode()
    message = {"version": TRUSTEE_MESSAGE_VERSION, "type": "sample", "payload": base64.b64encode(payload).decode()}
    return json.dumps(message, indent=2) + "\n"


def comparison_text(comparison: Comparison, log_name: str) -> str:
    """The log next to the prediction: the first event that differs, each PCR's, and the registers."""
    lines = ["", f"event log: {log_name} (banks compared: {', '.join(comparison.banks)})"]
    lines += [w for note in comparison.boot_options for w in _wrapped(f"note: {note}")]
    first = comparison.first
    if first is None and not comparison.differs:
        lines.append("every compared event and register equals the prediction")
    for n, difference in enumerate(comparison.differences):
        lines.append("")
        lines += _wrapped(("first difference: " if n == 0 else "also: ") + f"PCR {difference.pcr}")
        lines += _difference_lines(difference)
    lines.append("")
    for register in comparison.registers:
        verdict = {True: "equal", False: "DIFFERS", None: "not predicted"}[register.equal]
        lines.append(f"{register.name:<13} {verdict:<13} log {register.logged.hex()}")
    lines += [w for pcr, why in comparison.unknown.items() for w in _wrapped(f"PCR {pcr} not compared: {why}")]
    return "\n".join(lines) + "\n"


def _difference_lines(difference: Difference) -> list[str]:
    lines: list[str] = []
    real, mine = difference.logged, difference.predicted
    if real is not None:
        lines += _wrapped(f"  log event {real.index} (byte {real.offset}): {real.type_name} {describe(real)}")
    else:
        lines.append("  log: no such event")
    if mine is not None:
        where = f" ({mine.where})" if mine.where else ""
        lines += _wrapped(f"  predicted: {mine.type} by {mine.by}: {mine.what}{where}")
    else:
        lines.append("  predicted: no such event")
    lines += _wrapped(f"  likely cause: {difference.cause}")
    return lines


def comparison_json(comparison: Comparison, log_name: str) -> dict[str, Any]:
    """The comparison as JSON: each PCR's first difference and every register."""

    def side(real: LoggedEvent | None) -> dict[str, Any] | None:
        if real is None:
            return None
        return {
            "index": real.index,
            "offset": real.offset,
            "pcr": real.pcr,
            "type": real.type_name,
            "digests": {bank: real.digests[bank].hex() for bank in comparison.banks if bank in real.digests},
            "data": real.data.hex(),
            "shown": describe(real),
        }

    return {
        "log": log_name,
        "banks": comparison.banks,
        "differs": comparison.differs,
        "boot_options": comparison.boot_options,
        "differences": [
            {
                "pcr": d.pcr,
                "logged": side(d.logged),
                "predicted": _event_json(d.predicted) if d.predicted else None,
                "cause": d.cause,
            }
            for d in comparison.differences
        ],
        "registers": {
            r.name: {"log": r.logged.hex(), "predicted": _hex(r.predicted), "equal": r.equal}
            for r in comparison.registers
        },
        "not_compared": {str(pcr): why for pcr, why in comparison.unknown.items()},
    }
