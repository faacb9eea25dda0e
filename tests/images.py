"""Real test disk images, built from Debian packages with the real tools and cached by this file's hash.

    hardened-grub   signed shim -> signed GRUB -> Debian cloud kernel; erofs root (minbase, kernel
                    modules, tmpfs mount units) + dm-verity; roothash= on the GRUB command line
    hardened-uki    the same root; shim -> systemd-boot -> a UKI (objcopy of systemd's stub); both
                    signed with sbsign by a key made for the test (Debian's systemd-boot is unsigned)
    cloud           shim -> GRUB stub -> ext4 root (debootstrap with gcc, python3, the kernel); no verity
    luks-root       ESP + a DPS root partition holding LUKS2 (cannot be read without the key)
    unknown-root    ESP + a DPS root partition of random bytes (no known file system)

Variants take a name and the changes (command line, extra files, a flipped byte). Nothing is
mounted and nothing from the images is executed; only the packages' files are unpacked.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.tools import CACHE, minbase_tree, mirror, require, run, secure_boot_key

BUILDER_KEY = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
IMAGES = CACHE / f"images-{BUILDER_KEY}"
PAYLOAD_PACKAGES = (
    "linux-image-cloud-amd64",
    "shim-signed",
    "shim-helpers-amd64-signed",
    "grub-efi-amd64-signed",
    "systemd-boot-efi",
)
CLOUD_RECIPE = "debootstrap --variant=minbase --include=gcc,python3,linux-image-cloud-amd64 bookworm"
MIB = 1 << 20
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
ROOT_TYPE = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
VERITY_TYPE = "2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5"
LINUX_TYPE = "0FC63DAF-8483-4772-8e79-3D69D8477DE4"
HARDENED_CMDLINE = "ro lockdown=integrity module.sig_enforce=1 roothash={roothash} console=ttyS0"
FIXED_SALT = "5d1b0a7e" * 8
CLOUD_GRUB_CFG = """set default=0
set timeout=5

menuentry 'Debian GNU/Linux' --class debian {{
\tsearch --no-floppy --fs-uuid --set=root {fs_uuid}
\tlinux\t/boot/vmlinuz-{kver} root=PARTUUID={part_uuid} ro console=tty0 console=ttyS0,115200
\tinitrd\t/boot/initrd.img-{kver}
}}
"""
MOUNT_UNIT = (
    "[Unit]\nDescription={what}\n\n[Mount]\nWhat=tmpfs\nWhere={where}\nType=tmpfs\nOptions=mode={mode},nosuid,nodev\n"
)


@dataclass
class Payload:
    """Files unpacked from the Debian packages the images boot with."""

    root: Path
    kver: str

    @property
    def kernel(self) -> Path:
        return self.root / f"boot/vmlinuz-{self.kver}"

    def file(self, rel: str) -> Path:
        return self.root / rel


def payload() -> Payload:
    """Download (apt-get download) and unpack the boot-path packages, once."""
    key = hashlib.sha256(" ".join(PAYLOAD_PACKAGES).encode()).hexdigest()[:12]
    target = CACHE / f"payload-{key}"
    if not (target / "done").exists():
        require("apt-get", "dpkg-deb")
        debs = CACHE / f"debs-{key}"
        shutil.rmtree(debs, ignore_errors=True)
        debs.mkdir(parents=True)
        _download(debs, *PAYLOAD_PACKAGES)
        meta = next(debs.glob("linux-image-cloud-amd64_*.deb"))
        kernel_pkg = run("dpkg-deb", "-f", meta, "Depends").split()[0]
        _download(debs, kernel_pkg)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for deb in sorted(debs.glob("*.deb")):
            run("dpkg-deb", "-x", deb, target)
        (target / "done").write_text("ok")
    kver = next(p.name.removeprefix("vmlinuz-") for p in (target / "boot").glob("vmlinuz-*"))
    return Payload(target, kver)


def _download(directory: Path, *packages: str) -> None:
    try:
        run("apt-get", "download", *packages, cwd=directory)
    except AssertionError:
        run("apt-get", "update", "-qq")
        run("apt-get", "download", *packages, cwd=directory)


def cloud_tree() -> Path:
    """A debootstrap'd bookworm with gcc, python3 and the cloud kernel installed (dpkg knows them)."""
    key = hashlib.sha256(CLOUD_RECIPE.encode()).hexdigest()[:12]
    tree = CACHE / f"cloud-{key}"
    if not (tree / "usr/lib/os-release").exists():
        require("debootstrap")
        tmp = CACHE / f"cloud-{key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        argv = CLOUD_RECIPE.split()
        run(*argv, tmp, mirror())
        tmp.rename(tree)
    return tree


