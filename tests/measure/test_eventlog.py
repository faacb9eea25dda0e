"""The event log reader on OVMF's real log, whole and damaged: every cut and every inflated count or size
is one FormatError naming the structure and its offset, never another exception."""

from __future__ import annotations

import struct

import pytest

from cvmlint.errors import FormatError
from cvmlint.measure.eventlog import EV_NO_ACTION, parse_event_log
from tests import measure_images

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def log() -> bytes:
    found = measure_images.boot(measure_images.image("uki")).eventlog
    assert found is not None
    return found


def test_every_cut_is_refused_with_the_structure_and_offset(log: bytes) -> None:
    events = parse_event_log(log).events
    boundaries = {e.offset for e in events} | {len(log)}
    for cut in range(1, len(log)):
        if cut in boundaries:
            assert len(parse_event_log(log[:cut]).events) == sum(e.offset < cut for e in events)
            continue
        with pytest.raises(FormatError) as err:
            parse_event_log(log[:cut])
        assert err.value.fmt == "event log" and 0 <= err.value.offset <= cut


def test_inflated_counts_and_sizes_are_refused(log: bytes) -> None:
    parsed = parse_event_log(log)
    second = parsed.events[1].offset  # pcr, type, digest count, then the digests
    for offset, value, words in (
        (second + 8, 0xFFFF, "digests"),  # digest count
        (second + 8, 3, "digests"),  # more digests than the log's algorithms
        (second, 99, "PCR 99"),  # PCR index
        (28, 0xFFFFFFF0, "bytes announced"),  # the Spec ID event's size
        (32 + 24, 0x7FFFFFFF, "algorithms"),  # the Spec ID event's algorithm count
    ):
        damaged = bytearray(log)
        struct.pack_into("<I", damaged, offset, value)
        with pytest.raises(FormatError, match=words):
            parse_event_log(bytes(damaged))


def test_a_log_that_is_not_crypto_agile_is_named(log: bytes) -> None:
    with pytest.raises(FormatError, match="not a crypto-agile log"):
        parse_event_log(log[:32] + b"Spec ID Event02\0" + log[48:])
    with pytest.raises(FormatError, match="not the Spec ID event"):
        parse_event_log(struct.pack("<I", 4) + log[4:])


def test_events_keep_their_data_and_no_action_is_not_replayed(log: bytes) -> None:
    parsed = parse_event_log(log)
    actions = [e.data for e in parsed.events if e.type_name == "EV_EFI_ACTION"]
    assert b"Calling EFI Application from Boot Option" in actions
    without = parse_event_log(log)
    without.events = [e for e in without.events if e.type != EV_NO_ACTION]
    assert without.replay("sha256") == parsed.replay("sha256")
