"""The disk as cvmlint sees it: partitions, what each holds, the file systems it can read, the root."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from cvmlint import limits
from cvmlint.errors import CvmlintError, FormatError
from cvmlint.facts.provenance import Provenance
from cvmlint.image import fsid
from cvmlint.image.fsid import Content
from cvmlint.image.gpt import Partition as GptPartition
from cvmlint.image.gpt import PartitionTable, read_partition_table
from cvmlint.image.source import ByteSource, SliceSource
from cvmlint.image.tree import Tree


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
    """Why the partition cannot be opened (its source is None)."""
    identity_problem: str = ""
    """Why its UUID and label are unknown (a lookup by them cannot say it is not this partition)."""

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

    def unidentified(self) -> str:
        """The partitions whose UUID and label are unknown, for a message; empty when there are none."""
        lost = [f"{p.name or p.entry.number}: {p.identity_problem}" for p in self.partitions if p.identity_problem]
        return "; ".join(lost)

    def by_name(self, name: str) -> DiskPartition | None:
        """The partition findings call `name`."""
        return next((p for p in self.partitions if p.name == name), None)

    def tree(self, part: DiskPartition) -> Tree:
        """The file system of a partition (opened once); FormatError when it cannot be read."""
        if part.name not in self.trees:
            if part.source is None:
                raise FormatError("image", f"partition {part.name}", part.entry.start, part.problem)
            tree = fsid.format_of(part.content).open_tree(part.source)
            if tree is None and part.content is Content.UNKNOWN:
                raise FormatError(
                    "image",
                    f"partition {part.name}",
                    part.entry.start,
                    f"holds no known file system (cvmlint reads the files of {fsid.readable_names()})",
                )
            if tree is None:
                raise FormatError(
                    "image",
                    f"partition {part.name}",
                    part.entry.start,
                    f"holds {part.content}, whose files cvmlint does not read (it reads those of "
                    f"{fsid.readable_names()})",
                )
            self.trees[part.name] = tree
        return self.trees[part.name]


def _fs_identity(src: SliceSource, content: Content) -> tuple[fsid.Identity, str]:
    """The file system's UUID and label, and why they could not be read (empty when they could)."""
    identity = fsid.format_of(content).identity
    if identity is None:
        return ("", ""), ""
    try:
        return identity(src), ""
    except CvmlintError as err:
        return ("", ""), f"its {content} header cannot be read, so its UUID and label are unknown: {err}"


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
        (uid, label), lost = _fs_identity(part_src, content) if part_src else (("", ""), "")
        disk.partitions.append(DiskPartition(entry, part_src, content, uid, label, problem=problem))
        disk.partitions[-1].identity_problem = lost
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
        lost = disk.unidentified()
        if lost and cmdline_root.split("=", 1)[0] in ("UUID", "LABEL"):
            return RootChoice(None, "", reason=f"no partition is known to match root={cmdline_root} ({lost})")
    if not by_os_release:
        return RootChoice(None, "", reason="no partition with a DPS root type")
    candidates = [p for p in disk.partitions if fsid.format_of(p.content).reader and _has_os_release(disk, p)]
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
