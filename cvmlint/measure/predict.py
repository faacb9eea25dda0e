"""What booting an image extends into the TPM's PCRs, event by event, computed from the image alone.

The chain is the one `cvmlint scan` reads from the ESP (shim → systemd-boot → UKI, shim → UKI, or
shim → GRUB → kernel). Each component's measurements are those observed for the versions named in
KNOWN_* below on a real boot (QEMU + OVMF + swtpm, tests/measure); a component cvmlint does not know
how to predict makes the registers it extends unknown, with the reason, never a guessed value.

    firmware (OVMF)  PCR 4 "Calling EFI Application from Boot Option", separators PCR 2–6,
                     PCR 5 the GPT (UEFI_GPT_DATA), PCR 4 each EFI application it loads (Authenticode),
                     PCR 5 "Exit Boot Services Invocation" / "… Returned with Success"
    shim             loads the second stage: PCR 4 (Authenticode); its MOK variables go to PCR 14 and
                     its SBAT and Secure Boot events to PCR 7 (not predicted)
    systemd-boot     PCR 12 the options it passes to a UKI (UTF-16, NUL-terminated)
    systemd-stub     PCR 11 per measured section: its name (ASCII with NUL), then its contents;
                     PCR 12 the command line when it takes the options it was given (Secure Boot off)
    Linux EFI stub   PCR 9 tagged events: LOADED_IMAGE::LoadOptions and the initrd it loads
"""

from __future__ import annotations

import hashlib
import re
import struct
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cvmlint import limits
from cvmlint.errors import CvmlintError
from cvmlint.facts.provenance import Items, Provenance, Unknown
from cvmlint.image.source import Buffer
from cvmlint.measure.authenticode import authenticode
from cvmlint.scan import boot as bootscan
from cvmlint.scan.disk import Disk
from cvmlint.scan.pe import PeImage, parse_pe, section, section_in_memory

if TYPE_CHECKING:
    from cvmlint.facts.model import Measurements
    from cvmlint.image.tree import Tree

BANKS = ("sha256", "sha384")
PREDICTED = (4, 5, 8, 9, 11, 12, 14)
"""The PCRs a prediction states (the others depend on the firmware and its settings)."""
SEPARATOR = b"\0\0\0\0"
CALLING = b"Calling EFI Application from Boot Option"
EBS = (b"Exit Boot Services Invocation", b"Exit Boot Services Returned with Success")
STUB_SECTIONS = {252: (".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb")}
"""systemd-stub version -> the sections it measures into PCR 11, in its order (systemd 252 stub.c)."""
CC_FROM = {"shim": (15, 7), "systemd-boot": (256,), "systemd-stub": (256,), "linux": (6, 9), "grub": (2, 14)}
"""The first version of each component that measures through TDX's CC protocol (shim 4fd484e4,
systemd 7ff0e0a5/dbbd8783, Linux ac93cbfc, GRUB 86df7927); older ones extend no RTMR."""
GRUB_CC_WITH_TPM = (2, 12)
"""GRUB 2.12 measures through the CC protocol too, but registers its measurements only when a TPM is
present (upstream 30708dfe; 2.14's 86df7927 measures without one)."""
LINUX_STUB_MEASURES_FROM = (6, 1)
"""The Linux EFI stub measures its LoadOptions and initrd into PCR 9 from this version on (seen on 6.1)."""
TAG_LOAD_OPTIONS, TAG_INITRD = 0x8F3B22ED, 0x8F3B22EC


@dataclass(frozen=True)
class Event:
    """One predicted extend."""

    pcr: int
    type: str
    what: str
    """What the digest covers, in words."""
    by: str
    """Who extends it: firmware, shim, systemd-boot, systemd-stub, linux, grub."""
    digests: dict[str, bytes] | Unknown
    data: bytes | None = None
    """The event data as it will be logged, when it follows from the image (None: addresses, etc.)."""
    where: Provenance | None = None
    tpm_only: bool = False
    """Logged to the TPM alone, even by a component that measures through the CC protocol (systemd's
    tagged events)."""


