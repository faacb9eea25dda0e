"""Facts read from the root file system: installed packages (dpkg), the file tree, mounts."""

from __future__ import annotations

import posixpath
import stat
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from cvmlint import dpkg, limits
from cvmlint.errors import CvmlintError, reader
from cvmlint.facts.elf import elf_info
from cvmlint.facts.layout import AUTO_MOUNTS, UNIT_DIRS, file_kind
from cvmlint.facts.model import DebVersion, File, Mount, Package, System
from cvmlint.facts.mounts import crypttab_names, fstab_mounts, unit_mount
from cvmlint.facts.provenance import Items, Provenance, Unknown
from cvmlint.image.fsid import Content
from cvmlint.image.tree import Tree
from cvmlint.scan.disk import Disk, DiskPartition

DPKG_STATUS = dpkg.STATUS
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

    raw = tree.read(node, limits.get("package-database-bytes"))
    digest = hashlib.sha256(raw).hexdigest()
    where = Provenance(file=DPKG_STATUS, partition=part.name, sha256=digest)
    return Items(list(_dpkg_paragraphs(raw.decode("utf-8", "replace"), part.name)), where)


@reader("dpkg", "status file")
def _dpkg_paragraphs(text: str, partition: str) -> Iterator[Package]:
    for line, para in dpkg.paragraphs(text):
        if dpkg.is_installed(para):
            yield Package(
                name=para["Package"],
                version=DebVersion(para.get("Version", "")),
                arch=para.get("Architecture", ""),
                source=para.get("Source", para["Package"]).split(" ", 1)[0],
                origin="dpkg",
                where=Provenance(file=DPKG_STATUS, line=line, partition=partition),
            )


COLUMNS_LIMIT = 200_000
"""Trees with more files than this are walked again for each use instead of being held as columns."""

_COLUMNS = ("path", "type", "mode", "uid", "gid", "size", "target")


class FileTable(Items[File]):
    """Every file of the root tree, held after the first walk as a few columns (about 150 bytes a file),
    from which records are made as they are iterated. A rule's `where` on a column is answered from the
    columns (see Items.having) and makes records only for the files it admits; the ELF fields read a
    file's first bytes only when a rule asks (most rules select files by name, type or mode first)."""

    def __init__(self, tree: Tree, part: DiskPartition) -> None:
        super().__init__(factory=self._records, where=Provenance(partition=part.name, file="/"))
        self.tree, self.part = tree, part
        self.columns: dict[str, list[Any]] | None = None
        self.elf: dict[str, tuple[Any, Any, Any]] = {}

    def load(self) -> dict[str, list[Any]] | None:
        """The columns (one walk, remembered), or None for a tree over COLUMNS_LIMIT files."""
        if self.columns is None:
            columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
            for count, (path, node) in enumerate(self._walk()):
                if count >= COLUMNS_LIMIT:
                    return None
                for name, value in zip(_COLUMNS, self._row(path, node), strict=True):
                    columns[name].append(value)
            self.columns = columns
        return self.columns

    def _walk(self) -> Iterator[tuple[str, Any]]:
        return ((path, node) for path, node in self.tree.walk() if path != "/")

    def _row(self, path: str, node: Any) -> tuple[Any, ...]:
        kind = file_kind(node.mode)
        target = self.tree.readlink(node) if kind == "symlink" else ""
        return path, kind, stat.S_IMODE(node.mode), node.uid, node.gid, node.size, target

    def _records(self) -> Iterator[File]:
        columns = self.load()
        if columns is None:
            yield from (self._record(*self._row(path, node)) for path, node in self._walk())
            return
        for row in zip(*(columns[name] for name in _COLUMNS), strict=True):
            yield self._record(*row)

    def _record(self, path: str, kind: str, mode: int, uid: int, gid: int, size: int, target: str) -> File:
        elf = _SNIFF if kind == "file" and size >= 52 else None
        record = ImageFile(
            path=path,
            name=posixpath.basename(path),
            type=kind,
            mode=mode,
            uid=uid,
            gid=gid,
            size=size,
            target=target,
            executable=kind == "file" and bool(mode & 0o111),
            setuid=kind == "file" and bool(mode & 0o6000),
            is_elf=elf or False,
            elf_machine=elf or "",
            elf_interpreter=elf or "",
            where=Provenance(partition=self.part.name, file=path),
        )
        record.__dict__["_table"] = self
        return record

    def sniff(self, path: str) -> tuple[Any, Any, Any]:
        """(is_elf, machine, interpreter) of a file, from its first 8 KiB, read once."""
        if path not in self.elf:
            try:
                node = self.tree.lookup(path, follow=False)
                self.elf[path] = elf_info(self.tree.head(node, 8192)) if node is not None else (False, "", "")
            except CvmlintError as err:
                reason = Unknown(f"content unreadable: {err}")
                self.elf[path] = (reason, reason, reason)
        return self.elf[path]

    def column(self, field: str) -> list[object] | None:
        derived = {"name": "path", "executable": "mode", "setuid": "mode", "perms": "mode"}
        if derived.get(field, field) not in _COLUMNS:
            return None
        if field not in self._columns:
            columns = self.load()
            self._columns[field] = None if columns is None else list(self._derived(field, columns))
        return self._columns[field]

    def take(self, positions: Iterable[int]) -> list[File]:
        assert self.columns is not None
        columns = [self.columns[name] for name in _COLUMNS]
        return [self._record(*(column[p] for column in columns)) for p in sorted(positions)]

    @staticmethod
    def _derived(field: str, columns: dict[str, list[Any]]) -> Iterable[object]:
        if field == "name":
            return (posixpath.basename(p) for p in columns["path"])
        if field == "perms":
            return (f"{m:04o}" for m in columns["mode"])
        if field in ("executable", "setuid"):
            bits = 0o111 if field == "executable" else 0o6000
            return (k == "file" and bool(m & bits) for k, m in zip(columns["type"], columns["mode"], strict=True))
        return columns[field]


_SNIFF: Any = object()
"""Given to ImageFile for an ELF field its table reads from the file on first use."""


def _elf_field(index: int) -> property:
    """A File field read from the file's content on first use (see ImageFile)."""
    name = ("_is_elf", "_elf_machine", "_elf_interpreter")[index]

    def get(self: ImageFile) -> Any:
        value = self.__dict__[name]
        return self.__dict__["_table"].sniff(self.path)[index] if value is _SNIFF else value

    def keep(self: ImageFile, value: Any) -> None:  # what the dataclass __init__ passes
        self.__dict__[name] = value

    return property(get, keep)


class ImageFile(File):
    """A File of an image root whose ELF fields are read from its first bytes only when a rule asks."""

    is_elf = _elf_field(0)  # NOTE: a lazy property in place of the field
    elf_machine = _elf_field(1)
    elf_interpreter = _elf_field(2)


def files(tree: Tree, part: DiskPartition) -> FileTable:
    """Every file of the root tree (see FileTable)."""
    return FileTable(tree, part)


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
    return tree.read(node, limits.get("config-file-bytes")).decode("utf-8", "replace")


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
