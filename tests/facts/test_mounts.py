"""Mount facts from systemd's own mount units: kernel pseudo file systems are never persistent storage."""

from __future__ import annotations

import functools
from pathlib import Path

from cvmlint.facts.mounts import unit_mount
from cvmlint.facts.provenance import Provenance
from tests.tools import TRIXIE, tool_root


def _where(name: str, line: int) -> Provenance:
    return Provenance(file=name, line=line)


def test_systemds_own_mount_units_are_not_persistent_storage() -> None:
    units = Path(tool_root(TRIXIE)) / "usr/lib/systemd/system"
    mounts = {}
    for unit in sorted(units.glob("*.mount")):
        mount = unit_mount(unit.read_text(), set(), functools.partial(_where, unit.name))
        if mount is not None:
            mounts[unit.name] = (mount.fstype, mount.persistent)
    assert mounts["sys-fs-fuse-connections.mount"] == ("fusectl", False)
    assert mounts["proc-sys-fs-binfmt_misc.mount"] == ("binfmt_misc", False)
    assert mounts["sys-kernel-config.mount"] == ("configfs", False)
    assert mounts["tmp.mount"] == ("tmpfs", False)
    # the one unit that mounts real storage (a file system image) stays persistent
    assert {name for name, (_, persistent) in mounts.items() if persistent} == {"var-lib-machines.mount"}
