"""The boot chain from the ESP: EFI binaries and their signers, the loader chain, boot entries
(GRUB menus, BLS Type #1 entries, UKIs) with their command lines, and the default entry's kernel."""

from __future__ import annotations

import fnmatch
import hashlib
import posixpath
from dataclasses import dataclass, field
from typing import NamedTuple

from cvmlint import limits
from cvmlint.errors import CvmlintError, InputError
from cvmlint.facts.cmdline import parse_cmdline
from cvmlint.facts.model import Boot, BootBinary, BootEntry, Param
from cvmlint.facts.provenance import Items, Provenance, Unknown
from cvmlint.image.fat import FatEntry, FatFileSystem
from cvmlint.image.fsid import Content
from cvmlint.image.source import Buffer
from cvmlint.image.tree import Tree
from cvmlint.scan import grub
from cvmlint.scan.disk import Disk, DiskPartition
from cvmlint.scan.pe import PeImage, is_pe, parse_pe, section

FALLBACK = "/EFI/BOOT/BOOTX64.EFI"


@dataclass
class KernelRef:
    """Where the default entry's kernel is: a file on a partition, or a UKI's .linux section."""

    partition: str
    path: str
    section: str | None = None
    data: Buffer | None = None
    """The file's bytes when the ESP scan already read them."""
    initrds: tuple[str, ...] = ()
    """Initrd paths on the same partition; for a UKI, its .initrd section."""
    options: str = ""
    """A Boot Loader Specification entry's `options` lines, joined by spaces (what the loader passes)."""


@dataclass
class BootScan:
    """What the ESP says."""

    boot: Boot | Unknown
    cmdline: Items[Param] | Unknown
    kernel: KernelRef | Unknown
    problems: list[str] = field(default_factory=list)
    esp: EspFiles | None = None
    """The ESP as read (measure reads its boot files from it)."""


class EspImage(NamedTuple):
    """A PE binary read from the ESP."""

    kind: str
    """`shim`, `grub`, `systemd-boot`, `uki`, `kernel`, `mokmanager` or `other` (see _kind)."""
    pe: PeImage
    data: Buffer


class Entry(NamedTuple):
    """A boot entry and the kernel it loads."""

    boot: BootEntry
    kernel: KernelRef | Unknown


@dataclass
class EspFiles:
    """The ESP as read once: its files by lower-cased path (FAT names are case-insensitive)."""

    part: DiskPartition
    fs: FatFileSystem
    files: dict[str, FatEntry]

    def read(self, path: str) -> Buffer | None:
        """A file's bytes; None when it is absent or a directory (limits as FatFileSystem.read)."""
        entry = self.files.get(path.lower())
        if entry is None or entry.is_dir:
            return None
        return self.fs.read(entry)

    def exists(self, path: str) -> bool:
        return path.lower() in self.files

    def where(self, path: str, line: int | None = None) -> Provenance:
        real = self.files[path.lower()].path if path.lower() in self.files else path
        return Provenance(file=real, line=line, partition=self.part.name)


def second_stage(first: str) -> str:
    """What shim at `first` starts: grubx64.efi beside it (shim's DEFAULT_LOADER)."""
    return posixpath.join(posixpath.dirname(first), "grubx64.efi")


def _kind(path: str, pe: PeImage, data: Buffer) -> str:
    sbat = section(data, pe, ".sbat").decode("utf-8", "replace")
    name = posixpath.basename(path).lower()
    if ".linux" in pe.sections:
        return "uki"
    if data[0x202:0x206] == b"HdrS":
        return "kernel"
    if "\nshim," in sbat and name.startswith(("mm", "fb")):
        return "mokmanager" if name.startswith("mm") else "other"
    if "\nshim," in sbat or ".vendor_cert" in pe.sections:
        return "shim"
    if "\ngrub," in sbat or "mods" in pe.sections:
        return "grub"
    if "systemd-boot" in sbat or (".sdmagic" in pe.sections and ".osrel" in pe.sections):
        return "systemd-boot"
    return "other"


