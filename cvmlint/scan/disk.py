"""The disk as cvmlint sees it: partitions, what each holds, the file systems it can read, the root."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from cvmlint import limits
from cvmlint.errors import CvmlintError, FormatError
from cvmlint.facts.provenance import Provenance
from cvmlint.image import fsid
from cvmlint.image.fsid import Content
from cvmlint.image.gpt import Partition as GptPartition
from cvmlint.image.gpt import PartitionTable, read_partition_table
from cvmlint.image.source import ByteSource, SliceSource


class Tree(Protocol):
    """A read-only file tree (erofs or ext2/3/4) as scanning uses it."""

    def lookup(self, path: str, follow: bool = True) -> Any:
        """The node at an absolute path, or None."""

    def walk(self, top: str = "/") -> Iterator[tuple[str, Any]]:
        """(path, node) of every file below `top`."""

    def inode(self, number: int) -> Any:
        """The node with this inode number."""

    def children(self, node: Any) -> Iterable[tuple[str, int]]:
        """(name, inode number) of a directory's entries."""

    def head(self, node: Any, length: int) -> bytes:
        """A file's first bytes."""

    def read_at(self, node: Any, offset: int, length: int) -> bytes:
        """Bytes of a file at an offset."""

    def read(self, node: Any, limit: int = ...) -> bytes:
        """A file's whole content."""

    def readlink(self, node: Any) -> str:
        """A symlink's target."""

    def iter_data(self, node: Any, limit: int | None = None) -> Iterator[bytes]:
        """A file's content in pieces."""


@dataclass
class DiskPartition:
    """One partition with its content identified."""

    entry: GptPartition
    source: SliceSource | None
    content: Content
    """File system or container by magic (`erofs`, `vfat`, `luks2`, `verity`, …)."""
    fs_uuid: str = ""
    fs_label: str = ""
    name: str = ""
    """How findings name it: `esp`, `root`, `root-verity`, or `p<N>`."""
    problem: str = ""

    def where(self, path: str | None = None, line: int | None = None) -> Provenance:
        """Provenance of something in this partition."""
        offset = None if path else (self.source.start if self.source else None)
        return Provenance(file=path, line=line, partition=self.name, offset=offset)


@dataclass
class Disk:
    """A partitioned image."""

    source: ByteSource
    table: PartitionTable
    partitions: list[DiskPartition] = field(default_factory=list)
    trees: dict[str, Tree] = field(default_factory=dict)

    def by_name(self, name: str) -> DiskPartition | None:
        """The partition findings call `name`."""
        return next((p for p in self.partitions if p.name == name), None)

    def tree(self, part: DiskPartition) -> Tree:
        """The file system of a partition (opened once); FormatError when it cannot be read."""
        if part.name not in self.trees:
            if part.source is None:
                raise FormatError("image", f"partition {part.name}", part.entry.start, part.problem)
            tree = open_tree(part.content, part.source)
            if tree is None and part.content is Content.UNKNOWN:
                raise FormatError(
                    "image",
                    f"partition {part.name}",
                    part.entry.start,
                    "holds no known file system (no erofs, ext4, squashfs, vfat, LUKS or verity magic)",
                )
            if tree is None:
                raise FormatError(
                    "image",
                    f"partition {part.name}",
                    part.entry.start,
                    f"holds {part.content}, whose files cvmlint does not read",
                )
            self.trees[part.name] = tree
        return self.trees[part.name]


TREE_READERS: dict[Content, tuple[str, str]] = {
    Content.EROFS: ("cvmlint.image.erofs", "ErofsFileSystem"),
    Content.EXT4: ("cvmlint.image.ext4", "Ext4FileSystem"),
    Content.EXT3: ("cvmlint.image.ext4", "Ext4FileSystem"),
    Content.EXT2: ("cvmlint.image.ext4", "Ext4FileSystem"),
}
"""The file systems whose files cvmlint reads: content -> (module, class), imported when first needed."""


def open_tree(content: Content, src: SliceSource) -> Tree | None:
    """The file tree of a partition holding `content`, or None when cvmlint does not read its files."""
    found = TREE_READERS.get(content)
    if found is None:
        return None
    import importlib

    module, name = found
    tree: Tree = getattr(importlib.import_module(module), name)(src)
    return tree