@dataclass
class Variant:
    """How one image differs from its base."""

    cmdline: str = HARDENED_CMDLINE
    extra_files: dict[str, Path] = field(default_factory=dict)
    """Paths in the root -> host files copied there (with mode 0755)."""
    flip_root_byte: int | None = None
    """Flip one byte of the root partition's data at this offset (after the hash tree was made)."""
    roothash_override: str | None = None


def _sfdisk(image: Path, size: int, parts: list[dict[str, str]]) -> None:
    with open(image, "wb") as fh:
        fh.truncate(size)
    lines = ["label: gpt", "unit: sectors", "sector-size: 512", "first-lba: 2048"]
    for p in parts:
        lines.append(", ".join(f"{k}={v}" for k, v in p.items()))
    script = image.with_suffix(".sfdisk")
    script.write_text("\n".join(lines) + "\n")
    run("sh", "-c", f"sfdisk -q '{image}' < '{script}'")


def _place(image: Path, part: Path, offset: int) -> None:
    run("dd", f"if={part}", f"of={image}", "bs=1M", f"seek={offset // MIB}", "conv=notrunc,sparse", "status=none")


def _esp(work: Path, files: dict[str, bytes | Path], size_mib: int = 96) -> Path:
    tree = work / "esp"
    shutil.rmtree(tree, ignore_errors=True)
    for rel, content in files.items():
        dest = tree / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, dest)
        else:
            dest.write_bytes(content)
    image = work / "esp.img"
    image.unlink(missing_ok=True)
    run("mkfs.vfat", "-C", "-F", "32", "-n", "ESP", "--invariant", "-i", "12345678", image, str(size_mib * 1024))
    run("mcopy", "-s", "-m", "-i", image, *sorted(tree.iterdir()), "::/")
    return image


def _initrd(work: Path, pay: Payload) -> Path:
    """Two concatenated cpio segments: plain (an early-cpio-style file), then zstd (init + modules)."""
    early, main = work / "initrd-early", work / "initrd-main"
    for d in (early, main):
        shutil.rmtree(d, ignore_errors=True)
    (early / "kernel/x86/microcode").mkdir(parents=True)
    (early / "kernel/x86/microcode/.placeholder").write_text("no microcode in this test image\n")
    mods = main / f"usr/lib/modules/{pay.kver}"
    (mods / "kernel").mkdir(parents=True)
    for rel in ("kernel/fs/erofs/erofs.ko", "kernel/drivers/md/dm-verity.ko"):
        src = pay.root / f"lib/modules/{pay.kver}" / rel
        if src.exists():
            shutil.copyfile(src, mods / "kernel" / src.name)
    (main / "init").write_text("#!/bin/sh\nexec /sbin/init\n")
    out = work / "initrd.img"
    run(
        "sh",
        "-c",
        f"cd '{early}' && find . | sort | cpio --quiet -o -H newc --reproducible > '{out}' && "
        f"cd '{main}' && find . | sort | cpio --quiet -o -H newc --reproducible | zstd -q -19 >> '{out}'",
    )
    return out


def _hardened_root(work: Path, pay: Payload, extra_files: dict[str, Path]) -> Path:
    """The minbase tree plus the kernel's modules and config, tmpfs mount units, variant files."""
    tree = work / "root"
    shutil.rmtree(tree, ignore_errors=True)
    run("cp", "-a", minbase_tree(), tree)
    run("cp", "-a", pay.root / "lib/modules", tree / "usr/lib/")
    for name in (f"config-{pay.kver}", f"System.map-{pay.kver}"):
        shutil.copyfile(pay.root / "boot" / name, tree / "boot" / name)
    units = tree / "etc/systemd/system"
    wants = units / "local-fs.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    for where, unit, mode in (
        ("/tmp", "tmp.mount", "1777"),
        ("/var/tmp", "var-tmp.mount", "1777"),
        ("/var/log", "var-log.mount", "0755"),
    ):
        (units / unit).write_text(MOUNT_UNIT.format(what=f"Volatile {where}", where=where, mode=mode))
        (wants / unit).symlink_to(f"../{unit}")
    for rel, src in extra_files.items():
        dest = tree / rel.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        dest.chmod(0o755)
    return tree


