"""Image -> facts: `cvmlint scan` and `cvmlint facts IMAGE` read a disk image into the fact model.

>>> from cvmlint.scan import scan_image
>>> with scan_image("image.raw") as facts:           # doctest: +SKIP
...     print(facts.rootfs.format, facts.verity.root_hash)

The slow facts are computed beside the rest: the root hash by hashing workers, the boot chain and the
kernel (decompressed and searched) by a forked child, the measurements only when asked for. `open_scan`
hands them over still pending, so a policy judges every rule that does not read them first
(`evaluate(..., later=scanned.later)`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cvmlint import limits
from cvmlint.errors import CvmlintError
from cvmlint.facts.model import (
    ConfigOption,
    Facts,
    Kernel,
    KernelStrings,
    Measurements,
    Module,
    Partition,
    RootFs,
    Target,
    Verity,
)
from cvmlint.facts.provenance import Items, Provenance, Unknown
from cvmlint.forked import Forked
from cvmlint.image.container import open_image
from cvmlint.image.fsid import Content
from cvmlint.image.tree import Tree
from cvmlint.scan import boot as bootscan
from cvmlint.scan import rootfs
from cvmlint.scan.disk import Disk, RootChoice, find_root, open_disk

if TYPE_CHECKING:
    from cvmlint.image.verity import PendingVerity, Progress
    from cvmlint.scan.disk import DiskPartition
    from cvmlint.scan.kernel import KernelImage


@dataclass
class ScanOptions:
    """What to do beyond reading metadata."""

    verity: bool = True
    """Recompute the root hash (reads the whole root partition)."""
    digest: bool = False
    """Hash the whole image file for the target's digest."""
    needles: tuple[str, ...] = ()
    """Strings `kernel.contains()` is asked for (searched once, recorded in the facts)."""
    progress: Progress | None = None
    known_digest: str | None = None
    """The file's SHA-256 when the caller already has it (evidence hashes the file once for everything)."""


@dataclass
class Scanned:
    """An image's facts, some of them (`later`) still being computed: each is waited for when called."""

    facts: Facts
    later: dict[str, Callable[[], Any]] = field(default_factory=dict)
    cancels: list[Callable[[], None]] = field(default_factory=list)
    root: Tree | None = None
    """The root file system, when it could be read (for what no fact holds: the SBOM's licences)."""

    def complete(self, names: Iterable[str] | None = None) -> Facts:
        """The facts with every pending one (or those of `names`) waited for; the others stay pending."""
        wanted = [n for n in self.later if names is None or n in names]
        if wanted:
            self.facts = replace(self.facts, **{name: self.later.pop(name)() for name in wanted})
        return self.facts

    def cancel(self) -> None:
        """Stop the work still in progress (nothing waits for it any more)."""
        for cancel in self.cancels:
            cancel()


@contextmanager
def open_scan(path: str | Path, options: ScanOptions | None = None) -> Iterator[Scanned]:
    """The facts of an image, the slow ones pending; the image stays open while the facts are used."""
    options = options or ScanOptions()
    _return_large_blocks()
    with open_image(path) as (src, _kind):
        scanned = _facts(Path(path), open_disk(src), options)
        try:
            yield scanned
        finally:
            scanned.cancel()


@contextmanager
def scan_image(path: str | Path, options: ScanOptions | None = None) -> Iterator[Facts]:
    """The facts of an image; the image stays open while the facts are used (files are read lazily)."""
    with open_scan(path, options) as scanned:
        yield scanned.complete()


def _return_large_blocks() -> None:
    """Make glibc give every block of 128 KiB or more back to the system when it is freed. By default it
    raises that threshold to the size of the largest block freed so far, so after the first multi-MB read
    (a kernel, an ESP binary) the next ones come from the heap and stay resident once freed."""
    import ctypes

    with suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL(None).mallopt(-3, 128 << 10)  # M_MMAP_THRESHOLD


NO_BUILD = Unknown("an image does not record how it was built: lint its recipe for the build settings")


def _digest(path: Path, progress: Progress | None) -> str:
    h = hashlib.sha256()
    total, done = path.stat().st_size, 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
            done += len(block)
            if progress:
                progress("sha256 of the image", done, total)
    return "sha256:" + h.hexdigest()


