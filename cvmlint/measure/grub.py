"""What Debian's signed GRUB (2.06, 2.12) measures while it finds its configuration and boots the default entry.

    PCR 8  each command the script engine runs (EV_IPL "grub_cmd: CMD", digest over CMD): the words
           after expansion and quote removal, joined by single spaces; a menuentry as
           "menuentry TITLE {" + its block's raw text + "}" when defined, "setparams TITLE" when booted;
           the kernel command line ("kernel_cmdline: …", digest over the linux command's words
           without "linux", BOOT_IMAGE= not included)
    PCR 9  each file opened (EV_IPL, the name as given), digest over its whole content:
           the grub.cfg `source` reads, the kernel, each initrd
    The signed image's own configuration (its memdisk) runs:
        [ -z $prefix -o ! -e $prefix ]  with prefix=(ESP)/EFI/debian
        [ -e $prefix/x86_64-efi/grub.cfg ], else [ -e $prefix/grub.cfg ] -> source that file
    2.06 measures those commands and the sourced file once. 2.12 (Debian 13) has no such prologue:
    `normal` tries $fw_path/grub.cfg (beside grubx64.efi), then $prefix/grub.cfg, opening the file once
    to test it and once to run it, so it is measured twice (seen on real boots; predicted only when
    neither $fw_path/grub.cfg nor x86_64-efi/grub.cfg exists). 2.12 starts the kernel through its EFI stub
    (Canonical's peimage patch), which then measures its LoadOptions ("BOOT_IMAGE=" + the command
    line, UTF-16 without NUL) and the initrd GRUB hands it (the files, each but the last padded to
    4 bytes) into PCR 9: `Handoff` carries what it needs.

The configuration itself is run by the one GRUB interpreter (cvmlint.scan.grub, `boot_trace`), which
follows what has been checked against real boots and stops with the file and line elsewhere.
Facts from GRUB 2.06 (script/execute.c grub_script_execute_cmdline, commands/tpm.c, kern/verifiers.c,
lib/cmdline.c, commands/menuentry.c) and Debian's build-efi-images; checked against real boots' PCRs
(tests/measure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cvmlint.scan.grub import Executed, GrubFile, NotFollowed, boot_trace

KNOWN = ("2.06", "2.12")
"""GRUB versions (Debian's signed build) whose measurements are predicted."""
INITRD_ALIGN = 4
"""GRUB places each initrd after the previous one padded to this many bytes (loader/linux.c)."""
PREDEFINED = {"grub_platform": "efi", "grub_cpu": "x86_64"}
"""Variables GRUB sets itself, with their values on x86-64 UEFI."""
NotPredicted = NotFollowed


@dataclass(frozen=True)
class Measured:
    """One GRUB extend: its PCR, the logged description, and the bytes the digest covers."""

    pcr: int
    description: str
    payload: bytes


@dataclass(frozen=True)
class Handoff:
    """What GRUB hands the kernel: its file, the command line after BOOT_IMAGE=, the initrd as loaded."""

    kernel: bytes
    cmdline: str
    initrd: bytes | None


Reader = Callable[[str], bytes | None]
"""A file of the ESP by absolute path (None: absent)."""
Exists = Callable[[str], bool]


def measurements(
    device: str,
    read: Reader,
    exists: Exists,
    entry: str | None = None,
    version: str = "2.06",
    loader_dir: str = "/EFI/BOOT",
) -> tuple[list[Measured], Handoff]:
    """The measurements of Debian's signed GRUB `version` (at `loader_dir` on the ESP `device`, `hd0,gptN`)
    booting its default entry or the one titled `entry` (chosen from the menu), and what it hands the kernel."""
    if version == "2.12" and exists(f"{loader_dir}/grub.cfg"):
        raise NotPredicted(f"GRUB 2.12 reads {loader_dir}/grub.cfg ($fw_path) first: not seen booting yet")
    prefix = f"({device})/EFI/debian"
    out: list[Measured] = []
    prologue: list[Measured] = []
    _command(prologue, f"[ -z {prefix} -o ! -e {prefix} ]")
    if not exists("/EFI/debian"):
        raise NotPredicted("the ESP has no /EFI/debian: GRUB would search other disks for its configuration")
    for candidate in ("/EFI/debian/x86_64-efi/grub.cfg", "/EFI/debian/grub.cfg"):
        _command(prologue, f"[ -e ({device}){candidate} ]")
        if exists(candidate):
            if version == "2.12" and candidate != "/EFI/debian/grub.cfg":
                raise NotPredicted(f"GRUB 2.12 sourcing {candidate}: only /EFI/debian/grub.cfg has been seen booting")
            _command(prologue, f"source ({device}){candidate}")
            out += prologue if version == "2.06" else []
            trace = boot_trace(
                _esp_loader(device, read, exists),
                _esp_reader(device, read),
                device,
                candidate,
                {**PREDEFINED, "root": device, "prefix": prefix},
                entry,
            )
            if version == "2.12":  # the sourced file, measured a second time
                trace.insert(1, trace[0])
            for step in trace:
                if step.kind == "command":
                    _command(out, step.text)
                elif step.kind == "file":
                    out.append(Measured(9, step.text, step.data))
                else:
                    out.append(Measured(8, f"kernel_cmdline: {step.text}", step.text.encode()))
            return out, _handoff(trace)
    raise NotPredicted("no grub.cfg under /EFI/debian: GRUB would source $cmdpath/grub.cfg (its case is not known)")


def _handoff(trace: list[Executed]) -> Handoff:
    """The kernel (the file after `linux`), its command line, and the initrd files after `initrd`."""
    kernel, cmdline, initrds = b"", "", list[bytes]()
    command = ""
    for step in trace:
        if step.kind == "command":
            command = step.text.split(" ", 1)[0]
        elif step.kind == "cmdline":
            cmdline = step.text
        elif step.kind == "file" and command == "linux":
            kernel = step.data
        elif step.kind == "file" and command == "initrd":
            if step.text.startswith("newc:"):
                raise NotPredicted(f"initrd {step.text}: GRUB's newc: archives are not predicted")
            initrds.append(step.data)
    padded = [data + bytes(-len(data) % INITRD_ALIGN) for data in initrds[:-1]]
    return Handoff(kernel, cmdline, b"".join(padded + initrds[-1:]) if initrds else None)


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