@dataclass
class Prediction:
    """The events of one boot entry and the registers they make."""

    entry: str
    chain: list[str]
    events: list[Event] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    on_tdx: set[str] = field(default_factory=lambda: {"firmware"})
    """The components that also measure through TDX's CC protocol (TDVF has no TPM): only their events
    reach the RTMRs."""
    td_vtpm: bool = False
    """The TD has a vTPM too (as on GCP): GRUB 2.12 measures only then, the Linux stub only without."""

    def pcrs(self, bank: str) -> dict[int, bytes | Unknown]:
        """PREDICTED PCRs of `bank`, replayed from zero; unknown where an event's digest is."""
        return {pcr: replay([e for e in self.events if e.pcr == pcr], bank) for pcr in PREDICTED}

    def rtmrs(self) -> dict[int, bytes | Unknown]:
        """TDX RTMR[1] and RTMR[2]: the events of the components in `on_tdx`, mapped by `rtmrs`."""
        return rtmrs([e for e in self.events if e.by in self.on_tdx and not e.tpm_only])


RTMR_OF_PCR = {**dict.fromkeys(range(2, 7), 1), **dict.fromkeys(range(8, 16), 2)}
"""TDVF's mapping (edk2 TdxMeasurementMapPcrToMrIndex): PCR 2–6 -> RTMR[1], PCR 8–15 -> RTMR[2];
PCR 1 and 7 -> RTMR[0] and PCR 0 -> MRTD are the firmware's, not predicted."""


def rtmrs(events: list[Event]) -> dict[int, bytes | Unknown]:
    """RTMR[1] and RTMR[2] from TPM-style events, as TDVF extends them: the same SHA-384 digests in the
    same order, except that TDVF extends one separator into RTMR[1] where OVMF extends one per PCR 2–6
    (edk2 TdTcg2Dxe OnReadyToBoot)."""
    out: dict[int, bytes | Unknown] = {}
    for rtmr in (1, 2):
        chosen: list[Event] = []
        separated = False
        for event in events:
            if RTMR_OF_PCR.get(event.pcr) != rtmr:
                continue
            if event.type == "EV_SEPARATOR":
                if separated:
                    continue
                separated = True
            chosen.append(event)
        out[rtmr] = replay(chosen, "sha384")
    return out


def replay(events: list[Event], bank: str) -> bytes | Unknown:
    """A register after extending `events` from zero; unknown at the first event with an unknown digest."""
    value = bytes(hashlib.new(bank).digest_size)
    for event in events:
        if isinstance(event.digests, Unknown):
            return event.digests
        value = hashlib.new(bank, value + event.digests[bank]).digest()
    return value


def digests(payload: bytes | memoryview) -> dict[str, bytes]:
    """The digest of `payload` in every bank."""
    return {bank: hashlib.new(bank, payload).digest() for bank in BANKS}


def _authenticode(data: Buffer, name: str) -> dict[str, bytes]:
    return {bank: authenticode(data, bank, name) for bank in BANKS}


def _utf16z(text: str) -> bytes:
    return (text + "\0").encode("utf-16-le")