def _facts(path: Path, disk: Disk, options: ScanOptions) -> Scanned:
    digest: str | Unknown = Unknown("not computed (use --digest)")
    if options.known_digest:
        digest = "sha256:" + options.known_digest
    elif options.digest:
        digest = _digest(path, options.progress)
    target = Target(kind="image", name=path.name, digest=digest)
    choice = find_root(disk, None, by_os_release=False)
    if choice.partition is None:  # no DPS root: the boot entry's root= says which, else an os-release
        first = bootscan.scan_boot(disk, None, None)
        spec = (
            next((p.value for p in first.cmdline if p.name == "root" and isinstance(p.value, str)), None)
            if isinstance(first.cmdline, Items)
            else None
        )
        choice = find_root(disk, spec)
    scanned = Scanned(
        Facts(
            target=target,
            packages=PENDING,
            files=PENDING,
            rootfs=PENDING,
            verity=PENDING,
            cmdline=PENDING,
            boot=PENDING,
            kernel=PENDING,
            patches=PENDING,
            mounts=PENDING,
            partitions=PENDING,
        )
    )
    # first: the hashing workers fork from a small process, and hash while the rest is read
    verity = _start_verity(choice, options)
    if not isinstance(verity, Verity | Unknown):
        scanned.cancels.append(verity.level0.cancel)
    try:
        _read(scanned, choice, verity, disk, options)
    except BaseException:
        scanned.cancel()
        raise
    return scanned


PENDING = Unknown("still being read")


def _read(
    scanned: Scanned, choice: RootChoice, verity: Verity | Unknown | PendingVerity, disk: Disk, options: ScanOptions
) -> None:
    root_tree, tree_reason = _root_tree(disk, choice)
    scanned.root = root_tree
    _start_boot(scanned, disk, root_tree, choice, options)
    scanned.later["measurements"] = functools.cache(lambda: _measurements(disk))
    part = choice.partition
    if part is None:
        unknown = Unknown(f"root file system not found: {choice.reason}")
        scanned.facts = replace(
            scanned.facts,
            packages=unknown,
            files=unknown,
            rootfs=unknown,
            verity=unknown,
            patches=Unknown("an image carries no patch series; kernel markers stand in"),
            mounts=unknown,
            partitions=_partitions(disk),
            os=unknown,
            build=NO_BUILD,
        )
        return
    root_format = part.content
    rootfs_fact = RootFs(
        format=root_format.value,
        read_only=_read_only(root_format),
        partition=part.name,
        partition_type=part.entry.type_name,
        verity=choice.verity is not None,
        found_by=choice.found_by,
        where=part.where(),
    )
    packages: Any
    files: Any
    mounts: Any
    system: Any
    if root_tree is None:
        reason = Unknown(tree_reason, part.where())
        packages = files = mounts = system = reason
    else:
        packages = _safely(lambda: rootfs.packages(root_tree, part))
        files = rootfs.files(root_tree, part)
        mounts = _safely(lambda: rootfs.mounts(root_tree, part, root_format, disk))
        system = _safely(lambda: rootfs.system(root_tree, part))
    scanned.later["verity"] = functools.cache(lambda: _verity(verity, choice, options, disk))
    scanned.facts = replace(
        scanned.facts,
        packages=packages,
        files=files,
        rootfs=rootfs_fact,
        patches=Unknown("an image carries no patch series; kernel markers stand in"),
        mounts=mounts,
        partitions=_partitions(disk),
        os=system,
        build=NO_BUILD,
    )


def _measurements(disk: Disk) -> Measurements | Unknown:
    """What a boot of the default entry extends (computed only when a rule or the evidence asks)."""
    from cvmlint.measure.predict import as_fact, predict

    try:
        return as_fact(predict(disk))
    except CvmlintError as err:
        return Unknown(f"the boot chain's measurements cannot be predicted: {err}")


def _safely(make: Callable[[], object]) -> object:
    try:
        return make()
    except CvmlintError as err:
        return Unknown(f"could not be read: {err}")