def grub_build(data: Buffer, pe: PeImage) -> tuple[str, str]:
    """(distribution, version) from a signed GRUB's SBAT row `grub.debian,4,Debian,grub2,2.06-13,…`;
    empty strings when it has none."""
    for line in section(data, pe, ".sbat").decode("utf-8", "replace").splitlines():
        fields = line.split(",")
        if fields[0].startswith("grub.") and len(fields) >= 5:
            return fields[0].split(".", 1)[1], fields[4]
        if fields[0].startswith("grub."):
            return fields[0].split(".", 1)[1], ""
    return "", ""


def _vendor(data: Buffer, pe: PeImage) -> str:
    """The distribution in a signed GRUB's SBAT (`grub.debian,…` -> `debian`)."""
    return grub_build(data, pe)[0]


def scan_boot(
    disk: Disk, root_tree: Tree | None, root_part: DiskPartition | None, entry: str | None = None
) -> BootScan:
    """Boot facts from the first ESP; unknown with a reason when there is none or it cannot be read.
    The command line and kernel are the default entry's, or those of the entry titled `entry`."""
    esp_part = disk.by_name("esp")
    if esp_part is None:
        reason = "no EFI system partition on the disk"
        return BootScan(Unknown(reason), Unknown(reason), Unknown(reason))
    try:
        fs = FatFileSystem(esp_part.source) if esp_part.source else None
        if fs is None:
            raise CvmlintError(esp_part.problem)
        files = {e.path.lower(): e for e in fs.walk()}
    except CvmlintError as err:
        reason = f"the ESP cannot be read: {err}"
        return BootScan(Unknown(reason), Unknown(reason), Unknown(reason))
    esp = EspFiles(esp_part, fs, files)
    binaries, images = _binaries(esp)
    first = images.get(FALLBACK.lower())
    chain = [FALLBACK] if first else []
    shim = bool(first and first.kind == "shim")
    second = None
    if shim:
        second = second_stage(FALLBACK)
        chain.append(second)
    loader_path = second if shim else (FALLBACK if first else None)
    found_loader = images.get(loader_path.lower()) if loader_path else None
    loader_kind = found_loader.kind if found_loader else "none"
    entries, problems = _entries(esp, images, loader_kind, loader_path, disk, root_tree, root_part)
    if not entries:
        reason = "no boot entry found: " + "; ".join(problems or ["no GRUB configuration, BLS entry or UKI"])
        boot = Boot(
            loader=loader_kind,
            shim=shim,
            secure_boot=_signed_path(images, chain),
            uki=loader_kind == "uki",
            binaries=Items(binaries, esp.where("/")),
            entries=Unknown(reason),
            where=esp.where("/"),
        )
        return BootScan(boot, Unknown(reason), Unknown(reason), problems, esp)
    chain += [ref.path for _, ref in entries if isinstance(ref, KernelRef) and ref.partition == "esp"][:1]
    for _, ref in entries:
        if isinstance(ref, KernelRef) and ref.partition == "esp" and ref.path.lower() in images:
            ref.data = images[ref.path.lower()].data
    entries = _with_initrd_files(disk, root_tree, entries)
    default = next(e for e in entries if e.boot.default)
    if entry is not None:
        titles = [e.boot.title for e in entries]
        if entry not in titles:
            raise InputError(f"no boot entry titled {entry!r}; the entries are: " + ", ".join(map(repr, titles)))
        default = entries[titles.index(entry)]
    boot = Boot(
        loader=loader_kind,
        shim=shim,
        secure_boot=_signed_path(images, chain),
        uki=any(e.kind == "uki" for e, _ in entries),
        binaries=Items(binaries, esp.where("/")),
        entries=Items([e for e, _ in entries], esp.where("/")),
        where=esp.where(FALLBACK),
    )
    return BootScan(boot, default.boot.cmdline, default.kernel, problems, esp)


