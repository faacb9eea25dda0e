"""What Debian's signed GRUB 2.06 measures while it finds its configuration and boots the default entry.

    PCR 8  each command the script engine runs (EV_IPL "grub_cmd: CMD", digest over CMD): the words
           after expansion and quote removal, joined by single spaces; a menuentry as
           "menuentry TITLE {" + its block's raw text + "}" when defined, "setparams TITLE" when booted;
           the kernel command line ("kernel_cmdline: …", digest over the linux command's words
           without "linux", BOOT_IMAGE= not included)
    PCR 9  each file opened (EV_IPL, the name as given), digest over its whole content:
           the grub.cfg `source` reads, the kernel, each initrd
    The signed image's own configuration (its memdisk, not measured) runs:
        [ -z $prefix -o ! -e $prefix ]  with prefix=(ESP)/EFI/debian
        [ -e $prefix/x86_64-efi/grub.cfg ], else [ -e $prefix/grub.cfg ] -> source that file

The configuration itself is run by the one GRUB interpreter (cvmlint.scan.grub, `boot_trace`), which
follows what has been checked against real boots and stops with the file and line elsewhere.
Facts from GRUB 2.06 (script/execute.c grub_script_execute_cmdline, commands/tpm.c, kern/verifiers.c,
lib/cmdline.c, commands/menuentry.c) and Debian's build-efi-images; checked against real boots' PCRs
(tests/measure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cvmlint.scan.grub import GrubFile, NotFollowed, boot_trace

KNOWN = ("2.06",)
"""GRUB versions (Debian's signed build) whose measurements are predicted."""
PREDEFINED = {"grub_platform": "efi", "grub_cpu": "x86_64"}
"""Variables GRUB sets itself, with their values on x86-64 UEFI."""
NotPredicted = NotFollowed


@dataclass(frozen=True)
class Measured:
    """One GRUB extend: its PCR, the logged description, and the bytes the digest covers."""

    pcr: int
    description: str
    payload: bytes


Reader = Callable[[str], bytes | None]
"""A file of the ESP by absolute path (None: absent)."""
Exists = Callable[[str], bool]


def measurements(device: str, read: Reader, exists: Exists, entry: str | None = None) -> list[Measured]:
    """The measurements of Debian's signed GRUB 2.06 booted from the ESP `device` (`hd0,gptN`), booting
    its default entry or the one titled `entry` (chosen from the menu)."""
    prefix = f"({device})/EFI/debian"
    out: list[Measured] = []
    _command(out, f"[ -z {prefix} -o ! -e {prefix} ]")
    if not exists("/EFI/debian"):
        raise NotPredicted("the ESP has no /EFI/debian: GRUB would search other disks for its configuration")
    for candidate in ("/EFI/debian/x86_64-efi/grub.cfg", "/EFI/debian/grub.cfg"):
        _command(out, f"[ -e ({device}){candidate} ]")
        if exists(candidate):
            _command(out, f"source ({device}){candidate}")
            trace = boot_trace(
                _esp_loader(device, read, exists),
                _esp_reader(device, read),
                device,
                candidate,
                {**PREDEFINED, "root": device, "prefix": prefix},
                entry,
            )
            for step in trace:
                if step.kind == "command":
                    _command(out, step.text)
                elif step.kind == "file":
                    out.append(Measured(9, step.text, step.data))
                else:
                    out.append(Measured(8, f"kernel_cmdline: {step.text}", step.text.encode()))
            return out
    raise NotPredicted("no grub.cfg under /EFI/debian: GRUB would source $cmdpath/grub.cfg (its case is not known)")


def _esp_reader(esp: str, read: Reader) -> Callable[[str, str], bytes | None]:
    def file(device: str, path: str) -> bytes | None:
        if device != esp:
            raise NotPredicted(f"({device}){path}: a file on another device than the ESP is not followed")
        return read(path)

    return file


def _esp_loader(esp: str, read: Reader, exists: Exists) -> Callable[[str, str], GrubFile | None]:
    def load(device: str, path: str) -> GrubFile | None:
        if device != esp:
            raise NotPredicted(f"({device}){path}: a file on another device than the ESP is not followed")
        data = read(path)
        if data is None and exists(path):
            raise NotPredicted(f"{path} is not a file GRUB can read (a directory?)")
        if data is None:
            return None
        return GrubFile(device, path, data.decode("utf-8", "replace").replace("\r", ""), data)

    return load


def _command(out: list[Measured], text: str) -> None:
    out.append(Measured(8, f"grub_cmd: {text}", text.encode()))
