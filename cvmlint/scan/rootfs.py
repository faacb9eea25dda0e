"""Facts read from the root file system: installed packages (dpkg), the file tree, mounts."""

from __future__ import annotations

import dataclasses
import posixpath
import stat
from collections.abc import Callable, Iterator
from typing import Any

from cvmlint.errors import CvmlintError, reader
from cvmlint.facts.elf import elf_info
from cvmlint.facts.layout import AUTO_MOUNTS, UNIT_DIRS, file_kind
from cvmlint.facts.model import File, Mount, Package, System
from cvmlint.facts.mounts import crypttab_names, fstab_mounts, unit_mount
from cvmlint.facts.provenance import Items, Provenance, Unknown
from cvmlint.image.fsid import Content
from cvmlint.scan.disk import Disk, DiskPartition, Tree

DPKG_STATUS = "/var/lib/dpkg/status"
RPM_DATABASES = ("/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite", "/var/lib/rpm/Packages")
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")


def packages(tree: Tree, part: DiskPartition) -> Items[Package] | Unknown:
    """Installed packages from dpkg's status file (only those in state `installed`)."""
    node = tree.lookup(DPKG_STATUS)
    if node is None:
        for path in RPM_DATABASES:
            if tree.lookup(path) is not None:
                return Unknown(
                    f"only an rpm database ({path}) is present, and cvmlint does not read rpm databases yet",
                    part.where(path),
                )
        return Unknown(f"no package database in the image ({DPKG_STATUS} is missing)", part.where(DPKG_STATUS))
    import hashlib

    raw = tree.read(node, 256 << 20)
    digest = hashlib.sha256(raw).hexdigest()
    where = Provenance(file=DPKG_STATUS, partition=part.name, sha256=digest)
    return Items(list(_dpkg_paragraphs(raw.decode("utf-8", "replace"), part.name)), where)


@reader("dpkg", "status file")
def _dpkg_paragraphs(text: str, partition: str) -> Iterator[Package]:
    from debian.deb822 import Deb822

    lines = text.splitlines(keepends=True)
    start = 0
    for number in range(len(lines) + 1):
        if number < len(lines) and lines[number].strip():
            continue
        if number > start:
            para = Deb822("".join(lines[start:number]))
            status = para.get("Status", "").split()
            if para.get("Package") and status[-1:] == ["installed"]:
                source = para.get("Source", para["Package"]).split(" ", 1)[0]
                yield Package(
                    name=para["Package"],
                    version=para.get("Version", ""),
                    arch=para.get("Architecture", ""),
                    source=source,
                    origin="dpkg",
                    where=Provenance(file=DPKG_STATUS, line=start + 1, partition=partition),
                )
        start = number + 1


MEMO_LIMIT = 60_000


def files(tree: Tree, part: DiskPartition) -> Items[File]:
    """Every file of the root tree. The first complete walk is remembered when the tree has at most
    MEMO_LIMIT files (several rules walk it); larger trees are walked again each time, keeping only
    the ELF sniffing of each file (a few bytes per file)."""
    elf: dict[str, tuple[Any, Any, Any]] = {}
    memo: list[File] | None = None
    too_big = False

    def walk() -> Iterator[File]:
        nonlocal memo, too_big
        if memo is not None:
            yield from memo
            return
        seen: list[File] = []
        for path, node in tree.walk():
            if path == "/":
                continue
            record = _file(tree, part, path, node, elf)
            if not too_big:
                seen.append(record)
                too_big = len(seen) > MEMO_LIMIT
            yield record
        if not too_big:
            memo = seen
        else:
            seen.clear()

    return Items(factory=walk, where=Provenance(partition=part.name, file="/"))


def _elf_field(index: int) -> property:
    """A File field read from the file's content on first use (see ImageFile)."""

    def get(self: ImageFile) -> Any:
        values = self.__dict__.get("_elf")
        if values is None:
            values = self.__dict__["_sniff"]()
            object.__setattr__(self, "_elf", values)
        return values[index]

    def keep(self: ImageFile, value: Any) -> None:  # the value passed to __init__ (used when not sniffing)
        self.__dict__.setdefault("_init", [False, "", ""])[index] = value
        if "_sniff" not in self.__dict__:
            object.__setattr__(self, "_elf", tuple(self.__dict__["_init"]))

    return property(get, keep)


class ImageFile(File):
    """A File whose ELF fields are read from the file's first bytes only when a rule asks for them.

    Most rules select files by name, type or mode first; sniffing every file's content up front
    would read thousands of files for nothing.
    """

    is_elf = _elf_field(0)  # NOTE: a lazy property in place of the field
    elf_machine = _elf_field(1)
    elf_interpreter = _elf_field(2)