def _root_tree(disk: Disk, choice: RootChoice) -> tuple[Tree | None, str]:
    part = choice.partition
    if part is None:
        return None, choice.reason
    if part.content.is_luks:
        return None, f"the root partition is {part.content}-encrypted; cvmlint reads no keys"
    try:
        return disk.tree(part), ""
    except CvmlintError as err:
        return None, f"the root file system cannot be read: {err}"


def _read_only(fmt: Content) -> bool | Unknown:
    if fmt.read_only:
        return True
    if fmt.is_luks:
        return Unknown("the root is encrypted; its file system cannot be identified")
    return False  # ext4, xfs, btrfs: writable file systems, whatever fstab says (root can remount them rw)


def _partitions(disk: Disk) -> Items[Partition]:
    out = []
    for p in disk.partitions:
        luks = {Content.LUKS2: 2, Content.LUKS1: 1}.get(p.content, 0)
        out.append(
            Partition(
                name=p.name,
                type=p.entry.type_name,
                number=p.entry.number,
                fs=p.content.value,
                size=p.entry.size,
                read_only=p.entry.read_only,
                encrypted=luks > 0,
                luks_version=luks,
                where=Provenance(partition=p.name, offset=p.entry.start, detail="GPT entry"),
            )
        )
    return Items(out, Provenance(partition="gpt", offset=disk.table.sector_size))


def _start_verity(choice: RootChoice, options: ScanOptions) -> Verity | Unknown | PendingVerity:
    """The verity fact, or the hashing of the root started in worker processes (finished by _verity)."""
    from cvmlint.image.verity import read_superblock, start_verify

    root, hashes = choice.partition, choice.verity
    if root is None or hashes is None:
        return Unknown("no dm-verity hash partition is paired with the root")
    if root.source is None or hashes.source is None:
        return Unknown("the root or hash partition lies outside the image")
    try:
        sb = read_superblock(hashes.source)
    except CvmlintError as err:
        return Unknown(f"the hash partition has no usable verity superblock: {err}", hashes.where())
    if not options.verity:
        return Unknown("root hash not computed (--no-verity)", _superblock_where(hashes))
    return start_verify(root.source, hashes.source, sb)


def _superblock_where(hashes: DiskPartition) -> Provenance:
    return Provenance(partition=hashes.name, offset=hashes.entry.start, detail="verity superblock")


def _verity(
    pending: Verity | Unknown | PendingVerity, choice: RootChoice, options: ScanOptions, disk: Disk
) -> Verity | Unknown:
    from cvmlint.image.verity import PendingVerity, dps_uuids, finish_verify, read_signature_partition

    if not isinstance(pending, PendingVerity):
        return pending
    root, hashes = choice.partition, choice.verity
    assert root is not None and hashes is not None
    where = _superblock_where(hashes)
    result = finish_verify(pending, progress=options.progress)
    uuids = dps_uuids(result.stored_root_hash) if len(result.stored_root_hash) >= 64 else ("", "")
    signed: bool | Unknown = False
    sig = next((p for p in disk.partitions if p.entry.type_name == f"{root.entry.type_name}-verity-sig"), None)
    if sig is not None and sig.source is not None:
        try:
            signed = read_signature_partition(sig.source).root_hash == result.stored_root_hash
        except CvmlintError as err:
            signed = Unknown(f"signature partition unreadable: {err}")
    bad = (
        Provenance(partition=hashes.name, detail=f"data block {result.first_bad_data_block}")
        if result.first_bad_data_block is not None
        else where
    )
    return Verity(
        root_hash=result.stored_root_hash,
        data_root_hash=result.root_hash,
        algorithm=result.algorithm,
        data_block_size=result.data_block_size,
        hash_block_size=result.hash_block_size,
        hash_type=result.hash_type,
        tree_valid=result.tree_valid,
        first_bad_block=result.first_bad_data_block,
        uuids_match=uuids == (root.entry.guid, hashes.entry.guid),
        signed=signed,
        where=where,
        field_where={"tree_valid": bad, "first_bad_block": bad},
    )