def predict(disk: Disk, secure_boot: bool = False, entry: str | None = None, td_vtpm: bool = False) -> Prediction:
    """The measurements of booting the image's default entry, or the entry titled `entry` (`secure_boot`:
    the firmware's setting, which decides whether systemd-stub accepts and measures the options it is given;
    `td_vtpm`: on TDX, the TD also has a vTPM, which decides which components reach the RTMRs)."""
    boot = bootscan.scan_boot(disk, None, None, entry)
    if isinstance(boot.boot, Unknown) or boot.esp is None:
        reason = boot.boot.reason if isinstance(boot.boot, Unknown) else "no readable ESP"
        return _nothing_known("", [], f"the boot chain cannot be read: {reason}")
    esp_part = boot.esp.part
    esp = _EspFiles(boot.esp)
    kernel = boot.kernel
    entries = [] if isinstance(boot.boot.entries, Unknown) else list(boot.boot.entries)
    title = entry if entry is not None else next((e.title for e in entries if e.default), "")
    prediction = Prediction(title, [], td_vtpm=td_vtpm)
    prediction.assumptions.append(
        "firmware: OVMF/TDVF booting the disk's removable-media path as its first boot option"
        f"; Secure Boot {'on' if secure_boot else 'off'}"
        f"; on TDX, a TD {'with' if td_vtpm else 'without'} a vTPM"
    )
    events = prediction.events
    events.append(Event(4, "EV_EFI_ACTION", CALLING.decode(), "firmware", digests(CALLING), CALLING))
    for pcr in range(2, 7):
        events.append(Event(pcr, "EV_SEPARATOR", "separator", "firmware", digests(SEPARATOR), SEPARATOR))
    events.append(_gpt_event(disk))
    loader = boot.boot.loader if isinstance(boot.boot.loader, str) else "none"
    first = bootscan.FALLBACK
    chain = [first]
    events.append(_application(esp, first, "firmware"))
    if boot.boot.shim is True:
        events.extend(_shim_mok(esp, first, prediction))
        second = bootscan.second_stage(first)
        chain.append(second)
        events.append(_application(esp, second, "shim"))
    if isinstance(kernel, Unknown):
        return _nothing_known(title, chain, f"the default entry's kernel is not known: {kernel.reason}")
    if boot.boot.shim is not True and (loader, kernel.section) == ("systemd-boot", None):
        chain.append(kernel.path)
        problem = "with Secure Boot on: not checked yet" if secure_boot else _type1(prediction, esp, kernel, first)
        if problem:
            return _nothing_known(title, chain, f"systemd-boot booting {kernel.path} {problem}")
    elif boot.boot.shim is not True and (loader, kernel.section) == ("systemd-boot", ".linux"):
        chain.append(kernel.path)
        problem = _uki(prediction, esp, kernel, loader, first, secure_boot)
        if _stub_version_of(esp, kernel.path) != 257:
            problem = problem or "(systemd-boot without shim has been checked with systemd 257 only)"
        if problem:
            return _nothing_known(title, chain, f"systemd-boot starting {kernel.path} {problem}")
    elif boot.boot.shim is not True or (loader, kernel.section) not in VERIFIED_CHAINS:
        chain.append(kernel.path)
        shape = f"{'shim -> ' if boot.boot.shim is True else ''}{loader} -> {kernel.section or 'kernel'}"
        return _nothing_known(title, chain, f"the chain {shape} has not been checked against a real boot")
    elif kernel.section == ".linux":
        if kernel.path.lower() != chain[-1].lower():  # shim's second stage may be the UKI itself
            chain.append(kernel.path)
        problem = _uki(prediction, esp, kernel, loader, chain[1], secure_boot)
        if problem:
            return _nothing_known(title, chain, f"{loader} starting {kernel.path} {problem}")
    elif secure_boot:
        chain.append(kernel.path)
        return _nothing_known(title, chain, "with Secure Boot on GRUB hands the kernel to shim: not checked yet")
    else:
        chain.append(kernel.path)
        events.extend(_grub(disk, esp, chain[-2], esp_part.entry.number, entry, prediction))
    for text in EBS:
        events.append(Event(5, "EV_EFI_ACTION", text.decode(), "firmware", digests(text), text))
    prediction.chain = chain
    return prediction


VERIFIED_CHAINS = {("systemd-boot", ".linux"), ("uki", ".linux"), ("grub", None)}
"""(second stage, kernel section) after shim, checked against a real boot (tests/measure); without shim,
systemd-boot booting a Boot Loader Specification entry (mkosi's default, tests/build)."""
KNOWN_SD_BOOT_TYPE1 = (257,)
"""systemd-boot versions whose measurements of a Type #1 entry are known (seen booting mkosi's default)."""
LOADER_CONF_TAG = 0xF5BC582A
"""systemd-boot (>= 255) measures loader.conf into PCR 5 as a tagged event (TPM only)."""


def _nothing_known(title: str, chain: list[str], reason: str) -> Prediction:
    """A prediction whose every register is unknown for `reason`."""
    prediction = Prediction(title, chain)
    why = Unknown(reason)
    prediction.events += [Event(pcr, "EV_IPL", "every event", "boot chain", why) for pcr in PREDICTED]
    prediction.on_tdx.add("boot chain")
    return prediction


class _EspFiles:
    """The ESP the scan read, each file read once per prediction (shim and GRUB are read by several steps)."""

    def __init__(self, esp: bootscan.EspFiles) -> None:
        self.esp = esp
        self._read: dict[str, bytes | None] = {}

    def read(self, path: str) -> bytes | None:
        """A file's bytes, None when it is absent or a directory."""
        if path not in self._read:
            data = self.esp.read(path)
            self._read[path] = None if data is None else bytes(data)
        return self._read[path]

    def exists(self, path: str) -> bool:
        return self.esp.exists(path)


