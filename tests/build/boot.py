"""QEMU's command line for the measured-boot tests (software emulation, q35, OVMF); `cvmlint boot`
(cvmlint/bootcheck.py) is what boots a built image and reads its console."""

from __future__ import annotations

from pathlib import Path

from cvmlint.bootcheck import OVMF_CODE, OVMF_VARS

__all__ = ["OVMF_VARS", "qemu_argv"]


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