def _start_boot(scanned: Scanned, disk: Disk, root_tree: Tree | None, choice: RootChoice, options: ScanOptions) -> None:
    """The boot chain and the kernel, read by a forked child while the caller goes on."""
    job = Forked(lambda: _read_boot(disk, root_tree, choice, options.needles))
    scanned.cancels.append(job.cancel)
    result = functools.cache(job.result)

    def kernel() -> Kernel | Unknown:
        ahead = _read_ahead(root_tree)  # while the child still decompresses
        _, ref, read = result()
        if isinstance(read, Unknown):
            return read
        assert not isinstance(ref, Unknown)  # a kernel was read, so the entry named one
        return _kernel(disk, root_tree, ref, *read, ahead=ahead)

    scanned.later["kernel"] = functools.cache(kernel)  # first: its waiting starts with work of its own
    scanned.later["boot"] = lambda: result()[0].boot
    scanned.later["cmdline"] = lambda: result()[0].cmdline


READ_AHEAD_VERSIONS = 4


def _read_ahead(root_tree: Tree | None) -> dict[str, tuple[Items[ConfigOption] | None, Items[Module] | Unknown]]:
    """The config and the modules of each kernel version /usr/lib/modules holds (the usual case: one),
    read before the kernel's own version is known; `_kernel` takes them when the version is one of these."""
    ahead: dict[str, tuple[Items[ConfigOption] | None, Items[Module] | Unknown]] = {}
    if root_tree is None:
        return ahead
    try:
        node = root_tree.lookup("/usr/lib/modules") or root_tree.lookup("/lib/modules")
        if node is None or not node.is_dir:
            return ahead
        names = sorted(
            n for n, number in root_tree.children(node) if n not in (".", "..") and root_tree.inode(number).is_dir
        )
        for version in names[:READ_AHEAD_VERSIONS]:
            modules = _modules(root_tree, version)
            held = modules if isinstance(modules, Unknown) else Items(list(modules), modules.where)
            ahead[version] = (_root_config(root_tree, version), held)
    except CvmlintError:  # read again, and met again, when the kernel's version is known
        return {}
    return ahead


def _read_boot(
    disk: Disk, root_tree: Tree | None, choice: RootChoice, needles: tuple[str, ...]
) -> tuple[bootscan.BootScan, bootscan.KernelRef | Unknown, tuple[KernelImage, Provenance, KernelStrings] | Unknown]:
    boot = bootscan.scan_boot(disk, root_tree, choice.partition)
    ref = boot.kernel
    if isinstance(ref, Unknown):
        return boot, ref, Unknown(f"no kernel: {ref.reason}")
    read = _read_kernel(disk, root_tree, ref, needles)
    ref.data = None  # the kernel's bytes stay here
    return boot, ref, read


def _read_kernel(
    disk: Disk, root_tree: Tree | None, ref: bootscan.KernelRef, needles: tuple[str, ...]
) -> tuple[KernelImage, Provenance, KernelStrings] | Unknown:
    """The kernel image's own facts (its decompressed payload searched once for the policy's strings,
    then let go: tens of MB)."""
    from cvmlint.scan.kernel import data_strings, read_bzimage

    try:
        data, where = bootscan.read_boot_file(disk, root_tree, ref)
        image = read_bzimage(data, str(where))
    except CvmlintError as err:
        return Unknown(f"the default entry's kernel cannot be read: {err}")
    vmlinux, image.vmlinux = image.vmlinux, b""
    strings = KernelStrings(
        data_strings(vmlinux, needles) if vmlinux else [], searched=list(needles) if vmlinux else []
    )
    return image, where, strings


def _kernel(
    disk: Disk,
    root_tree: Tree | None,
    ref: bootscan.KernelRef,
    image: KernelImage,
    where: Provenance,
    strings: KernelStrings,
    ahead: dict[str, tuple[Items[ConfigOption] | None, Items[Module] | Unknown]] | None = None,
) -> Kernel:
    config, modules = (ahead or {}).get(image.version, (None, None))
    params: tuple[str, ...] | Unknown = (
        tuple(sorted(image.params))
        if image.params
        else Unknown(
            "no __setup/__param tables found in the kernel: " + "; ".join(image.problems or ["no section headers"])
        )
    )
    return Kernel(
        version=image.version or Unknown("no version string in the kernel"),
        compression=image.compression,
        boot_protocol=image.boot_protocol,
        config=config or _config(root_tree, image, where, disk, ref),
        params=params,
        modules=modules or _modules(root_tree, image.version),
        strings=strings,
        where=where,
    )