def _gpt_event(disk: Disk) -> Event:
    """UEFI_GPT_DATA: the primary header (92 bytes), the number of used entries (u64), the used entries."""
    what = "the GPT: header and used partition entries (UEFI_GPT_DATA)"
    table = disk.table
    if table.kind != "gpt" or table.problems:
        reason = "; ".join(table.problems) or "the disk has no GPT"
        return Event(5, "EV_EFI_GPT_EVENT", what, "firmware", Unknown(f"which GPT the firmware reads: {reason}"))
    sector = table.sector_size
    header = disk.source.pread(sector, 92)
    entry_lba, count, size = struct.unpack_from("<QII", header, 72)
    array = disk.source.pread(entry_lba * sector, count * size) if count * size <= 1 << 20 else b""
    if len(header) != 92 or len(array) != count * size or size < 128:
        return Event(5, "EV_EFI_GPT_EVENT", what, "firmware", Unknown("the GPT entry array cannot be read whole"))
    used = [array[i : i + size] for i in range(0, len(array), size) if array[i : i + 16] != bytes(16)]
    data = header + struct.pack("<Q", len(used)) + b"".join(used)
    return Event(
        5, "EV_EFI_GPT_EVENT", what, "firmware", digests(data), data, Provenance(partition="gpt", offset=sector)
    )


def _application(esp: _EspFiles, path: str, by: str) -> Event:
    what = f"Authenticode digest of {path}"
    where = Provenance(partition="esp", file=path)
    try:
        data = esp.read(path)
        if data is None:
            return Event(
                4, "EV_EFI_BOOT_SERVICES_APPLICATION", what, by, Unknown(f"{path} is not on the ESP"), None, where
            )
        return Event(4, "EV_EFI_BOOT_SERVICES_APPLICATION", what, by, _authenticode(data, path), None, where)
    except CvmlintError as err:
        return Event(4, "EV_EFI_BOOT_SERVICES_APPLICATION", what, by, Unknown(str(err)), None, where)


KNOWN_SHIM = ("16.1",)
"""shim versions whose PCR 14 events (its MOK lists, seen with none enrolled) are predicted."""
EFI_CERT_X509 = uuid.UUID("a5c059a1-94e4-4aa7-87b5-ab155c2bf072").bytes_le
SHIM_LOCK = uuid.UUID("605dab50-e046-4300-abb6-3dd810dd8b23").bytes_le
_SHIM_VERSION = re.compile(rb"\$Version: ([0-9]{1,6}(?:\.[0-9]{1,6}){0,3}) \$")


def _shim_mok(esp: _EspFiles, path: str, prediction: Prediction) -> list[Event]:
    """shim's PCR 14 events with no MOK enrolled: MokList = its vendor certificate as an EFI signature
    list (owner: shim's GUID), MokListX = its vendor dbx, MokListTrusted = the byte 1."""
    where = Provenance(partition="esp", file=path)
    labels = (b"MokList\0", b"MokListX\0", b"MokListTrusted\0")
    try:
        data = esp.read(path) or b""
        pe = parse_pe(data, f"esp:{path}")
        version = _SHIM_VERSION.search(section(data, pe, ".data.ident")) if ".data.ident" in pe.sections else None
        if version and tuple(int(x) for x in version.group(1).decode().split(".")[:2]) >= CC_FROM["shim"]:
            prediction.on_tdx.add("shim")
        if version is None or version.group(1).decode() not in KNOWN_SHIM or ".vendor_cert" not in pe.sections:
            shown = version.group(1).decode() if version else "(version not found)"
            raise CvmlintError(f"shim {shown}: its MOK measurements are known for {', '.join(KNOWN_SHIM)}")
        table = section(data, pe, ".vendor_cert")
        cert_size, dbx_size, cert_at, dbx_at = struct.unpack_from("<IIII", table)
        cert, dbx = table[cert_at : cert_at + cert_size], table[dbx_at : dbx_at + dbx_size]
        if len(cert) != cert_size or len(dbx) != dbx_size:
            raise CvmlintError(f"shim's .vendor_cert section is cut short ({len(table)} bytes)")
    except (CvmlintError, struct.error) as err:
        return [
            Event(14, "EV_IPL", label.decode().rstrip("\0"), "shim", Unknown(str(err)), label, where)
            for label in labels
        ]
    esl = EFI_CERT_X509 + struct.pack("<III", 28 + 16 + len(cert), 0, 16 + len(cert)) + SHIM_LOCK + cert
    contents = (esl, dbx, b"\x01")
    whats = ("MokList: shim's vendor certificate", "MokListX: shim's vendor dbx", "MokListTrusted")
    return [
        Event(14, "EV_IPL", what, "shim", digests(content), label, where)
        for what, content, label in zip(whats, contents, labels, strict=True)
    ]