def signing_key() -> tuple[Path, Path]:
    """The tests' Secure Boot signing key (CN=cvmlint test secure boot key), for sbsign."""
    return secure_boot_key()


def _signed(work: Path, unsigned: Path) -> Path:
    require("sbsign")
    key, cert = signing_key()
    out = work / (unsigned.stem + ".signed.efi")
    run("sbsign", "--key", key, "--cert", cert, "--output", out, unsigned)
    return out


def _uki(work: Path, pay: Payload, cmdline: str, initrd: Path) -> Path:
    require("objcopy")
    stub = pay.file("usr/lib/systemd/boot/efi/linuxx64.efi.stub")
    (work / "osrel").write_bytes((minbase_tree() / "usr/lib/os-release").read_bytes())
    (work / "cmdline").write_text(cmdline)
    (work / "uname").write_text(pay.kver)
    out = work / "uki.efi"
    run(
        "objcopy",
        "--add-section",
        f".osrel={work / 'osrel'}",
        "--change-section-vma",
        ".osrel=0x20000",
        "--add-section",
        f".cmdline={work / 'cmdline'}",
        "--change-section-vma",
        ".cmdline=0x30000",
        "--add-section",
        f".uname={work / 'uname'}",
        "--change-section-vma",
        ".uname=0x40000",
        "--add-section",
        f".linux={pay.kernel}",
        "--change-section-vma",
        ".linux=0x2000000",
        "--add-section",
        f".initrd={initrd}",
        "--change-section-vma",
        ".initrd=0x3000000",
        stub,
        out,
    )
    return out


@dataclass
class RootPartitions:
    erofs: Path
    verity: Path
    roothash: str


def _root_partitions(pay: Payload, extra_files: dict[str, Path]) -> RootPartitions:
    """The erofs root and its verity hash partition, built once per set of extra files."""
    key = hashlib.sha256(repr(sorted((k, str(v)) for k, v in extra_files.items())).encode()).hexdigest()[:8]
    work = IMAGES / f"root-{key}"
    erofs, verity = work / "root.erofs", work / "root.verity"
    if not (work / "roothash").exists():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        tree = _hardened_root(work, pay, extra_files)
        run("mkfs.erofs", "--quiet", "-zlz4", "-T1700000000", "-U", "9d7f1b4e-5c3a-4e21-8f6d-0a1b2c3d4e5f", erofs, tree)
        out = run(
            "veritysetup",
            "format",
            "--salt",
            FIXED_SALT,
            "--uuid",
            "11111111-2222-3333-4444-555555555555",
            erofs,
            verity,
        )
        shutil.rmtree(tree)
        (work / "roothash").write_text(
            next(line.split()[-1] for line in out.splitlines() if line.startswith("Root hash"))
        )
    return RootPartitions(erofs, verity, (work / "roothash").read_text())