def _fs_identity(src: SliceSource, content: Content) -> tuple[str, str]:
    """The file system's UUID and label, as `root=UUID=`/`LABEL=` name it."""
    try:
        tree = open_tree(content, src)
        if tree is not None:
            sb = tree.sb  # type: ignore[attr-defined]
            return sb.uuid, sb.label if content.is_ext else sb.volume_name
        if content is Content.VFAT:
            boot = src.pread(0, 512)
            fat32 = boot[22:24] == b"\0\0"
            serial = boot[67:71] if fat32 else boot[39:43]
            label = (boot[71:82] if fat32 else boot[43:54]).decode("ascii", "replace").strip()
            return f"{int.from_bytes(serial[2:4], 'little'):04X}-{int.from_bytes(serial[0:2], 'little'):04X}", label
    except CvmlintError:
        pass
    return "", ""


def open_disk(src: ByteSource) -> Disk:
    """Read the partition table and identify every partition (FormatError for an unusable table)."""
    table = read_partition_table(src)
    disk = Disk(src, table)
    counts: dict[str, int] = {}
    for entry in table.partitions:
        try:
            part_src: SliceSource | None = entry.open(src)
            assert part_src is not None
            content = fsid.identify(part_src)
            problem = ""
        except FormatError as err:
            part_src, content, problem = None, Content.UNREADABLE, str(err)
        uid, label = _fs_identity(part_src, content) if part_src else ("", "")
        disk.partitions.append(DiskPartition(entry, part_src, content, uid, label, problem=problem))
        counts[entry.type_name] = counts.get(entry.type_name, 0) + 1
    for part in disk.partitions:
        kind = part.entry.type_name
        part.name = kind if kind not in ("unknown", "linux-generic") and counts[kind] == 1 else f"p{part.entry.number}"
        if part.name.startswith("esp"):
            part.name = "esp"
    return disk


@dataclass
class RootChoice:
    """Which partition is the root, how it was found, and its verity partner."""

    partition: DiskPartition | None
    found_by: str
    verity: DiskPartition | None = None
    reason: str = ""


def find_root(disk: Disk, cmdline_root: str | None, by_os_release: bool = True) -> RootChoice:
    """The root partition: by DPS type, else by `root=` on the command line, else the only Linux
    partition holding an os-release."""
    roots = [
        p
        for p in disk.partitions
        if p.entry.type_name.startswith("root-") and not p.entry.type_name.endswith(("-verity", "-verity-sig"))
    ]
    preferred = [p for p in roots if p.entry.type_name == "root-x86-64"] or roots
    if preferred:
        root = preferred[0]
        return _named(disk, RootChoice(root, "dps-type"))
    if cmdline_root:
        found = _by_spec(disk, cmdline_root)
        if found is not None:
            return _named(disk, RootChoice(found, f"cmdline root={cmdline_root}"))
    if not by_os_release:
        return RootChoice(None, "", reason="no partition with a DPS root type")
    candidates = [p for p in disk.partitions if p.content in TREE_READERS and _has_os_release(disk, p)]
    if len(candidates) == 1:
        return _named(disk, RootChoice(candidates[0], "os-release"))
    if not candidates:
        return RootChoice(
            None, "", reason="no partition with a DPS root type, none matching root= and none holding an os-release"
        )
    names = ", ".join(p.name for p in candidates)
    return RootChoice(
        None, "", reason=f"several partitions hold an os-release ({names}) and nothing says which is the root"
    )


def _named(disk: Disk, choice: RootChoice) -> RootChoice:
    root = choice.partition
    assert root is not None
    old = root.name
    root.name = "root"
    if old in disk.trees:
        disk.trees["root"] = disk.trees.pop(old)
    verity_type = f"{root.entry.type_name}-verity"
    choice.verity = next((p for p in disk.partitions if p.entry.type_name == verity_type), None)
    if choice.verity is not None:
        choice.verity.name = "root-verity"
    return choice


def _by_spec(disk: Disk, spec: str) -> DiskPartition | None:
    key, _, value = spec.partition("=")
    value = value.lower()
    for p in disk.partitions:
        if key == "PARTUUID" and p.entry.guid == value:
            return p
        if key == "UUID" and p.fs_uuid.lower() == value:
            return p
        if key == "LABEL" and p.fs_label.lower() == value:
            return p
        if key == "PARTLABEL" and p.entry.name.lower() == value:
            return p
    return None


def _has_os_release(disk: Disk, part: DiskPartition) -> bool:
    try:
        tree = disk.tree(part)
        return any(tree.lookup(p) is not None for p in ("/etc/os-release", "/usr/lib/os-release"))
    except CvmlintError:
        return False


def read_text(tree: Tree, path: str, limit: int | None = None) -> tuple[str, str] | None:
    """(text, resolved path) of a file in a tree, following symlinks; None when missing."""
    node = tree.lookup(path)
    if node is None or not node.is_reg:
        return None
    most = limit if limit is not None else limits.get("config-file-bytes")
    return tree.read(node, most).decode("utf-8", "replace"), posixpath.normpath(path)