def _uki(
    prediction: Prediction, esp: _EspFiles, ref: bootscan.KernelRef, loader: str, loader_path: str, secure_boot: bool
) -> str | None:
    """A UKI started by systemd-boot (or directly by shim): the loader's, the stub's and the kernel's events.
    Returns why the chain cannot be predicted (systemd 257), or None."""
    events = prediction.events
    where = Provenance(partition="esp", file=ref.path)
    try:
        data = esp.read(ref.path)
        pe = parse_pe(data, f"esp:{ref.path}") if data is not None else None
    except CvmlintError as err:
        events.append(Event(4, "EV_EFI_BOOT_SERVICES_APPLICATION", ref.path, loader, Unknown(str(err)), None, where))
        return None
    if data is None or pe is None:
        events.append(
            Event(4, "EV_EFI_BOOT_SERVICES_APPLICATION", ref.path, loader, Unknown("not on the ESP"), None, where)
        )
        return None
    if loader == "systemd-boot" and _stub_version(data, pe) == 257:
        events += _loader_conf(esp)  # read by systemd-boot before it starts the UKI
    if loader == "systemd-boot":
        events.append(
            Event(
                4,
                "EV_EFI_BOOT_SERVICES_APPLICATION",
                f"Authenticode digest of {ref.path}",
                "firmware",
                _authenticode(data, ref.path),
                None,
                where,
            )
        )
    if _stub_version(data, pe) == 257:
        return _uki_257(prediction, esp, ref, data, pe, loader, loader_path, secure_boot)
    cmdline = section(data, pe, ".cmdline").decode("utf-8", "replace") if ".cmdline" in pe.sections else ""
    options = _utf16z(cmdline)
    if loader == "systemd-boot":
        events.append(
            Event(
                12,
                "EV_IPL",
                f"options systemd-boot passes: {_shown(cmdline)}",
                "systemd-boot",
                digests(options),
                options,
                where,
            )
        )
    version = _stub_version(data, pe)
    if version and (version,) >= CC_FROM["systemd-stub"]:
        prediction.on_tdx |= {"systemd-boot", "systemd-stub"}  # assumed: systemd-boot of the same release
    sections = STUB_SECTIONS.get(version or 0)
    if sections is None:
        known = ", ".join(map(str, STUB_SECTIONS))
        reason = Unknown(
            f"systemd-stub {version or '(version not found)'}: the sections it measures are known for {known}"
        )
        events.append(Event(11, "EV_IPL", "UKI sections", "systemd-stub", reason, None, where))
    else:
        for name in sections:
            if name not in pe.sections:
                continue
            label = _utf16z(name)
            events.append(
                Event(
                    11, "EV_IPL", f"section name {name}", "systemd-stub", digests(name.encode() + b"\0"), label, where
                )
            )
            events.append(
                Event(
                    11,
                    "EV_IPL",
                    f"section {name} contents",
                    "systemd-stub",
                    digests(section(data, pe, name)),
                    label,
                    where,
                )
            )
    if not secure_boot and loader == "systemd-boot":
        events.append(
            Event(
                12,
                "EV_IPL",
                f"command line the stub takes: {_shown(cmdline)}",
                "systemd-stub",
                digests(options),
                options,
                where,
            )
        )
    linux = section(data, pe, ".linux")
    events.append(
        Event(
            4,
            "EV_EFI_BOOT_SERVICES_APPLICATION",
            f"Authenticode digest of {ref.path} section .linux",
            "firmware",
            _authenticode(linux, f"{ref.path}:.linux"),
            None,
            where,
        )
    )
    initrd = section(data, pe, ".initrd") if ".initrd" in pe.sections else None
    events += _linux_stub(prediction, linux, options, initrd, where)
    return None


