"""`cvmlint measure` against real boots: QEMU + OVMF + swtpm (sha256 and sha384 banks) boots the shim ->
systemd-boot -> UKI and the shim -> GRUB -> kernel test images; the guest prints its PCRs and the event
log. Every predicted register equals the one read, and for the UKI every predicted event is in the log,
in order, with the same digests (and the same data where the image decides it)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cvmlint.facts.provenance import Unknown
from cvmlint.image.container import open_image
from cvmlint.measure.eventlog import EV_NO_ACTION, parse_event_log
from cvmlint.measure.predict import BANKS, PREDICTED, Event, Prediction, predict, rtmrs
from cvmlint.recipe.facts import NOT_MEASURED
from cvmlint.scan.disk import open_disk
from tests import images, measure_images, tpm_commands
from tests.tools import run

pytestmark = pytest.mark.slow


def predicted(disk: Path, **options: Any) -> Prediction:
    with open_image(disk) as (src, _kind):
        return predict(open_disk(src), **options)


@pytest.fixture(scope="module")
def uki() -> tuple[Path, measure_images.Observed]:
    disk = measure_images.image("uki")
    return disk, measure_images.boot(disk)


@pytest.fixture(scope="module", params=["grub", "grub-mkosi"])
def grub(request: pytest.FixtureRequest) -> tuple[Path, measure_images.Observed]:
    """GRUB reading /EFI/debian/grub.cfg, and mkosi's layout (`configfile /grub/grub.cfg`, entries inside
    `if [ "${grub_platform}" == "efi" ]`)."""
    disk = measure_images.image(request.param)
    return disk, measure_images.boot(disk)


@pytest.fixture(scope="module", params=["uki", "shim-uki"])
def any_uki(request: pytest.FixtureRequest) -> tuple[Path, measure_images.Observed]:
    """shim -> systemd-boot -> UKI, and shim -> UKI (shim starting the UKI as its second stage)."""
    disk = measure_images.image(request.param)
    return disk, measure_images.boot(disk)


def test_uki_every_predicted_pcr_equals_the_booted_one(any_uki: tuple[Path, measure_images.Observed]) -> None:
    disk, seen = any_uki
    prediction = predicted(disk)
    for bank in BANKS:
        for pcr, value in prediction.pcrs(bank).items():
            assert value == seen.pcrs[(bank, pcr)], f"PCR {pcr} {bank}"


def test_uki_every_predicted_event_is_logged_in_order(any_uki: tuple[Path, measure_images.Observed]) -> None:
    disk, seen = any_uki
    assert seen.eventlog is not None
    log = parse_event_log(seen.eventlog)
    prediction = predicted(disk)
    for pcr in PREDICTED:
        logged = [e for e in log.events if e.pcr == pcr and e.type != EV_NO_ACTION]
        ours = [e for e in prediction.events if e.pcr == pcr]
        assert [e.type_name for e in logged] == [e.type for e in ours], f"PCR {pcr}"
        for mine, real in zip(ours, logged, strict=True):
            assert not isinstance(mine.digests, Unknown)
            assert mine.digests == {bank: real.digests[bank] for bank in BANKS}, f"PCR {pcr}: {mine.what}"
            if mine.data is not None:
                assert mine.data == real.data, f"PCR {pcr}: {mine.what}"


def test_the_log_replays_to_the_pcrs_read(uki: tuple[Path, measure_images.Observed]) -> None:
    """The event log parser, checked on the firmware's log: PCR 10 is IMA's (the kernel's, not logged here)."""
    _, seen = uki
    assert seen.eventlog is not None
    log = parse_event_log(seen.eventlog)
    assert set(log.banks) == set(BANKS)
    for bank in BANKS:
        replayed = log.replay(bank, range(16))
        assert {n for n in range(16) if replayed[n] != seen.pcrs[(bank, n)]} == {10}


def test_the_parser_agrees_with_tpm2_eventlog(uki: tuple[Path, measure_images.Observed], tmp_path: Path) -> None:
    _, seen = uki
    assert seen.eventlog is not None
    raw = tmp_path / "log.bin"
    raw.write_bytes(seen.eventlog)
    theirs = run("tpm2_eventlog", raw)
    pcrs = [int(n) for n in re.findall(r"^  PCRIndex: (\d+)$", theirs, re.M)]
    sha256 = re.findall(r"AlgorithmId: sha256\n\s+Digest: \"([0-9a-f]+)\"", theirs)
    log = parse_event_log(seen.eventlog)
    assert [e.pcr for e in log.events] == pcrs
    assert [e.digests["sha256"].hex() for e in log.events if "sha256" in e.digests] == sha256


def test_rtmrs_follow_from_the_logged_events_by_the_tdvf_mapping(uki: tuple[Path, measure_images.Observed]) -> None:
    """RTMR[1]/[2] by TDVF's mapping of the image's predicted events equal the same mapping of the recorded
    log; on TDX only the components that measure through the CC protocol reach them (here: the firmware
    and shim 16.1, not systemd 252 or Linux 6.1)."""
    disk, seen = uki
    assert seen.eventlog is not None
    log = parse_event_log(seen.eventlog)
    logged = [
        Event(e.pcr, e.type_name, "", "", {b: e.digests[b] for b in BANKS})
        for e in log.events
        if e.type != EV_NO_ACTION
    ]
    prediction = predicted(disk)
    assert rtmrs(prediction.events) == rtmrs(logged)
    assert prediction.on_tdx == {"firmware", "shim"}
    on_tdx = rtmrs([e for e in prediction.events if e.by in ("firmware", "shim")])
    assert prediction.rtmrs() == on_tdx and on_tdx[2] != rtmrs(prediction.events)[2]
    assert all(isinstance(v, bytes) for v in on_tdx.values())


def test_grub_every_predicted_pcr_equals_the_booted_one(grub: tuple[Path, measure_images.Observed]) -> None:
    disk, seen = grub
    assert seen.eventlog is None  # GRUB starts the kernel without its EFI stub: the log is not passed on
    prediction = predicted(disk)
    for bank in BANKS:
        for pcr, value in prediction.pcrs(bank).items():
            assert value == seen.pcrs[(bank, pcr)], f"PCR {pcr} {bank}"
    grub_events = [e.what for e in prediction.events if e.by == "grub"]
    assert grub_events[0].startswith("grub_cmd: [ -z (hd0,gpt1)/EFI/debian")
    kernel = prediction.chain[-1]
    assert f"kernel_cmdline: {kernel} {measure_images.CMDLINE}" in grub_events
    assert images.payload().kver in kernel


def test_an_unfollowed_grub_command_makes_pcrs_8_and_9_unknown(tmp_path: Path) -> None:
    """The same GRUB image with a `background_image` line in grub.cfg (a file GRUB would read that cvmlint
    does not follow yet): the prediction stops there, naming the line."""
    disk = tmp_path / "disk.raw"
    disk.write_bytes(measure_images.image("grub").read_bytes())
    esp = f"{disk}@@1M"
    text = run("mtype", "-i", esp, "::/EFI/debian/grub.cfg")
    (tmp_path / "grub.cfg").write_text("background_image /splash.png\n" + text)
    run("mcopy", "-o", "-i", esp, tmp_path / "grub.cfg", "::/EFI/debian/grub.cfg")
    prediction = predicted(disk)
    for bank in BANKS:
        pcrs = prediction.pcrs(bank)
        for pcr in (8, 9):
            value = pcrs[pcr]
            assert isinstance(value, Unknown) and "grub.cfg:1: `background_image /splash.png` is not" in value.reason
        assert all(isinstance(pcrs[p], bytes) for p in PREDICTED if p not in (8, 9))


def test_a_changed_command_line_changes_exactly_the_registers_it_should() -> None:
    """In a UKI the command line is a section (PCR 11), the options systemd-boot and the stub pass on (PCR 12
    twice, PCR 9 through the kernel's stub), and part of the signed PE (PCR 4): nothing else moves."""
    before = predicted(measure_images.image("uki"))
    after = predicted(measure_images.image("uki", measure_images.CMDLINE + " lockdown=integrity"))
    for bank in BANKS:
        old, new = before.pcrs(bank), after.pcrs(bank)
        assert {pcr for pcr in PREDICTED if old[pcr] != new[pcr]} == {4, 9, 11, 12}
    assert rtmrs(before.events)[2] != rtmrs(after.events)[2]  # by the mapping, RTMR[2] moves
    # on TDX, systemd 252 and Linux 6.1 extend no RTMR: only the UKI's digest (RTMR[1]) shows the change
    assert before.rtmrs()[1] != after.rtmrs()[1] and before.rtmrs()[2] == after.rtmrs()[2]


def test_a_changed_grub_command_line_changes_pcrs_8_and_9_only() -> None:
    """GRUB measures the command line in its commands (PCR 8) and reads it in grub.cfg (PCR 9)."""
    before = predicted(measure_images.image("grub"))
    after = predicted(measure_images.image("grub", measure_images.CMDLINE + " lockdown=integrity"))
    for bank in BANKS:
        old, new = before.pcrs(bank), after.pcrs(bank)
        assert {pcr for pcr in PREDICTED if old[pcr] != new[pcr]} == {8, 9}
    assert before.rtmrs() == after.rtmrs()  # GRUB 2.06 extends no RTMR on TDX


def test_secure_boot_on_leaves_out_the_stubs_option_event() -> None:
    off = predicted(measure_images.image("uki"))
    on = predicted(measure_images.image("uki"), secure_boot=True)
    count = [sum(e.pcr == 12 for e in p.events) for p in (off, on)]
    assert count == [2, 1]


def test_the_cli_prints_registers_transcript_json_and_reference(tmp_path: Path) -> None:
    disk = measure_images.image("uki")
    prediction = predicted(disk)
    text = run(".venv/bin/cvmlint", "measure", disk)
    assert f"PCR 11 sha256  {prediction.pcrs('sha256')[11].hex()}" in text  # type: ignore[union-attr]
    transcript = run(".venv/bin/cvmlint", "measure", "--transcript", disk)
    assert transcript.count("\n#") == len(prediction.events)
    reference = tmp_path / "ref.json"
    doc = json.loads(run(".venv/bin/cvmlint", "measure", "-f", "json", "--reference", reference, disk))
    assert len(doc["events"]) == len(prediction.events) and doc["unknown"] == {}
    ref = json.loads(reference.read_text())
    assert ref["format"] == "cvmlint.measurements/1"
    assert ref["registers"]["rtmr2"] == doc["rtmrs"]["2"]
    assert ref["image"]["sha256"] == run("sha256sum", disk).split()[0]


@pytest.mark.parametrize(("kind", "options"), [("uki", []), ("grub-mkosi", []), ("grub-mkosi", ["--secure-boot"])])
def test_the_trustee_reference_is_the_rvps_sample_message_with_our_values(
    kind: str, options: list[str], tmp_path: Path
) -> None:
    """`--reference-format trustee`, checked field by field against Trustee's description (RVPS `Message`:
    version 0.1.0, type, base64 payload; the sample extractor's payload: name -> list of values; the names
    its default policy queries: rtmr_1, rtmr_2, tpm_pcr11): the same values as cvmlint's own reference,
    nothing for a register cvmlint could not predict. RVPS itself (Rust) cannot be installed here."""
    import base64

    disk = measure_images.image(kind)
    ours, theirs = tmp_path / "ours.json", tmp_path / "trustee.json"
    run(".venv/bin/cvmlint", "measure", *options, "--reference", ours, disk)
    run(".venv/bin/cvmlint", "measure", *options, "--reference", theirs, "--reference-format", "trustee", disk)
    message = json.loads(theirs.read_text())
    assert set(message) == {"version", "type", "payload"} and message["version"] == "0.1.0"
    assert message["type"] == "sample"
    values = json.loads(base64.b64decode(message["payload"], validate=True))
    assert isinstance(values, dict) and all(isinstance(v, list) and len(v) == 1 for v in values.values())
    reference = json.loads(ours.read_text())
    expected = {f"rtmr_{k[4:]}": [v] for k, v in reference["registers"].items() if k.startswith("rtmr")}
    expected |= {f"tpm_pcr{k[3:-7]}": [v] for k, v in reference["registers"].items() if k.endswith(".sha256")}
    assert values == expected
    assert {"rtmr_1", "rtmr_2", "tpm_pcr11"} <= set(values) or reference["unknown"]
    assert all(re.fullmatch(r"[0-9a-f]{96}", v[0]) for k, v in values.items() if k.startswith("rtmr_"))
    assert all(re.fullmatch(r"[0-9a-f]{64}", v[0]) for k, v in values.items() if k.startswith("tpm_pcr"))
    for name in reference["unknown"]:  # pcr4, rtmr2 …: no value at all
        assert f"tpm_pcr{name[3:]}" not in values and f"rtmr_{name[4:]}" not in values, name


def test_a_policy_pins_the_measurements_of_a_scanned_image(policy_of) -> None:  # type: ignore[no-untyped-def]
    """The `measurements` fact: a site policy pins RTMR[2] and PCR 11 and forbids a debug command line;
    a wrong pin fails naming the fact; a recipe has no measurements (unknown, never a pass)."""
    from cvmlint.policy import Status, evaluate
    from cvmlint.scan import scan_image

    disk = measure_images.image("uki")
    prediction = predicted(disk)
    rtmr2, pcr11 = prediction.rtmrs()[2], prediction.pcrs("sha256")[11]
    assert isinstance(rtmr2, bytes) and isinstance(pcr11, bytes)
    rules = (
        f'rule M-1 "pinned" {{\n  severity high\n  require measurements.rtmr[2] == "{rtmr2.hex()}"\n'
        f'  require measurements.pcr_sha256[11] == "{pcr11.hex()}"\n}}\n'
        'rule M-2 "no debug" {\n  severity high\n  require none e in measurements.events:'
        ' e.pcr == 12 and e.what matches "debug"\n}\n'
        'rule M-3 "wrong pin" {\n  severity high\n  require measurements.rtmr[1] == "00"\n}\n'
    )
    policy = policy_of(rules)
    with scan_image(disk) as facts:
        report = evaluate(policy, facts)
    assert [r.status for r in report.results] == [Status.PASS, Status.PASS, Status.FAIL]
    recipe = evaluate(policy, dataclasses.replace(facts, measurements=NOT_MEASURED))
    assert [r.status for r in recipe.results] == [Status.UNKNOWN] * 3


def test_an_entry_is_chosen_by_title_and_an_unknown_title_is_refused() -> None:
    disk = measure_images.image("grub")
    default = predicted(disk)
    assert predicted(disk, entry="Debian measured").pcrs("sha256") == default.pcrs("sha256")
    done = subprocess.run(
        [".venv/bin/cvmlint", "measure", "--entry", "rescue", str(disk)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "no boot entry titled 'rescue'; the entries are: 'Debian measured'" in done.stderr


def test_the_evidence_bundle_records_the_predicted_values(tmp_path: Path) -> None:
    disk = measure_images.image("uki")
    run(".venv/bin/cvmlint", "scan", "--evidence", tmp_path / "bundle", disk, ok=(0, 1))
    recorded = json.loads((tmp_path / "bundle/facts.json").read_text())["facts"]["measurements"]
    prediction = predicted(disk)
    assert recorded["rtmr"][2] == prediction.rtmrs()[2].hex()  # type: ignore[union-attr]
    assert len(recorded["events"]["items"]) == len(prediction.events)


def test_a_chain_never_booted_here_is_unknown_in_every_register(tmp_path: Path) -> None:
    """The UKI copied over BOOTX64.EFI (the firmware starts it directly, no shim): not a chain the
    tests boot, so nothing is claimed for it."""
    disk = tmp_path / "disk.raw"
    disk.write_bytes(measure_images.image("uki").read_bytes())
    esp = f"{disk}@@1M"
    run("mcopy", "-i", esp, "::/EFI/Linux/measured.efi", tmp_path / "uki.efi")
    run("mcopy", "-o", "-i", esp, tmp_path / "uki.efi", "::/EFI/BOOT/BOOTX64.EFI")
    prediction = predicted(disk)
    for bank in BANKS:
        for value in prediction.pcrs(bank).values():
            assert isinstance(value, Unknown) and "has not been checked against a real boot" in value.reason
    assert all(isinstance(v, Unknown) for v in prediction.rtmrs().values())


@pytest.mark.parametrize("kind", ["uki", "grub"])
def test_the_extends_the_tpm_received_replay_to_the_pcrs_the_guest_read(kind: str) -> None:
    """The TPM's side of a boot (the commands swtpm logged) is an oracle for images that print nothing:
    replayed, it gives every PCR the guest read (IMA's PCR 10 too: the kernel extends through the TPM)."""
    seen = measure_images.boot(measure_images.image(kind))
    for bank in BANKS:
        replayed = tpm_commands.replay(seen.extends, bank, range(16))
        assert {n for n in range(16) if replayed[n] != seen.pcrs[(bank, n)]} == set(), bank


@pytest.mark.parametrize("kind", ["grub", "grub-mkosi"])
def test_every_predicted_grub_event_was_extended_in_order(kind: str) -> None:
    """GRUB's boots leave no event log for the kernel: the TPM's side shows each predicted event, in order."""
    disk = measure_images.image(kind)
    seen = measure_images.boot(disk)
    prediction = predicted(disk)
    for pcr in PREDICTED:
        extended = [{b: e.digests[b] for b in BANKS} for e in seen.extends if e.pcr == pcr]
        ours = [e.digests for e in prediction.events if e.pcr == pcr]
        assert ours == extended, f"PCR {pcr}"