def _file(tree: Tree, part: DiskPartition, path: str, node: Any, elf: dict[str, tuple[Any, Any, Any]]) -> File:
    kind = file_kind(node.mode)
    mode = stat.S_IMODE(node.mode)
    record = _new_image_file(
        path=path,
        name=posixpath.basename(path),
        type=kind,
        mode=mode,
        perms=f"{mode:04o}",
        uid=node.uid,
        gid=node.gid,
        size=node.size,
        target=tree.readlink(node) if kind == "symlink" else "",
        executable=kind == "file" and bool(mode & 0o111),
        setuid=kind == "file" and bool(mode & 0o6000),
        where=Provenance(partition=part.name, file=path),
    )
    if kind == "file" and node.size >= 52:

        def sniff() -> tuple[Any, Any, Any]:
            if path not in elf:
                try:
                    elf[path] = elf_info(tree.head(node, 8192))
                except CvmlintError as err:
                    reason = Unknown(f"content unreadable: {err}")
                    elf[path] = (reason, reason, reason)
            return elf[path]

        record.__dict__["_sniff"] = sniff
    else:
        record.__dict__["_elf"] = (False, "", "")
    return record


_LAZY = {"is_elf", "elf_machine", "elf_interpreter"}
_FILE_DEFAULTS: dict[str, Any] = {
    f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
    for f in dataclasses.fields(File)
    if f.name not in _LAZY and (f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING)
}


def _new_image_file(**values: Any) -> ImageFile:
    """An ImageFile without the frozen dataclass __init__ (12 µs a file, a tenth of a scan's walk)."""
    record = object.__new__(ImageFile)
    record.__dict__.update(_FILE_DEFAULTS, field_where={}, **values)
    return record


def _unit_files(tree: Tree) -> tuple[dict[str, str], set[str]]:
    """Mount unit name -> path, and the names enabled through a .wants/.requires directory."""
    units: dict[str, str] = {}
    enabled: set[str] = set()
    for base in UNIT_DIRS:
        node = tree.lookup(base)
        if node is None or not node.is_dir:
            continue
        for name, child in _listdir(tree, base):
            if name.endswith(".mount") and name not in units:
                units[name] = posixpath.join(base, name)
            if name.endswith((".wants", ".requires")) and child.is_dir:
                enabled |= {n for n, _ in _listdir(tree, posixpath.join(base, name)) if n.endswith(".mount")}
    return units, enabled


def _listdir(tree: Tree, path: str) -> list[tuple[str, Any]]:
    """(name, inode) of a directory's entries; empty when it is not there."""
    node = tree.lookup(path)
    if node is None or not node.is_dir:
        return []
    return [(name, tree.inode(number)) for name, number in tree.children(node)]


def mounts(tree: Tree, part: DiskPartition, root_format: Content, disk: Disk) -> Items[Mount]:
    """The root, fstab lines, enabled mount units and auto-mounted DPS partitions."""
    out = [
        Mount(
            path="/",
            fstype=root_format,
            what=part.name,
            options="ro" if root_format.read_only else "",
            persistent=True,
            encrypted=False,
            where=part.where(),
        )
    ]
    crypt = crypttab_names(_read(tree, "/etc/crypttab"))
    out += fstab_mounts(
        _read(tree, "/etc/fstab"), crypt, lambda n: Provenance(partition=part.name, file="/etc/fstab", line=n)
    )
    units, enabled = _unit_files(tree)
    for name in sorted(enabled & set(units)):
        mount = unit_mount(_read(tree, units[name]), crypt, _locator(part.name, units[name]))
        if mount is not None:
            out.append(mount)
    for p in disk.partitions:
        mountpoint = AUTO_MOUNTS.get(p.entry.type_name)
        if mountpoint and not p.entry.no_auto and not any(m.path == mountpoint for m in out):
            out.append(
                Mount(
                    path=mountpoint,
                    fstype=p.content,
                    what=p.name,
                    persistent=True,
                    encrypted=p.content.is_luks,
                    where=p.where(),
                )
            )
    return Items(out, Provenance(partition=part.name, file="/etc"))


def _locator(partition: str, path: str) -> Callable[[int], Provenance]:
    return lambda line: Provenance(partition=partition, file=path, line=line)


def _read(tree: Tree, path: str) -> str:
    node = tree.lookup(path)
    if node is None or not node.is_reg:
        return ""
    return tree.read(node, 1 << 20).decode("utf-8", "replace")


def system(tree: Tree, part: DiskPartition) -> System | Unknown:
    """The distribution and release from os-release (/etc first, as systemd reads it); the architecture
    from the root partition's Discoverable-Partitions type."""
    for path in OS_RELEASE:
        text = _read(tree, path)
        if text:
            fields = _os_release(text)
            where = Provenance(partition=part.name, file=path)
            arch = part.entry.type_name.removeprefix("root-") if part.entry.type_name.startswith("root-") else None
            return System(
                distribution=fields.get("ID") or Unknown(f"{path} has no ID=", where),
                release=fields.get("VERSION_CODENAME")
                or fields.get("VERSION_ID")
                or Unknown(f"{path} has neither VERSION_CODENAME= nor VERSION_ID=", where),
                architecture=arch
                or Unknown(f"the root partition's type ({part.entry.type_name}) names no architecture", part.where()),
                where=where,
                field_where={"architecture": part.where()},
            )
    return Unknown("no /etc/os-release or /usr/lib/os-release in the root", part.where())


def _os_release(text: str) -> dict[str, str]:
    """KEY=value lines, shell-style quotes removed (os-release(5))."""
    out = {}
    for line in text.splitlines():
        key, eq, value = line.strip().partition("=")
        if eq and key and not key.startswith("#"):
            out[key] = value.strip().strip("\"'")
    return out