def hardened(name: str = "hardened-grub", uki: bool = False, variant: Variant | None = None) -> Path:
    """A hardened image: ESP + erofs root + verity, booting by GRUB (or a UKI)."""
    variant = variant or Variant()
    image = IMAGES / f"{name}.raw"
    if image.exists():
        return image
    pay = payload()
    rootp = _root_partitions(pay, variant.extra_files)
    work = IMAGES / f"{name}.work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    roothash = rootp.roothash
    cmdline = variant.cmdline.format(roothash=variant.roothash_override or roothash)
    esp = _esp(work, _boot_files(work, pay, cmdline, uki))
    esp_mib = esp.stat().st_size // MIB
    root_mib = -(-rootp.erofs.stat().st_size // MIB)
    verity_mib = -(-rootp.verity.stat().st_size // MIB)
    parts = [
        {
            "start": str(2048),
            "size": str(esp_mib * 2048),
            "type": ESP_TYPE,
            "name": "esp",
            "uuid": "0e1e2e3e-4e5e-4e6e-8e7e-8e9eaebecede",
        },
        {
            "start": str((1 + esp_mib) * 2048),
            "size": str(root_mib * 2048),
            "type": ROOT_TYPE,
            "name": "root-x86-64",
            "uuid": str(uuid.UUID(roothash[:32])),
            "attrs": '"GUID:60"',
        },
        {
            "start": str((1 + esp_mib + root_mib) * 2048),
            "size": str(verity_mib * 2048),
            "type": VERITY_TYPE,
            "name": "root-x86-64-verity",
            "uuid": str(uuid.UUID(roothash[32:])),
            "attrs": '"GUID:60"',
        },
    ]
    total = (2 + esp_mib + root_mib + verity_mib) * MIB
    tmp = work / "disk.raw"
    _sfdisk(tmp, total, parts)
    _place(tmp, esp, MIB)
    _place(tmp, rootp.erofs, (1 + esp_mib) * MIB)
    _place(tmp, rootp.verity, (1 + esp_mib + root_mib) * MIB)
    if variant.flip_root_byte is not None:
        with open(tmp, "r+b") as fh:
            fh.seek((1 + esp_mib) * MIB + variant.flip_root_byte)
            byte = fh.read(1)
            fh.seek(-1, os.SEEK_CUR)
            fh.write(bytes([byte[0] ^ 0xFF]))
    image.with_suffix(".roothash").write_text(roothash)
    tmp.rename(image)
    shutil.rmtree(work)
    return image


def _boot_files(work: Path, pay: Payload, cmdline: str, uki: bool) -> dict[str, bytes | Path]:
    initrd = _initrd(work, pay)
    files: dict[str, bytes | Path] = {
        "EFI/BOOT/BOOTX64.EFI": pay.file("usr/lib/shim/shimx64.efi.signed"),
        "EFI/BOOT/mmx64.efi": pay.file("usr/lib/shim/mmx64.efi.signed"),
    }
    if uki:
        files["EFI/BOOT/grubx64.efi"] = _signed(work, pay.file("usr/lib/systemd/boot/efi/systemd-bootx64.efi"))
        files["loader/loader.conf"] = b"timeout 0\ndefault debian-hardened.efi\n"
        files["EFI/Linux/debian-hardened.efi"] = _signed(work, _uki(work, pay, cmdline, initrd))
    else:
        grub_cfg = (
            f"set timeout=0\nset default=0\n\nmenuentry 'Debian hardened' {{\n"
            f"    linux /vmlinuz-{pay.kver} {cmdline}\n    initrd /initrd.img-{pay.kver}\n}}\n"
        ).encode()
        files.update(
            {
                "EFI/BOOT/grubx64.efi": pay.file("usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"),
                "EFI/BOOT/grub.cfg": grub_cfg,
                "EFI/debian/grub.cfg": grub_cfg,
                f"vmlinuz-{pay.kver}": pay.kernel,
                f"initrd.img-{pay.kver}": initrd,
            }
        )
    return files


def cloud(name: str = "cloud") -> Path:
    """A general-purpose cloud-like image: ESP with shim + GRUB stub, ext4 root with apt, gcc, python3."""
    image = IMAGES / f"{name}.raw"
    if image.exists():
        return image
    pay = payload()
    tree_src = cloud_tree()
    work = IMAGES / f"{name}.work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tree = work / "root"
    run("cp", "-a", tree_src, tree)
    kver = next(p.name.removeprefix("vmlinuz-") for p in (tree / "boot").glob("vmlinuz-*"))
    fs_uuid, part_uuid = "3a1e5f0c-7b2d-4c8e-9f10-223344556677", "7c6b5a49-3827-4615-8493-a2b1c0d9e8f7"
    (tree / "boot/grub").mkdir(parents=True, exist_ok=True)
    (tree / "boot/grub/grub.cfg").write_text(CLOUD_GRUB_CFG.format(fs_uuid=fs_uuid, kver=kver, part_uuid=part_uuid))
    (tree / "etc/fstab").write_text(
        f"PARTUUID={part_uuid} / ext4 rw,discard,errors=remount-ro 0 1\n"
        "PARTUUID=0e1e2e3e-4e5e-4e6e-8e7e-8e9eaebecede /boot/efi vfat defaults 0 2\n"
    )
    root = work / "root.ext4"
    size_mib = int(run("du", "-sm", tree).split()[0]) * 3 // 2 + 64
    run("mkfs.ext4", "-q", "-U", fs_uuid, "-d", tree, root, f"{size_mib}M")
    stub = (f"search.fs_uuid {fs_uuid} root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n").encode()
    esp = _esp(
        work,
        {
            "EFI/BOOT/BOOTX64.EFI": pay.file("usr/lib/shim/shimx64.efi.signed"),
            "EFI/BOOT/grubx64.efi": pay.file("usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"),
            "EFI/debian/grub.cfg": stub,
        },
        64,
    )
    esp_mib = esp.stat().st_size // MIB
    parts = [
        {
            "start": "2048",
            "size": str(esp_mib * 2048),
            "type": ESP_TYPE,
            "uuid": "0e1e2e3e-4e5e-4e6e-8e7e-8e9eaebecede",
        },
        {"start": str((1 + esp_mib) * 2048), "size": str(size_mib * 2048), "type": LINUX_TYPE, "uuid": part_uuid},
    ]
    tmp = work / "disk.raw"
    _sfdisk(tmp, (2 + esp_mib + size_mib) * MIB, parts)
    _place(tmp, esp, MIB)
    _place(tmp, root, (1 + esp_mib) * MIB)
    tmp.rename(image)
    shutil.rmtree(tree)
    return image


def flipped_bit_offset() -> int:
    """A data byte inside the root file system (block 1234 of 4 KiB)."""
    return 1234 * 4096 + 123


def unreadable_root(name: str) -> Path:
    """ESP (shim, GRUB, kernel) + a DPS root partition cvmlint cannot read: LUKS2, or random bytes."""
    image = IMAGES / f"{name}.raw"
    if image.exists():
        return image
    pay = payload()
    work = IMAGES / f"{name}.work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    root = work / "root.img"
    if name == "luks-root":
        with open(root, "wb") as fh:
            fh.truncate(32 * MIB)
        (work / "pass").write_text("test passphrase")
        run(
            "cryptsetup",
            "luksFormat",
            "--type",
            "luks2",
            "--batch-mode",
            "--pbkdf-force-iterations",
            "1000",
            "--pbkdf",
            "pbkdf2",
            "--key-file",
            work / "pass",
            root,
        )
    else:
        root.write_bytes(random.Random(name).randbytes(32 * MIB))
    esp = _esp(work, _boot_files(work, pay, "ro lockdown=integrity module.sig_enforce=1 console=ttyS0", False))
    esp_mib = esp.stat().st_size // MIB
    parts = [
        {"start": "2048", "size": str(esp_mib * 2048), "type": ESP_TYPE, "name": "esp"},
        {"start": str((1 + esp_mib) * 2048), "size": str(32 * 2048), "type": ROOT_TYPE, "name": "root-x86-64"},
    ]
    tmp = work / "disk.raw"
    _sfdisk(tmp, (2 + esp_mib + 32) * MIB, parts)
    _place(tmp, esp, MIB)
    _place(tmp, root, (1 + esp_mib) * MIB)
    tmp.rename(image)
    shutil.rmtree(work)
    return image


def squashfs_root(source: Path) -> Path:
    """The hardened image with its root file system made again by mksquashfs (zstd) from the same tree:
    the root hash no longer matches (scan it with --no-verity)."""
    from cvmlint.image.gpt import read_partition_table
    from cvmlint.image.source import FileSource

    image = IMAGES / f"{source.stem}-squashfs.raw"
    if image.exists():
        return image
    work = IMAGES / f"{source.stem}-squashfs.work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tree = _hardened_root(work, payload(), {})
    root = work / "root.squashfs"
    run("mksquashfs", tree, root, "-comp", "zstd", "-quiet", "-no-progress", "-mkfs-time", "1700000000")
    shutil.rmtree(tree)
    table = read_partition_table(FileSource(source))
    part = next(p for p in table.partitions if p.type_name == "root-x86-64")
    if root.stat().st_size > part.size:
        raise AssertionError(f"squashfs root {root.stat().st_size} bytes, the partition has {part.size}")
    tmp = work / "disk.raw"
    run("cp", "--sparse=always", source, tmp)
    with open(tmp, "r+b") as fh:  # dd below skips zero blocks: clear what erofs left first
        fh.seek(part.start)
        for _ in range(part.size // MIB):
            fh.write(bytes(MIB))
    _place(tmp, root, part.start)
    tmp.rename(image)
    shutil.rmtree(work)
    return image