def _binaries(esp: EspFiles) -> tuple[list[BootBinary], dict[str, EspImage]]:
    out: list[BootBinary] = []
    images: dict[str, EspImage] = {}
    read: dict[tuple[int, int], tuple[Buffer, PeImage | CvmlintError | None]] = {}  # cross-linked entries: once
    kept, budget = 0, limits.get("boot-files-bytes")
    for key, entry in sorted(esp.files.items()):
        if entry.is_dir or entry.size < 64 or not (key.endswith(".efi") or "vmlinuz" in key):
            continue
        same = (entry.first_cluster, entry.size)
        if same not in read:
            kept += entry.size
            if kept > budget:
                reason = Unknown(
                    f"not read: the ESP's boot files pass the limit boot-files-bytes = {budget} "
                    "(raise it with --limit boot-files-bytes=N)"
                )
                out.append(
                    BootBinary(path=entry.path, kind="other", signed=reason, signer=reason, where=esp.where(entry.path))
                )
                continue
            data = esp.read(entry.path) or b""
            read[same] = (data, None)
        data = read[same][0]
        if not is_pe(data):
            continue
        parsed = read[same][1]
        if parsed is None:
            try:
                parsed = parse_pe(data, f"esp:{entry.path}")
            except CvmlintError as refused:
                parsed = refused
            read[same] = (data, parsed)
        if isinstance(parsed, CvmlintError):
            out.append(
                BootBinary(
                    path=entry.path,
                    kind="other",
                    signed=Unknown(str(parsed)),
                    signer=Unknown(str(parsed)),
                    where=esp.where(entry.path),
                )
            )
            continue
        pe = parsed
        kind = _kind(entry.path, pe, data)
        images[key] = EspImage(kind, pe, data)
        out.append(
            BootBinary(
                path=entry.path,
                kind=kind,
                signed=pe.signed,
                signer=pe.signers[0] if pe.signers else "",
                sha256=hashlib.sha256(data).hexdigest(),
                where=esp.where(entry.path),
            )
        )
    return out, images


def _signed_path(images: dict[str, EspImage], chain: list[str]) -> bool | Unknown:
    if not chain:
        return Unknown("no EFI boot path found (no /EFI/BOOT/BOOTX64.EFI)")
    for path in chain:
        image = images.get(path.lower())
        if image is None:
            return Unknown(f"{path} is missing from the ESP")
        signed = image.pe.signed
        if isinstance(signed, Unknown):
            return Unknown(f"{path}: {signed.reason}")
        if not signed:
            return False
    return True


def _entries(
    esp: EspFiles,
    images: dict[str, EspImage],
    loader: str,
    loader_path: str | None,
    disk: Disk,
    root_tree: Tree | None,
    root_part: DiskPartition | None,
) -> tuple[list[Entry], list[str]]:
    if loader == "grub" and loader_path:
        return _grub_entries(esp, images, loader_path, disk, root_tree)
    if loader == "systemd-boot":
        return _sd_boot_entries(esp, images)
    if loader == "uki" and loader_path:
        entry = _uki_entry(esp, images, loader_path, True)
        return ([entry], []) if entry else ([], [f"{loader_path} is not a readable UKI"])
    return [], [f"unknown second-stage loader ({loader})"]


def _uki_entry(
    esp: EspFiles, images: dict[str, EspImage], path: str, default: bool, title: str | None = None
) -> Entry | None:
    image = images.get(path.lower())
    if image is None or image.kind != "uki":
        return None
    pe, data = image.pe, image.data
    where = esp.where(path)
    params: list[Param] = []
    if ".cmdline" in pe.sections:
        text = section(data, pe, ".cmdline").split(b"\0", 1)[0].decode("utf-8", "replace")
        where = Provenance(file=esp.files[path.lower()].path, partition=esp.part.name, detail="section .cmdline")
        params = parse_cmdline(text, where)
    entry = BootEntry(
        title=title or posixpath.basename(path),
        kind="uki",
        default=default,
        kernel=f"{path} (.linux)",
        cmdline=Items(params, where),
        where=esp.where(path),
    )
    return Entry(entry, KernelRef("esp", esp.files[path.lower()].path, ".linux", data, (".initrd",)))


