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

import io
import struct
from dataclasses import dataclass
from typing import Protocol

from cvmlint.errors import CvmlintError
from cvmlint.image.source import Buffer
from cvmlint.scan.grub import Executed, GrubFile, NotFollowed
from cvmlint.scan.grub_boot import Firmware, boot_trace
from cvmlint.scan.pe import PeImage, section

KNOWN = ("2.06", "2.12")
"""GRUB versions (Debian's signed build) whose measurements are predicted."""
INITRD_ALIGN = 4
"""GRUB places each initrd after the previous one padded to this many bytes (loader/linux.c)."""
PREDEFINED = {"grub_platform": "efi", "grub_cpu": "x86_64"}
"""Variables GRUB sets itself, with their values on x86-64 UEFI."""
MODULE_INFO = struct.Struct("<IIQQ")
MODULE_MAGIC = 0x676D696D  # "mimg"
MODULE_ELF, MODULE_MEMDISK, MODULE_PREFIX = 0, 1, 3
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


class Volumes(Protocol):
    """The disk's partitions as GRUB names them (`hd0,gptN`)."""

    esp: str

    def read(self, device: str, path: str) -> bytes | None:
        """A regular file's bytes; None when it does not exist."""

    def exists(self, device: str, path: str) -> bool:
        """A file or a directory."""

    def find(self, kind: str, value: str) -> str:
        """The one partition a search (fs-uuid, label, file) finds; NotFollowed when none or several."""


def measurements(
    volumes: Volumes,
    firmware: Firmware,
    entry: str | None = None,
    version: str = "2.06",
    loader_dir: str = "/EFI/BOOT",
    prefix: str = "/EFI/debian",
) -> tuple[list[Measured], Handoff]:
    """The measurements of Debian's signed GRUB `version` (at `loader_dir` on the ESP; `prefix`: the
    directory built into its image) booting its default entry or the one titled `entry`, and what it
    hands the kernel."""
    device = volumes.esp
    if version == "2.12" and volumes.exists(device, f"{loader_dir}/grub.cfg"):
        raise NotPredicted(f"GRUB 2.12 reads {loader_dir}/grub.cfg ($fw_path) first: not seen booting yet")
    if version == "2.12" and volumes.exists(device, f"{prefix}/x86_64-efi"):
        raise NotPredicted(f"GRUB 2.12 would read the lists in {prefix}/x86_64-efi on the ESP: not seen booting yet")
    full = f"({device}){prefix}"
    out: list[Measured] = []
    prologue: list[Measured] = []
    _command(prologue, f"[ -z {full} -o ! -e {full} ]")
    if not volumes.exists(device, prefix):
        raise NotPredicted(f"the ESP has no {prefix}: GRUB would search other disks for its configuration")
    candidates = (
        (f"{prefix}/x86_64-efi/grub.cfg", f"{prefix}/grub.cfg") if version == "2.06" else (f"{prefix}/grub.cfg",)
    )
    for candidate in candidates:
        _command(prologue, f"[ -e ({device}){candidate} ]")
        if volumes.exists(device, candidate):
            _command(prologue, f"source ({device}){candidate}")
            out += prologue if version == "2.06" else []
            trace = boot_trace(
                lambda dev, path: _config(volumes, dev, path),
                volumes.read,
                volumes.find,
                firmware,
                device,
                candidate,
                {**PREDEFINED, "root": device, "prefix": full},
                entry,
            )
            if version == "2.12":  # opened once to test it, once to run it
                trace.insert(1, trace[0])
            for step in trace:
                if step.kind == "command":
                    _command(out, step.text)
                elif step.kind == "file":
                    out.append(Measured(9, step.text, step.data))
                else:
                    out.append(Measured(8, f"kernel_cmdline: {step.text}", step.text.encode()))
            return out, _handoff(trace)
    raise NotPredicted(f"no grub.cfg under {prefix}: GRUB would look elsewhere (its case is not known)")


def _config(volumes: Volumes, device: str, path: str) -> GrubFile | None:
    data = volumes.read(device, path)
    if data is None and volumes.exists(device, path):
        raise NotPredicted(f"({device}){path} is not a file GRUB can read (a directory?)")
    if data is None:
        return None
    return GrubFile(device, path, data.decode("utf-8", "replace").replace("\r", ""), data)


def image_firmware(data: Buffer, pe: PeImage, name: str) -> tuple[Firmware, str]:
    """What a GRUB core image carries (its `mods` section): the modules built in, the files of its
    memdisk, and its prefix. Every header is checked against the section's size."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    mods = section(data, pe, "mods")
    if len(mods) < MODULE_INFO.size:
        raise NotPredicted(f"{name}: no module section: not a GRUB core image cvmlint can read")
    magic, _pad, offset, size = MODULE_INFO.unpack_from(mods)
    if magic != MODULE_MAGIC or size > len(mods) or offset < MODULE_INFO.size:
        raise NotPredicted(f"{name}: its module section's header is not GRUB's (magic {magic:#x}, size {size})")
    modules: set[str] = set()
    memdisk: set[str] = set()
    prefix = ""
    at = offset
    while at + 8 <= size:
        kind, length = struct.unpack_from("<II", mods, at)
        if length < 8 or at + length > size:
            raise NotPredicted(f"{name}: module header at byte {at} of its mods section claims {length} bytes")
        body = mods[at + 8 : at + length]
        try:
            if kind == MODULE_ELF:
                found = ELFFile(io.BytesIO(body)).get_section_by_name(".modname")
                if found is None:
                    raise NotPredicted(f"{name}: a module at byte {at} has no name")
                modules.add(found.data().rstrip(b"\0").decode("ascii", "replace"))
            elif kind == MODULE_MEMDISK:
                memdisk |= _memdisk_fonts(body)
            elif kind == MODULE_PREFIX:
                prefix = body.split(b"\0", 1)[0].decode("utf-8", "replace")
        except (ELFError, CvmlintError, struct.error, ValueError) as err:
            raise NotPredicted(f"{name}: module at byte {at} of its mods section cannot be read: {err}") from None
        at += length
    return Firmware(frozenset(modules), frozenset(memdisk)), prefix


def _memdisk_fonts(body: bytes) -> set[str]:
    """Which of the fonts GRUB loads by name its memdisk holds (a squashfs in 2.12, a FAT image in 2.06)."""
    from cvmlint.image.fat import FatFileSystem
    from cvmlint.image.fsid import Content, format_of, identify
    from cvmlint.image.source import BytesSource

    src = BytesSource(body)
    content = identify(src)
    font = "/fonts/unicode.pf2"
    if content is Content.VFAT:
        return {font[1:]} if FatFileSystem(src).lookup(font) is not None else set()
    tree = format_of(content).open_tree(src) if content is Content.SQUASHFS else None
    if tree is None:
        raise NotPredicted(f"GRUB's memdisk is {content}: not read")
    return {font[1:]} if tree.lookup(font) is not None else set()


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


def _command(out: list[Measured], text: str) -> None:
    out.append(Measured(8, f"grub_cmd: {text}", text.encode()))
