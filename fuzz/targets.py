"""Fuzz targets: one per reader, each taking raw bytes as an attacker would hand them over.

A target returns normally or raises a CvmlintError (a clear refusal: exit 2 with a message); any
other exception is a defect. Each target also drives the reader the way a scan does (walk every
directory, read every file's head, resolve links), so a malformed structure deep inside is reached.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from cvmlint.errors import CvmlintError
from cvmlint.image.source import BytesSource

Target = Callable[[bytes], None]


def _walk_tree(fs: object) -> None:
    from cvmlint.scan.disk import Tree

    tree: Tree = fs  # type: ignore[assignment]
    for n, (path, node) in enumerate(tree.walk("/")):
        if n > 2000:
            break
        if node.is_reg:
            tree.read_at(node, 0, 4096)
        elif node.is_symlink:
            tree.readlink(node)
            tree.lookup(path)
        tree.xattrs(node)  # type: ignore[attr-defined]


def erofs(data: bytes) -> None:
    from cvmlint.image.erofs import ErofsFileSystem

    _walk_tree(ErofsFileSystem(BytesSource(data)))


def ext4(data: bytes) -> None:
    from cvmlint.image.ext4 import Ext4FileSystem

    _walk_tree(Ext4FileSystem(BytesSource(data)))


def fat(data: bytes) -> None:
    from cvmlint.image.fat import FatFileSystem

    fs = FatFileSystem(BytesSource(data))
    for n, entry in enumerate(fs.walk()):
        if n > 2000:
            break
        if not entry.is_dir and entry.size <= 1 << 20:
            fs.read(entry)
            fs.lookup(entry.path)


def gpt(data: bytes) -> None:
    from cvmlint.image.gpt import read_partition_table

    read_partition_table(BytesSource(data))


def disk(data: bytes) -> None:
    """The whole disk layer: partition table, file-system identification, root choice."""
    from cvmlint.scan.disk import find_root, open_disk

    found = open_disk(BytesSource(data))
    find_root(found, None, by_os_release=False)


def squashfs(data: bytes) -> None:
    from cvmlint.image.squashfs import SquashfsFileSystem

    fs = SquashfsFileSystem(BytesSource(data))
    for n, (path, node) in enumerate(fs.walk("/")):
        if n > 2000:
            break
        if node.is_reg:
            fs.read(node, 1 << 24)
            fs.read_at(node, node.size // 2, 100)
        elif node.is_symlink:
            fs.readlink(node)
            fs.lookup(path)
        fs.xattrs(node)


def verity(data: bytes) -> None:
    from cvmlint.image.verity import read_signature_partition, read_superblock, verify

    src = BytesSource(data)
    with contextlib.suppress(CvmlintError):
        read_signature_partition(src)
    sb = read_superblock(src)
    claimed = sb.data_blocks * sb.data_block_size
    verify(BytesSource(bytes(min(claimed, 1 << 20))), src, sb, workers=1)


def luks(data: bytes) -> None:
    from cvmlint.image.luks import read_header

    read_header(BytesSource(data))


def qcow2(data: bytes) -> None:
    from cvmlint.image.qcow2 import Qcow2Source

    src = Qcow2Source(BytesSource(data))
    for offset in (0, 512, 1 << 16, 1 << 20, max(0, src.size - 4096)):
        src.pread(offset, 4096)


def vhd(data: bytes) -> None:
    from cvmlint.image.vhd import VhdSource

    src = VhdSource(BytesSource(data))
    for offset in (0, 512, 1 << 21, max(0, src.size - 4096)):
        src.pread(offset, 4096)


def tar(data: bytes) -> None:
    """A tarball container (plain or compressed), through a file as the CLI gets it."""
    from cvmlint.image.container import open_image

    with tempfile.NamedTemporaryFile(prefix="cvmlint-fuzz-") as fh:
        fh.write(data)
        fh.flush()
        with open_image(fh.name, tmpdir=os.path.dirname(fh.name)) as (src, _kind):
            src.pread(0, 4096)


def bzimage(data: bytes) -> None:
    from cvmlint.scan.kernel import read_bzimage

    image = read_bzimage(data, "fuzz")
    _ = image.version, image.params, image.config


def module(data: bytes) -> None:
    from cvmlint.scan.kernel import module_signed

    for name in ("fuzz.ko", "fuzz.ko.xz", "fuzz.ko.gz", "fuzz.ko.zst"):  # the extension picks the decompressor
        with contextlib.suppress(CvmlintError):
            module_signed(data, name)


def pe(data: bytes) -> None:
    from cvmlint.measure.authenticode import authenticode
    from cvmlint.scan.pe import parse_pe

    image = parse_pe(data, "fuzz")
    _ = image.signed
    authenticode(data, "sha256", "fuzz")


def eventlog(data: bytes) -> None:
    """A TCG event log, parsed and replayed in every bank it has."""
    from cvmlint.measure.eventlog import parse_event_log

    log = parse_event_log(data)
    for bank in log.banks:
        log.replay(bank)


def cpio(data: bytes) -> None:
    from cvmlint.scan.initrd import list_initrd

    list_initrd(data, "fuzz")


def grub(data: bytes) -> None:
    from cvmlint.scan.grub import GrubFile, read_menu

    text = data.decode("utf-8", "replace")

    def load(device: str, path: str) -> GrubFile | None:
        return GrubFile(device, path, text) if path.endswith(".cfg") else None

    menu = read_menu(load, lambda device, path: device, [("esp", "/EFI/debian/grub.cfg")], {})
    menu.default_entry()
    _grub_measured(data)


def _grub_measured(data: bytes) -> None:
    """The same text as the grub.cfg `cvmlint measure` follows, booted by GRUB 2.06 and 2.12: every other
    file exists (its own path as content), every search finds the second partition."""
    from cvmlint.measure.grub import NotPredicted, measurements
    from cvmlint.scan.grub_boot import Firmware

    class Everywhere:
        esp = "hd0,gpt1"

        def read(self, device: str, path: str) -> bytes | None:
            if path.endswith("x86_64-efi/grub.cfg") or path == "/EFI/BOOT/grub.cfg" or path.endswith("/x86_64-efi"):
                return None
            return data if path.endswith("grub.cfg") else path.encode()

        def exists(self, device: str, path: str) -> bool:
            return self.read(device, path) is not None or path in ("/EFI/debian",)

        def find(self, kind: str, value: str) -> str:
            return "hd0,gpt2"

    firmware = Firmware(frozenset({"part_gpt", "ext2", "gzio", "all_video"}), frozenset({"fonts/unicode.pf2"}))
    for version in ("2.06", "2.12"):
        with contextlib.suppress(NotPredicted):
            measurements(Everywhere(), firmware, version=version)


def dpkg(data: bytes) -> None:
    from cvmlint.scan.rootfs import _dpkg_paragraphs

    for _ in _dpkg_paragraphs(data.decode("utf-8", "replace"), "root"):
        pass


def recipe(data: bytes) -> None:
    """mkosi.conf (and a repart definition) of a recipe, written to a temporary tree and read as lint does."""
    from cvmlint.recipe.facts import recipe_facts

    config, _, repart = data.partition(b"\n---\n")
    with tempfile.TemporaryDirectory(prefix="cvmlint-fuzz-") as tmp:
        Path(tmp, "mkosi.conf").write_bytes(config)
        Path(tmp, "mkosi.repart").mkdir()
        Path(tmp, "mkosi.repart", "10-root.conf").write_bytes(repart)
        recipe_facts(Path(tmp), display_base=Path(tmp))


def copyright(data: bytes) -> None:
    """A package's copyright file as `cvmlint sbom` reads an image's: its DEP-5 licences, as SPDX."""
    from cvmlint.sbom import copyright_licences, spdx_expression

    spdx_expression(copyright_licences(data))


def policy(data: bytes) -> None:
    """A policy file, parsed and checked."""
    from cvmlint.policy.loader import load_policy

    with tempfile.TemporaryDirectory(prefix="cvmlint-fuzz-") as tmp:
        Path(tmp, "p.cvmp").write_bytes(data)
        load_policy(Path(tmp, "p.cvmp"))


def record(data: bytes) -> None:
    """A build record as `cvmlint rebuild` reads it (a JSON file), then its packages; and the same bytes as a
    Packages index the rebuild searches."""
    from cvmlint.build.pinned import _wanted, from_json
    from cvmlint.build.rebuild import load_record

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.build.json"
        path.write_bytes(data)
        first = load_record(path)
        from_json(first.inputs.get("packages"))
        from cvmlint.build.rebuild import _check_recipe_files

        with contextlib.suppress(CvmlintError):  # the recipe files it names, hashed within record-bytes
            _check_recipe_files(first.inputs.get("files") or [])
    text = data.decode("utf-8", "replace")
    list(_wanted(text.split("\n\n"), {"libc6", "busybox-static"}))


def bundle(data: bytes) -> None:
    """An evidence bundle (a tar file) as `evidence verify` and `evidence replay` read it; and the same
    members as a directory bundle."""
    from cvmlint.evidence.verify import replay_bundle, verify_bundle

    with tempfile.TemporaryDirectory(prefix="cvmlint-fuzz-") as tmp:
        path = Path(tmp) / "bundle.tar"
        path.write_bytes(data)
        verify_bundle(path, None, None, allow_unsigned=True)
        with contextlib.suppress(CvmlintError):
            replay_bundle(path)
        from cvmlint.evidence.bundle import read_bundle

        directory = Path(tmp) / "bundle"
        for name, content in read_bundle(path).items():  # names checked by read_bundle: plain, relative
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_bytes(content)
        verify_bundle(directory, None, None, allow_unsigned=True)
        replay_bundle(directory)


def uki(data: bytes) -> None:
    """A UKI as `cvmlint measure` reads it: the PE, its Authenticode digest in both banks, the stub's version,
    the sections systemd-stub 252 and 257 measure (in memory), the initrd and command line 257 hands Linux,
    and shim's version string."""
    from cvmlint.measure import predict, stub
    from cvmlint.measure.authenticode import authenticode
    from cvmlint.scan.pe import parse_pe, section, section_in_memory

    image = parse_pe(data, "fuzz.efi")
    for bank in ("sha256", "sha384"):
        authenticode(data, bank, "fuzz.efi")
    predict._stub_version(data, image)
    contents = {}
    for name in (*predict.STUB_SECTIONS[252], *stub.SECTIONS, ".pcrsig", ".sdmagic", ".data.ident"):
        if name in image.sections:
            contents[name] = section_in_memory(data, image, name)
            predict._SHIM_VERSION.search(section(data, image, name))
    stub.initrd(contents)
    if ".cmdline" in image.sections:
        from cvmlint.facts.cmdline import parse_cmdline
        from cvmlint.facts.provenance import Provenance

        text = section(data, image, ".cmdline").decode("utf-8", "replace")
        parse_cmdline(text, Provenance())
        predict._utf16z(stub.cmdline(contents[".cmdline"]))
        predict._shown(text)


TARGETS: dict[str, Target] = {
    f.__name__: f
    for f in (
        erofs,
        ext4,
        fat,
        gpt,
        disk,
        squashfs,
        verity,
        luks,
        qcow2,
        vhd,
        tar,
        bzimage,
        module,
        pe,
        cpio,
        eventlog,
        grub,
        dpkg,
        copyright,
        recipe,
        policy,
        record,
        bundle,
        uki,
    )
}
"""Every target by name; the reader family each belongs to is its name."""


def run_one(name: str, data: bytes) -> None:
    """Run a target on one input: a CvmlintError is an accepted refusal; anything else propagates."""
    with contextlib.suppress(CvmlintError):
        TARGETS[name](data)