def _uki_257(
    prediction: Prediction,
    esp: _EspFiles,
    ref: bootscan.KernelRef,
    data: bytes,
    pe: PeImage,
    loader: str,
    loader_path: str,
    secure_boot: bool,
) -> str | None:
    """systemd-boot and systemd-stub 257 (measure/stub.py): loader.conf (PCR 5), the sections (PCR 11),
    no options passed for a UKI with .cmdline (PCR 12 untouched), .linux loaded through the firmware
    (PCR 4), then Linux's stub with the stub's command line and initrd (PCR 9)."""
    from cvmlint.measure import stub

    where = Provenance(partition="esp", file=ref.path)
    if loader == "systemd-boot":
        boot_data = esp.read(loader_path) or b""
        version = _loader_version(boot_data, parse_pe(boot_data, f"esp:{loader_path}"), "systemd-boot")
        if version != 257:
            return f"(systemd-boot {version or '(version not found)'} starting systemd-stub 257: not checked yet)"
    if secure_boot:
        return "(systemd-stub 257 with Secure Boot on: not checked yet)"
    sidecars = [f"{ref.path}.extra.d", "/loader/credentials", "/loader/addons"]
    present = [path for path in sidecars if esp.exists(path)]
    if present or ".profile" in pe.sections:
        found = ", ".join(present) or "a UKI with profiles"
        return f"(systemd-stub 257 with {found}: not predicted yet)"
    prediction.on_tdx |= {"systemd-boot", "systemd-stub"}
    events = prediction.events
    contents = {name: section_in_memory(data, pe, name) for name in (*stub.SECTIONS, ".pcrsig") if name in pe.sections}
    for name in stub.SECTIONS:
        if name in contents:
            label = _utf16z(name)
            events.append(
                Event(
                    11, "EV_IPL", f"section name {name}", "systemd-stub", digests(name.encode() + b"\0"), label, where
                )
            )
            events.append(
                Event(11, "EV_IPL", f"section {name} contents", "systemd-stub", digests(contents[name]), label, where)
            )
    linux = contents[".linux"]
    events.append(
        Event(
            4,
            "EV_EFI_BOOT_SERVICES_APPLICATION",
            f"Authenticode digest of {ref.path} section .linux",
            "firmware",
            _authenticode(linux, f"{ref.path}:.linux"),
            None,
            where,
        )
    )
    cmdline = stub.cmdline(contents.get(".cmdline", b""))  # systemd-boot passes nothing to a UKI of its own
    events += _linux_stub(prediction, linux, _utf16z(cmdline) if cmdline else b"", stub.initrd(contents), where)
    return None


def _linux_stub(
    prediction: Prediction, kernel: bytes, options: bytes, initrd: bytes | None, where: Provenance
) -> list[Event]:
    """The Linux EFI stub's PCR 9 events: the LoadOptions it was given, then the initrd it loaded."""
    version = _kernel_version(kernel)
    if version and version >= CC_FROM["linux"] and not prediction.td_vtpm:  # CC only when TCG2 is absent
        prediction.on_tdx.add("linux")
    if version is None or version < LINUX_STUB_MEASURES_FROM:
        reason = Unknown(f"Linux {version or '(version not found)'}: its EFI stub's measurements are known from 6.1")
        return [Event(9, "EV_EVENT_TAG", "kernel's LoadOptions and initrd", "linux", reason)]
    label = b"LOADED_IMAGE::LoadOptions\0"
    out = (
        []
        if not options
        else [
            Event(
                9,
                "EV_EVENT_TAG",
                label[:-1].decode(),
                "linux",
                digests(options),
                _tagged(TAG_LOAD_OPTIONS, label),
                where,
            )
        ]
    )
    if initrd is not None:
        label = b"Linux initrd\0"
        out.append(
            Event(9, "EV_EVENT_TAG", label[:-1].decode(), "linux", digests(initrd), _tagged(TAG_INITRD, label), where)
        )
    return out


def _type1(prediction: Prediction, esp: _EspFiles, ref: bootscan.KernelRef, loader: str) -> str | None:
    """systemd-boot starting a Type #1 entry's kernel (Secure Boot off): loader.conf (PCR 5), the kernel
    loaded through the firmware (PCR 4), the options it passes (PCR 12), then the kernel's EFI stub (PCR 9).
    Returns why it cannot be predicted, or None."""
    data = esp.read(loader) or b""
    try:
        version = _loader_version(data, parse_pe(data, f"esp:{loader}"), "systemd-boot")
    except CvmlintError as err:
        return f"({loader}: {err})"
    if version not in KNOWN_SD_BOOT_TYPE1:
        known = ", ".join(map(str, KNOWN_SD_BOOT_TYPE1))
        return f"(systemd-boot {version or '(version not found)'}): its measurements are known for {known}"
    if version >= 256:
        prediction.on_tdx.add("systemd-boot")
    kernel = esp.read(ref.path)
    initrds = [esp.read(path) for path in ref.initrds]
    if kernel is None or any(i is None for i in initrds):
        return "(a file it names is not on the ESP)"
    prediction.events += _loader_conf(esp)
    where = Provenance(partition="esp", file=ref.path)
    prediction.events.append(_application(esp, ref.path, "firmware"))
    words = [f"initrd={path.replace('/', chr(92))}" for path in ref.initrds] + ([ref.options] if ref.options else [])
    options = _utf16z(" ".join(words))
    shown = _shown(" ".join(words))
    prediction.events.append(
        Event(12, "EV_IPL", f"options systemd-boot passes: {shown}", "systemd-boot", digests(options), options, where)
    )
    present = [i for i in initrds if i]  # systemd-boot skips empty initrds
    padded = [i + bytes(-len(i) % 4) for i in present[:-1]] + present[-1:]
    prediction.events += _linux_stub(prediction, kernel, options, b"".join(padded) if present else None, where)
    return None