def _config(
    root_tree: Tree | None, image: KernelImage, kernel_where: Provenance, disk: Disk, ref: bootscan.KernelRef
) -> Items[ConfigOption] | Unknown:
    version = image.version
    if root_tree is not None and version and (found := _root_config(root_tree, version)) is not None:
        return found
    if version and ref.section is None:  # a kernel on the ESP: its package's /boot may have been copied there
        found = _esp_config(disk, ref, version)
        if found is not None:
            return found
    if image.config is not None:
        where = Provenance(partition=kernel_where.partition, file=kernel_where.file, detail="IKCONFIG")
        return Items([ConfigOption(name=k, value=v, where=where) for k, v in image.config.items()], where)
    return Unknown(
        f"no /boot/config-{version} or modules config in the root, no config-{version} beside the "
        "kernel, and no IKCONFIG in the kernel"
    )


def _root_config(root_tree: Tree, version: str) -> Items[ConfigOption] | None:
    for path in (f"/boot/config-{version}", f"/usr/lib/modules/{version}/config", f"/lib/modules/{version}/config"):
        node = root_tree.lookup(path)
        if node is not None and node.is_reg:
            return _config_items(root_tree.read(node, limits.get("kernel-config-bytes")), "root", path)
    return None


def _config_items(data: bytes | bytearray | memoryview, partition: str, path: str) -> Items[ConfigOption]:
    from cvmlint.facts.kconfig import parse_config

    values, lines = parse_config(bytes(data).decode("utf-8", "replace"))
    return Items(
        [
            ConfigOption(name=k, value=v, where=Provenance(partition=partition, file=path, line=lines[k]))
            for k, v in values.items()
        ],
        Provenance(partition=partition, file=path),
    )


def _esp_config(disk: Disk, ref: bootscan.KernelRef, version: str) -> Items[ConfigOption] | None:
    """`config-<version>` beside the kernel or at the top of its (FAT) partition."""
    import posixpath

    from cvmlint.image.fat import FatFileSystem

    part = disk.by_name(ref.partition)
    if part is None or part.content is not Content.VFAT or part.source is None:
        return None
    fs = FatFileSystem(part.source)
    for path in (posixpath.join(posixpath.dirname(ref.path), f"config-{version}"), f"/config-{version}"):
        entry = fs.lookup(path)
        if entry is not None and not entry.is_dir:
            return _config_items(fs.read(entry, limits.get("kernel-config-bytes")), part.name, path)
    return None


def _modules(root_tree: Tree | None, version: str) -> Items[Module] | Unknown:
    if root_tree is None or not version:
        return Unknown("the root file system (with /usr/lib/modules) cannot be read")
    base = next(
        (b for b in (f"/usr/lib/modules/{version}", f"/lib/modules/{version}") if root_tree.lookup(b) is not None), None
    )
    if base is None:
        return Unknown(f"no /usr/lib/modules/{version} in the root")
    tree: Tree = root_tree

    def walk() -> Iterator[Module]:
        from cvmlint.scan.kernel import module_signed

        for path, node in tree.walk(base):
            if node.is_reg and path.endswith((".ko", ".ko.xz", ".ko.zst", ".ko.gz")):
                try:
                    if path.endswith(".ko"):  # the trailer is the file's last 28 bytes
                        data = tree.read_at(node, node.size - 28, 28)
                    else:
                        data = tree.read(node, limits.get("module-bytes"))
                    signed: bool | Unknown = module_signed(data, path)
                except (CvmlintError, OSError, ValueError) as err:
                    signed = Unknown(f"unreadable: {err}")
                yield Module(path=path, signed=signed, where=Provenance(partition="root", file=path))

    return Items(factory=walk, where=Provenance(partition="root", file=base))


__all__ = ["ScanOptions", "scan_image"]
