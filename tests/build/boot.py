"""Booting a built image under QEMU (software emulation, OVMF) and reading its serial console."""

from __future__ import annotations

import os
import re
import selectors
import shutil
import subprocess
import time
from pathlib import Path

from tests.tools import require

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
ANSI = re.compile(r"\x1b(\[[0-9;:?]*[A-Za-z]|c)")
"""Terminal control sequences systemd and the firmware write to the console."""


def qemu_argv(image: Path, vars_copy: Path, memory: str, cpus: int = 2, first_boot_option: bool = False) -> list[str]:
    """QEMU (TCG, q35, OVMF) booting `image` as a snapshot; with `first_boot_option` the disk is the firmware's
    first boot option (no other option is tried first, which would add events to PCR 4)."""
    disk = (
        [
            "-drive",
            f"file={image},format=raw,if=none,id=disk0,snapshot=on",
            "-device",
            "virtio-blk-pci,drive=disk0,bootindex=0",
        ]
        if first_boot_option
        else ["-drive", f"file={image},format=raw,if=virtio,snapshot=on"]
    )
    return [
        "qemu-system-x86_64",
        *("-machine", "q35,accel=tcg", "-cpu", "max", "-smp", str(cpus), "-m", memory),
        *("-nographic", "-no-reboot", "-nic", "none"),
        *("-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}"),
        *("-drive", f"if=pflash,format=raw,file={vars_copy}"),
        *disk,
    ]


def boot(image: Path, log: Path, until: list[str], timeout: float = 900, memory: str = "1536") -> str:
    """Boot `image` (a snapshot: the file is never written) until every regex of `until` has matched a
    line of the serial console, or `timeout` seconds; the console is kept in `log`; returns it."""
    require("qemu-system-x86_64")
    vars_copy = log.with_suffix(".ovmf-vars.fd")
    shutil.copyfile(OVMF_VARS, vars_copy)
    argv = qemu_argv(image, vars_copy, memory)
    wanted = [re.compile(p) for p in until]
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    with (
        open(log, "w", encoding="utf-8", errors="replace") as out,
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL) as proc,
    ):
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        selector = selectors.DefaultSelector()
        selector.register(fd, selectors.EVENT_READ)
        buffer = b""
        while wanted and time.monotonic() < deadline and proc.poll() is None:
            if not selector.select(timeout=1):
                continue
            buffer += os.read(fd, 1 << 16)
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                line = ANSI.sub("", raw.decode("utf-8", "replace")).rstrip("\r")
                out.write(line + "\n")
                lines.append(line)
                wanted = [w for w in wanted if not w.search(line)]
        proc.kill()
    vars_copy.unlink(missing_ok=True)
    return "\n".join(lines)