def _grub_entries(
    esp: EspFiles, images: dict[str, EspImage], loader_path: str, disk: Disk, root_tree: Tree | None
) -> tuple[list[Entry], list[str]]:
    loader = images[loader_path.lower()]
    pe, data = loader.pe, loader.data
    vendor = _vendor(data, pe)
    start = [("esp", posixpath.join(posixpath.dirname(loader_path), "grub.cfg"))]
    if vendor:
        start.append(("esp", f"/EFI/{vendor}/grub.cfg"))
    start += sorted(("esp", e.path) for e in esp.files.values() if fnmatch.fnmatch(e.path.lower(), "/efi/*/grub.cfg"))
    start += [("esp", "/grub/grub.cfg"), ("esp", "/grub2/grub.cfg"), ("esp", "/boot/grub/grub.cfg")]
    if root_tree is not None:
        start.append(("root", "/boot/grub/grub.cfg"))

    def load(device: str, path: str) -> grub.GrubFile | None:
        """The file, None when it does not exist; CvmlintError when it cannot be read."""
        if device == "esp":
            text = esp.read(path)
            real = esp.files[path.lower()].path if text is not None else path
            return grub.GrubFile("esp", real, text.decode("utf-8", "replace")) if text is not None else None
        part = disk.by_name(device)
        tree = root_tree if device == "root" and root_tree is not None else disk.tree(part) if part else None
        if tree is None:
            return None
        node = tree.lookup(path)
        if node is None or not node.is_reg:
            return None
        config = tree.read(node, limits.get("grub-config-bytes"))
        return grub.GrubFile(device, path, config.decode("utf-8", "replace"))

    def holds(device: str, path: str) -> bool:
        try:
            return load(device, path) is not None
        except CvmlintError:
            return False  # GRUB's search skips a device whose files it cannot read

    def find(kind: str, value: str) -> str | None:
        for p in disk.partitions:
            if (kind == "fs-uuid" and p.fs_uuid.lower() == value.lower()) or (kind == "label" and p.fs_label == value):
                return p.name
            if kind == "file" and holds(p.name, value):
                return p.name
        return None

    menu = grub.read_menu(load, find, start, {"grub_platform": "efi", "cmdpath": "(esp)/EFI/BOOT"})
    lost = disk.unidentified()
    if lost and any(": no partition matches" in problem for problem in menu.problems):
        menu.problems.append(f"a search may have meant a partition whose UUID and label are unknown ({lost})")
    default = menu.default_entry()
    out: list[Entry] = []
    if menu.unread:  # a file GRUB reads may add entries or change the default and their command lines
        return out, menu.problems
    for item in menu.entries:
        is_default = item is default
        if item.chainloader and item.chainloader.lower() in images:
            uki = _uki_entry(esp, images, item.chainloader, is_default, item.title)
            if uki:
                out.append(uki)
                continue
        where = Provenance(file=item.file, line=item.args_line or item.line, partition=item.device)
        params = parse_cmdline(item.args, where)
        ref: KernelRef | Unknown = (
            KernelRef(item.kernel_device or item.device, item.kernel, initrds=tuple(item.initrds))
            if item.kernel
            else Unknown(f"menu entry {item.title!r} loads no kernel")
        )
        out.append(
            Entry(
                BootEntry(
                    title=item.title,
                    kind="grub",
                    default=is_default,
                    kernel=item.kernel or "",
                    initrds=tuple(item.initrds),
                    cmdline=Items(params, where),
                    where=Provenance(file=item.file, line=item.line, partition=item.device),
                ),
                ref,
            )
        )
    out.sort(key=lambda e: not e.boot.default)
    return out, menu.problems


def _sd_boot_entries(esp: EspFiles, images: dict[str, EspImage]) -> tuple[list[Entry], list[str]]:
    conf = esp.read("/loader/loader.conf") or b""
    pattern = ""
    for line in conf.decode("utf-8", "replace").splitlines():
        key, _, value = line.strip().partition(" ")
        if key == "default":
            pattern = value.strip()
    found: list[tuple[str, Entry]] = []
    for key, entry in sorted(esp.files.items()):
        if fnmatch.fnmatch(key, "/loader/entries/*.conf"):
            found.append((posixpath.basename(entry.path), _bls_entry(esp, entry.path)))
        elif fnmatch.fnmatch(key, "/efi/linux/*.efi"):
            uki = _uki_entry(esp, images, entry.path, False)
            if uki:
                found.append((posixpath.basename(entry.path), uki))
    if not found:
        return [], ["systemd-boot finds no entry in /loader/entries or /EFI/Linux"]
    chosen = next((i for i, (name, _) in enumerate(found) if pattern and fnmatch.fnmatch(name, pattern)), 0)
    out = [Entry(_with_default(entry, i == chosen), ref) for i, (_name, (entry, ref)) in enumerate(found)]
    out.sort(key=lambda e: not e.boot.default)
    return out, []


def _with_default(entry: BootEntry, default: bool) -> BootEntry:
    from dataclasses import replace

    return replace(entry, default=default)


