"""The proof for images that print nothing: boot until boot services are exited and compare the prediction
with what the TPM was asked to extend (tests/tpm_commands.py, through measure_images)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def booted_as_predicted(image: Path) -> Any:
    """Boot `image` until boot services are exited (QEMU + OVMF + swtpm) and check every predicted event
    of every predicted PCR against what the TPM was asked to extend, in order, in both banks, and the
    RTMRs by TDVF's mapping; returns the prediction."""
    import hashlib

    from cvmlint.image.container import open_image
    from cvmlint.measure.predict import BANKS, PREDICTED, Event, predict, rtmrs
    from cvmlint.scan.disk import open_disk
    from tests import measure_images

    with open_image(image) as (src, _kind):
        prediction = predict(open_disk(src))
    seen = measure_images.boot_to_exit_boot_services(image)
    for pcr in PREDICTED:
        extended = [{b: e.digests[b] for b in BANKS} for e in seen.extends if e.pcr == pcr]
        assert [e.digests for e in prediction.events if e.pcr == pcr] == extended, f"PCR {pcr}"
    separator = hashlib.sha256(bytes(4)).digest()  # the extends carry no event type: TDVF keeps one separator
    as_events = [
        Event(
            e.pcr, "EV_SEPARATOR" if e.digests["sha256"] == separator else "", "", "", {b: e.digests[b] for b in BANKS}
        )
        for e in seen.extends
    ]
    assert rtmrs([e for e in prediction.events if e.pcr in PREDICTED]) == rtmrs(as_events)
    values = [*prediction.rtmrs().values(), *(v for b in BANKS for v in prediction.pcrs(b).values())]
    assert all(isinstance(v, bytes) for v in values)
    return prediction
