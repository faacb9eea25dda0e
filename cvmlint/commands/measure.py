"""`cvmlint measure`: predict what booting the image extends into the PCRs and RTMRs."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING

from cvmlint.cliargs import Opt, command
from cvmlint.commands.common import FILE_OUTPUT, fail, write

if TYPE_CHECKING:
    from cvmlint.measure.eventlog import EventLog


class TextOrJson(enum.StrEnum):
    """Output formats of `cvmlint measure` and `cvmlint rebuild`."""

    text = "text"
    json = "json"


class ReferenceFormat(enum.StrEnum):
    """What `--reference` writes."""

    cvmlint = "cvmlint"
    trustee = "trustee"


TEXT_OR_JSON = Opt(("--format", "-f"), "fmt", "Output format.", kind=TextOrJson, default=TextOrJson.text)


@command(
    "measure",
    Opt(("image",), "image", "Disk image: raw, qcow2, vhd, or a tar(.gz) holding disk.raw.", kind=Path),
    TEXT_OR_JSON,
    Opt(("--transcript",), "transcript", "List every event (the text format), to read or diff.", switch=True),
    Opt(
        ("--secure-boot",),
        "secure_boot",
        "Predict for firmware with Secure Boot on (systemd-stub then ignores the options it is given).",
        switch=True,
    ),
    Opt(
        ("--td-vtpm",),
        "td_vtpm",
        "On TDX, the TD also has a vTPM (as on GCP): decides which components reach the RTMRs.",
        switch=True,
    ),
    Opt(("--entry",), "entry", "The boot entry to predict, by title (default: the default entry)."),
    Opt(("--reference",), "reference", "Also write reference values for a verifier to this file.", kind=Path),
    Opt(
        ("--reference-format",),
        "reference_format",
        "cvmlint (cvmlint.measurements/1, every register with its reason when unknown) or trustee (a message "
        "for Trustee's RVPS, `rvps-tool register --path FILE`: rtmr_1, rtmr_2, tpm_pcrN).",
        kind=ReferenceFormat,
        default=ReferenceFormat.cvmlint,
    ),
    Opt(
        ("--eventlog",),
        "eventlog",
        "A real boot's TCG2 event log (binary_bios_measurements): name the first event that differs from the"
        " prediction, and why (exit 1 when one does).",
        kind=Path,
    ),
    FILE_OUTPUT,
)
def measure_cmd(
    image: Path,
    fmt: TextOrJson,
    transcript: bool,
    secure_boot: bool,
    td_vtpm: bool,
    entry: str | None,
    reference: Path | None,
    reference_format: ReferenceFormat,
    eventlog: Path | None,
    output: Path | None,
) -> None:
    """Predict what booting the image extends into the TPM's PCRs and TDX RTMRs, event by event.

    Registers cvmlint cannot predict from the image are shown unknown, with the reason.
    """
    import hashlib

    from cvmlint.image.container import open_image
    from cvmlint.measure import render
    from cvmlint.measure.predict import predict
    from cvmlint.scan.disk import open_disk

    if not image.is_file():
        fail(f"{image}: no such image file")
    log = _read_log(eventlog) if eventlog is not None else None
    with open_image(image) as (src, _kind):
        prediction = predict(open_disk(src), secure_boot=secure_boot, entry=entry, td_vtpm=td_vtpm)
    if reference is not None and reference_format is ReferenceFormat.trustee:
        write(render.trustee_reference(prediction), reference)
    elif reference is not None:
        digest = hashlib.sha256()
        with open(image, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        write(render.reference(prediction, image.name, digest.hexdigest()), reference)
    comparison = None
    if log is not None and eventlog is not None:
        from cvmlint.measure.compare import compare

        comparison = compare(prediction, log)
    if fmt is TextOrJson.json:
        compared = render.comparison_json(comparison, str(eventlog)) if comparison else None
        write(render.as_json(prediction, image.name, compared), output)
    else:
        shown = render.comparison_text(comparison, str(eventlog)) if comparison else ""
        write(render.text(prediction, image.name, transcript) + shown, output)
    if comparison is not None and comparison.differs:
        raise SystemExit(1)


def _read_log(path: Path) -> EventLog:
    """The event log file, whole (up to the eventlog-bytes limit)."""
    from cvmlint import limits
    from cvmlint.measure.eventlog import parse_event_log

    try:
        with open(path, "rb") as fh:
            data = fh.read(limits.get("eventlog-bytes") + 1)
    except OSError as err:
        fail(f"cannot read the event log {path}: {err.strerror}")
    limits.check("eventlog-bytes", len(data), "event log", str(path))
    if not data:
        fail(f"the event log {path} is empty", tip="read it from /sys/kernel/security/tpm0/binary_bios_measurements")
    return parse_event_log(data)