def _loader_conf(esp: _EspFiles) -> list[Event]:
    """systemd-boot (>= 255) measures loader.conf into PCR 5 when it reads it (a tagged event, TPM only)."""
    conf = esp.read("/loader/loader.conf")
    if conf is None:
        return []
    where = Provenance(partition="esp", file="/loader/loader.conf")
    return [Event(5, "EV_EVENT_TAG", "loader.conf", "systemd-boot", digests(conf), None, where, tpm_only=True)]


def _grub(
    disk: Disk, esp: _EspFiles, path: str, partition: int, entry: str | None, prediction: Prediction
) -> list[Event]:
    """Debian's signed GRUB: the commands it runs (PCR 8) and the files it reads (PCR 9); from 2.12 also
    the kernel's EFI stub it starts (PCR 9)."""
    from cvmlint.measure import grub

    where = Provenance(partition="esp", file=path)
    try:
        data = esp.read(path) or b""
        pe = parse_pe(data, f"esp:{path}")
        vendor, version = bootscan.grub_build(data, pe)
        known = next((k for k in grub.KNOWN if version.startswith(k + "-") or version == k), None)
        if vendor != "debian" or known is None:
            raise grub.NotPredicted(f"GRUB at {path} is not Debian's signed {' or '.join(grub.KNOWN)} (its SBAT)")
        firmware, prefix = grub.image_firmware(data, pe, f"esp:{path}")
        volumes = _Volumes(disk, esp, f"hd0,gpt{partition}")
        measured, handoff = grub.measurements(
            volumes, firmware, entry, known, path.rsplit("/", 1)[0], prefix if known == "2.12" else "/EFI/debian"
        )
    except CvmlintError as err:
        reason = Unknown(f"GRUB's measurements: {err}")
        return [
            Event(8, "EV_IPL", "GRUB commands and kernel command line", "grub", reason, None, where),
            Event(9, "EV_IPL", "files GRUB reads", "grub", reason, None, where),
        ]
    release = tuple(int(x) for x in known.split("."))
    if release >= CC_FROM["grub"] or (release >= GRUB_CC_WITH_TPM and prediction.td_vtpm):
        prediction.on_tdx.add("grub")
    events = [
        Event(m.pcr, "EV_IPL", m.description, "grub", digests(m.payload), m.description.encode() + b"\0", where)
        for m in measured
    ]
    if known == "2.06":  # it starts the kernel without its EFI stub
        return events
    options = ("BOOT_IMAGE=" + handoff.cmdline).encode("utf-16-le")
    prediction.assumptions.append(
        f"GRUB {known} on TDX: it measures only when the TD has a vTPM, then into the RTMRs too"
        f" ({'assumed: its events are in RTMR[2]' if prediction.td_vtpm else 'assumed without: none of its events'})"
    )
    return events + _linux_stub(prediction, handoff.kernel, options, handoff.initrd, where)


