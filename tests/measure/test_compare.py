"""`cvmlint measure --eventlog`: a real boot's log (QEMU + OVMF + swtpm) next to the image's prediction.

The log of the image's own boot equals it; the log of a boot that differs on purpose (another UKI and
command line, another chain, another boot option tried first) names the first event that differs,
what each side holds there, and the likely cause."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cvmlint.measure.compare import Comparison, compare
from cvmlint.measure.eventlog import parse_event_log
from tests import measure_images
from tests.measure.test_boot import predicted

pytestmark = pytest.mark.slow


def logged(kind: str, tmp_path: Path, network_first: bool = False) -> Path:
    """The event log of booting the test image `kind`, as a file."""
    seen = measure_images.boot(measure_images.image(kind), network_first=network_first)
    assert seen.eventlog is not None
    path = tmp_path / f"{kind}.log"
    path.write_bytes(seen.eventlog)
    return path


def measure(disk: Path, log: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [".venv/bin/cvmlint", "measure", *options, "--eventlog", str(log), str(disk)], capture_output=True, text=True
    )


def comparison(disk: Path, log: Path) -> Comparison:
    return compare(predicted(disk), parse_event_log(log.read_bytes()))


@pytest.mark.parametrize("kind", ["uki", "shim-uki"])
def test_the_log_of_the_images_own_boot_equals_its_prediction(kind: str, tmp_path: Path) -> None:
    log = logged(kind, tmp_path)
    done = measure(measure_images.image(kind), log)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every compared event and register equals the prediction" in done.stdout
    assert done.stdout.count(" equal ") == 14 and "DIFFERS" not in done.stdout  # 7 PCRs, 2 banks


def test_another_uki_is_named_at_the_first_event_that_differs(tmp_path: Path) -> None:
    """The log of the UKI booted with `console=ttyS0 quiet` against an image whose UKI has another
    command line: the UKI's own load event differs first, then its sections, the options and LoadOptions."""
    other = measure_images.image("uki", measure_images.CMDLINE + " lockdown=integrity")
    log = logged("uki", tmp_path)
    found = comparison(other, log)
    first = found.first
    assert first is not None and first.pcr == 4 and first.logged is not None
    assert first.logged.type_name == "EV_EFI_BOOT_SERVICES_APPLICATION"
    assert "loaded '/EFI/Linux/measured.efi', whose digest is not that of the image's /EFI/Linux/measured.efi" in (
        first.cause
    )
    by_pcr = {d.pcr: d for d in found.differences}
    assert sorted(by_pcr) == [4, 9, 11, 12]
    assert "the log has 'console=ttyS0 quiet', the image 'console=ttyS0 quiet lockdown=integrity'" in by_pcr[12].cause
    assert by_pcr[11].cause == "another UKI: its section .cmdline contents differs from the image's"
    assert by_pcr[9].cause.endswith("another command line")
    assert [r.name for r in found.registers if r.equal is False] == [
        f"PCR {n} {bank}" for bank in ("sha256", "sha384") for n in (4, 9, 11, 12)
    ]
    done = measure(other, log)
    assert done.returncode == 1
    assert "first difference: PCR 4\n  log event 29 (byte 4160): EV_EFI_BOOT_SERVICES_APPLICATION" in done.stdout
    doc = json.loads(measure(other, log, "-f", "json").stdout)["eventlog"]
    assert doc["differs"] is True and doc["differences"][0]["logged"]["index"] == 29
    assert doc["differences"][0]["predicted"]["covers"] == "Authenticode digest of /EFI/Linux/measured.efi"


def test_another_chain_is_named_at_the_second_stage(tmp_path: Path) -> None:
    """shim starting the UKI itself, against an image where shim starts systemd-boot: shim's second stage
    is where they part, and systemd-boot's options are missing from the log."""
    found = comparison(measure_images.image("uki"), logged("shim-uki", tmp_path))
    assert found.first is not None and found.first.pcr == 4
    assert found.first.predicted is not None and found.first.predicted.by == "shim"
    twelve = next(d for d in found.differences if d.pcr == 12)
    assert twelve.logged is None and twelve.cause.startswith("the log has no more events in PCR 12: systemd-boot")


def test_another_boot_option_tried_first_is_named(tmp_path: Path) -> None:
    """The image booted after the firmware tried a network boot first: PCR 4 has a second 'Calling EFI
    Application from Boot Option'; every event the image decides is still equal."""
    disk = measure_images.image("uki")
    found = comparison(disk, logged("uki", tmp_path, network_first=True))
    assert found.boot_options and "another boot option was tried before the image's" in found.boot_options[0]
    assert [d.pcr for d in found.differences] == [4]
    assert "make the disk the first boot option (QEMU: bootindex=0" in found.differences[0].cause
    assert {r.name for r in found.registers if r.equal is False} == {"PCR 4 sha256", "PCR 4 sha384"}


def test_a_log_that_cannot_be_read_is_exit_2_naming_it(tmp_path: Path) -> None:
    log = logged("uki", tmp_path)
    cut = tmp_path / "cut.log"
    cut.write_bytes(log.read_bytes()[:5000])
    done = measure(measure_images.image("uki"), cut)
    assert done.returncode == 2 and "event log: event" in done.stderr and "Traceback" not in done.stderr
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    done = measure(measure_images.image("uki"), empty)
    assert done.returncode == 2 and "is empty" in done.stderr