def _bls_entry(esp: EspFiles, path: str) -> Entry:
    text = (esp.read(path) or b"").decode("utf-8", "replace")
    fields: dict[str, list[tuple[str, int]]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        key, _, value = line.strip().partition(" ")
        if key and not key.startswith("#"):
            fields.setdefault(key, []).append((value.strip(), number))
    params: list[Param] = []
    for value, number in fields.get("options", []):
        params += parse_cmdline(value, esp.where(path, number))
    title = fields.get("title", [(posixpath.basename(path), 0)])[0][0]
    linux = fields.get("linux", [("", 0)])[0][0]
    initrds = tuple(v for v, _ in fields.get("initrd", []))
    ref: KernelRef | Unknown = (
        KernelRef("esp", linux, initrds=initrds, options=" ".join(v for v, _ in fields.get("options", []) if v))
        if linux
        else Unknown(f"BLS entry {path} names no kernel")
    )
    where = esp.where(path, fields["options"][0][1] if "options" in fields else None)
    entry = BootEntry(
        title=title,
        kind="bls",
        default=False,
        kernel=linux,
        initrds=initrds,
        cmdline=Items(params, where),
        where=esp.where(path),
    )
    return Entry(entry, ref)


def _with_initrd_files(disk: Disk, root_tree: Tree | None, entries: list[Entry]) -> list[Entry]:
    """Each entry with the paths inside its initrds (read once per distinct initrd)."""
    from dataclasses import replace

    from cvmlint.scan.initrd import list_initrd

    seen: dict[tuple[str, str, str], list[str] | Unknown] = {}
    out: list[Entry] = []
    for entry, ref in entries:
        if not isinstance(ref, KernelRef) or not ref.initrds:
            out.append(Entry(entry, ref))
            continue
        names: list[str] = []
        listing: list[str] | Unknown = names
        for initrd in ref.initrds:
            key = (ref.partition, ref.path, initrd) if initrd.startswith(".") else (ref.partition, initrd, "")
            if key not in seen:
                try:
                    if key[2]:
                        data, where = read_boot_file(
                            disk, root_tree, KernelRef(ref.partition, ref.path, initrd, ref.data)
                        )
                    else:
                        data, where = read_boot_file(disk, root_tree, KernelRef(ref.partition, initrd))
                    seen[key] = list_initrd(data, str(where))
                except CvmlintError as err:
                    seen[key] = Unknown(f"initrd {initrd} unreadable: {err}")
            got = seen[key]
            if isinstance(got, Unknown):
                listing = got
                break
            names += got
        out.append(Entry(replace(entry, initrd_files=listing if isinstance(listing, Unknown) else tuple(listing)), ref))
    return out


def read_boot_file(disk: Disk, root_tree: Tree | None, ref: KernelRef) -> tuple[Buffer, Provenance]:
    """The bytes a boot entry names (a file on the ESP or another partition, or a PE section of one)."""
    import hashlib

    data: Buffer
    part = disk.by_name(ref.partition)
    if part is None:
        raise CvmlintError(f"partition {ref.partition!r} does not exist")
    if ref.data is not None:
        data = ref.data
    elif part.content is Content.VFAT and part.source is not None:
        fs = FatFileSystem(part.source)
        entry = fs.lookup(ref.path)
        if entry is None or entry.is_dir:
            raise CvmlintError(f"{part.name}:{ref.path} does not exist")
        data = fs.read(entry)
    else:
        tree = root_tree if part.name == "root" else disk.tree(part)
        if tree is None:
            raise CvmlintError(f"{part.name} cannot be read")
        node = tree.lookup(ref.path)
        if node is None or not node.is_reg:
            raise CvmlintError(f"{part.name}:{ref.path} does not exist")
        data = tree.read(node, limits.get("boot-file-bytes"))
    if not ref.section:
        return data, Provenance(partition=part.name, file=ref.path, sha256=hashlib.sha256(data).hexdigest())
    pe = parse_pe(data, f"{part.name}:{ref.path}")
    if ref.section not in pe.sections:
        raise CvmlintError(f"{part.name}:{ref.path} has no {ref.section} section")
    off, size = pe.sections[ref.section]
    data = data[off : off + size]
    return data, Provenance(
        partition=part.name, file=ref.path, detail=f"section {ref.section}", sha256=hashlib.sha256(data).hexdigest()
    )