class _Volumes:
    """The disk's partitions as GRUB names them (`hd0,gptN`): the ESP through the scan's reader, the
    others through their file system's reader; each file read once."""

    def __init__(self, disk: Disk, esp: _EspFiles, esp_device: str) -> None:
        self.disk, self.esp_files, self.esp = disk, esp, esp_device
        self._trees: dict[str, Tree | None] = {}

    def _tree(self, device: str) -> Tree | None:
        from cvmlint.measure.grub import NotPredicted

        if device not in self._trees:
            number = re.fullmatch(r"hd0,gpt(\d{1,4})", device)
            part = next((p for p in self.disk.partitions if number and p.entry.number == int(number.group(1))), None)
            if part is None:
                raise NotPredicted(f"({device}): the disk has no such partition (GRUB would look on other disks)")
            try:
                self._trees[device] = self.disk.tree(part)
            except CvmlintError as err:
                raise NotPredicted(f"({device}) cannot be read: {err}") from None
            if self._trees[device] is None:
                raise NotPredicted(f"({device}): cvmlint does not read its file system ({part.content})")
        return self._trees[device]

    def read(self, device: str, path: str) -> bytes | None:
        if device == self.esp:
            return self.esp_files.read(path)
        tree = self._tree(device)
        node = tree.lookup(path) if tree else None
        if tree is None or node is None or not node.is_reg:
            return None
        return bytes(tree.read(node, limits.get("boot-file-bytes")))

    def exists(self, device: str, path: str) -> bool:
        if device == self.esp:
            return self.esp_files.exists(path)
        tree = self._tree(device)
        return tree is not None and tree.lookup(path) is not None

    def find(self, kind: str, value: str) -> str:
        from cvmlint.measure.grub import NotPredicted

        if kind == "file":
            raise NotPredicted(f"search --file {value}: not followed yet")
        lost = self.disk.unidentified()
        found = [
            p
            for p in self.disk.partitions
            if (kind == "fs-uuid" and p.fs_uuid.lower() == value.lower()) or (kind == "label" and p.fs_label == value)
        ]
        if len(found) != 1 or lost:
            why = f"{len(found)} partitions match" + (f"; the UUID and label of {lost} are unknown" if lost else "")
            raise NotPredicted(f"search --{kind} {value}: {why} (GRUB's choice cannot be predicted)")
        return f"hd0,gpt{found[0].entry.number}"


def _tagged(tag: int, text: bytes) -> bytes:
    return struct.pack("<II", tag, len(text)) + text


def _shown(text: str, most: int = 512) -> str:
    """A command line in an event's description: quoted, and cut (the digest covers all of it)."""
    return repr(text) if len(text) <= most else repr(text[:most]) + f" … ({len(text)} characters)"


def _stub_version(data: Buffer, pe: PeImage) -> int | None:
    """The systemd-stub version from its `.sdmagic` section."""
    return _loader_version(data, pe, "systemd-stub")


def _stub_version_of(esp: _EspFiles, path: str) -> int | None:
    data = esp.read(path)
    try:
        return _stub_version(data, parse_pe(data, f"esp:{path}")) if data is not None else None
    except CvmlintError:
        return None


def _loader_version(data: Buffer, pe: PeImage, name: str) -> int | None:
    """The major version of systemd-boot or systemd-stub from the `.sdmagic` section's LoaderInfo."""
    found = re.search(rb"#### LoaderInfo: " + name.encode() + rb" (\d{1,6})", section(data, pe, ".sdmagic"))
    return int(found.group(1)) if found else None


def _kernel_version(kernel: bytes) -> tuple[int, int] | None:
    """(major, minor) from the bzImage header's version string."""
    if len(kernel) < 0x210 or kernel[0x202:0x206] != b"HdrS":
        return None
    pointer = int.from_bytes(kernel[0x20E:0x210], "little") + 0x200
    found = re.match(rb"(\d{1,4})\.(\d{1,4})", kernel[pointer : pointer + 16])
    return (int(found.group(1)), int(found.group(2))) if found else None


def as_fact(prediction: Prediction) -> Measurements:
    """The prediction as the `measurements` fact a policy reads."""
    from cvmlint.facts.model import MeasuredEvent, Measurements

    def hexed(value: bytes | Unknown) -> str | Unknown:
        return value.hex() if isinstance(value, bytes) else value

    firmware = Unknown("set by the firmware and its settings, not by the image")
    banks = {}
    for bank in BANKS:
        predicted = prediction.pcrs(bank)
        banks[bank] = tuple(hexed(predicted[n]) if n in predicted else firmware for n in range(24))
    rtmr = prediction.rtmrs()
    where = Provenance(partition="esp", file=prediction.chain[0] if prediction.chain else None)
    events = [
        MeasuredEvent(
            pcr=e.pcr,
            type=e.type,
            by=e.by,
            what=e.what,
            sha256=e.digests if isinstance(e.digests, Unknown) else e.digests["sha256"].hex(),
            sha384=e.digests if isinstance(e.digests, Unknown) else e.digests["sha384"].hex(),
            where=e.where,
        )
        for e in prediction.events
    ]
    return Measurements(
        pcr_sha256=banks["sha256"],
        pcr_sha384=banks["sha384"],
        rtmr=(firmware, hexed(rtmr[1]), hexed(rtmr[2]), Unknown("extended at run time, not at boot")),
        rtmr_components=tuple(sorted(prediction.on_tdx)),
        events=Items(events, where),
        where=where,
    )
