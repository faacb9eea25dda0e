"""Seed inputs for the fuzz targets, made by the real tools and cached (`seeds_for(target)`).

Every seed is a structure a real tool wrote: mkfs.erofs (plain and lz4hc), mkfs.ext4 -d (with and
without inline data), mksquashfs, mkfs.vfat + mcopy, sfdisk, veritysetup, cryptsetup luksFormat,
qemu-img (qcow2, compressed qcow2, VHD), tar (gzip, zstd), cpio (newc, plain and gzip), and from
Debian's packages the kernel, a module, signed shim and GRUB; the recipes and policies of this
repository. Small on purpose: a fuzzer mutates small inputs faster.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from tests.tools import CACHE  # noqa: E402

KEY = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
SEEDS = CACHE / f"fuzz-seeds-{KEY}"
MIB = 1 << 20


def sh(*argv: str | Path, cwd: Path | None = None) -> None:
    subprocess.run([str(a) for a in argv], check=True, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def seeds_for(target: str) -> Path:
    """The directory of seeds for `target` (made once for all targets; test workers in parallel wait for
    the one that makes them)."""
    import fcntl

    if not (SEEDS / "done").exists():
        SEEDS.parent.mkdir(parents=True, exist_ok=True)
        with open(SEEDS.with_name(SEEDS.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (SEEDS / "done").exists():
                make_all()
    return SEEDS / target


def _tree(work: Path) -> Path:
    tree = work / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (tree / "usr/bin").mkdir(parents=True)
    shutil.copyfile("/bin/true", tree / "usr/bin/true")
    (tree / "usr/bin/true").chmod(0o4755)
    (tree / "usr/bin/link").symlink_to("true")
    many = tree / "usr/share/many"
    many.mkdir(parents=True)
    for k in range(40):
        (many / f"file-{k:02d}").write_text("x" * k)
    (tree / "var/lib/dpkg").mkdir(parents=True)
    (tree / "var/lib/dpkg/status").write_text("Package: a\nStatus: install ok installed\nVersion: 1\n\n")
    return tree


def _write(target: str, name: str, data: bytes | Path) -> None:
    out = SEEDS / target
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(data if isinstance(data, bytes) else data.read_bytes())


def _file_systems(work: Path, tree: Path) -> None:
    sh("mkfs.erofs", work / "plain.erofs", tree)
    _write("erofs", "plain", work / "plain.erofs")
    sh("mkfs.erofs", "-zlz4hc", work / "lz4.erofs", tree)
    _write("erofs", "lz4hc", work / "lz4.erofs")
    for name, features in (("plain", "^has_journal"), ("inline", "^has_journal,inline_data")):
        image = work / f"{name}.ext4"
        sh("mkfs.ext4", "-q", "-F", "-b", "1024", "-O", features, "-d", tree, image, "1M")
        _write("ext4", name, image)
    sh("mksquashfs", tree, work / "s.sqfs", "-quiet", "-noappend")
    _write("squashfs", "plain", work / "s.sqfs")
    fat = work / "esp.vfat"
    sh("mkfs.vfat", "-C", fat, "2048")
    sh("mmd", "-i", fat, "::/EFI", "::/EFI/debian")
    sh("mcopy", "-i", fat, tree / "etc/os-release", "::/EFI/debian/grub.cfg")
    for k in range(20):
        sh("mcopy", "-i", fat, tree / "usr/share/many" / f"file-{k:02d}", f"::/EFI/long-file-name-{k:02d}.txt")
    _write("fat", "esp", fat)


def _disks(work: Path) -> None:
    data, hashes = work / "data.img", work / "hash.img"
    data.write_bytes(bytes(range(256)) * 256)
    sh("veritysetup", "format", data, hashes)
    _write("verity", "superblock", hashes)
    disk = work / "disk.raw"
    with open(disk, "wb") as fh:
        fh.truncate(4 * MIB)
    layout = (
        "label: gpt\n"
        "size=1MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp\n"
        "size=1MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=root\n"
    )
    subprocess.run(["sfdisk", "-q", str(disk)], input=layout.encode(), check=True, stdout=subprocess.DEVNULL)
    with open(disk, "r+b") as fh:
        fh.seek(1 * MIB)
        fh.write((work / "esp.vfat").read_bytes()[:MIB])
        fh.seek(2 * MIB)
        fh.write((work / "plain.erofs").read_bytes()[:MIB])
    _write("gpt", "two-partitions", disk.read_bytes()[: 64 * 1024])
    _write("disk", "esp-and-erofs-root", disk)
    luks = work / "luks.img"
    with open(luks, "wb") as fh:
        fh.truncate(24 * MIB)
    key = work / "key"
    key.write_bytes(b"k" * 32)
    sh(
        "cryptsetup",
        "luksFormat",
        "--type",
        "luks2",
        "--batch-mode",
        "--pbkdf",
        "pbkdf2",
        "--pbkdf-force-iterations",
        "1000",
        "--label",
        "data",
        luks,
        key,
    )
    _write("luks", "luks2", luks.read_bytes()[: 32 * 1024])  # both binary headers and the JSON area
    for fmt, name, extra in (("qcow2", "plain", []), ("qcow2", "compressed", ["-c"]), ("vpc", "vhd", [])):
        out = work / f"{name}.{fmt}"
        sh("qemu-img", "convert", "-q", "-O", fmt, *extra, disk, out)
        _write("vhd" if fmt == "vpc" else "qcow2", name, out)
    sh("tar", "-C", work, "-czf", work / "disk.tar.gz", "disk.raw")
    sh("tar", "-C", work, "--zstd", "-cf", work / "disk.tar.zst", "disk.raw")
    _write("tar", "gz", work / "disk.tar.gz")
    _write("tar", "zst", work / "disk.tar.zst")


def _archives(work: Path, tree: Path) -> None:
    listing = subprocess.run(["find", "."], cwd=tree, capture_output=True, check=True).stdout
    plain = subprocess.run(
        ["cpio", "--quiet", "-o", "-H", "newc"], cwd=tree, input=listing, capture_output=True, check=True
    ).stdout
    _write("cpio", "newc", plain)
    gz = subprocess.run(["gzip", "-9n"], input=plain, capture_output=True, check=True).stdout
    _write("cpio", "early-and-gzip", plain + gz)


def _boot(work: Path) -> None:
    from tests import images

    pay = images.payload()
    _write("bzimage", "debian-cloud", pay.kernel)
    module = next(iter(sorted((pay.root / f"lib/modules/{pay.kver}/kernel/fs").rglob("*.ko"))))
    _write("module", module.name, module)
    for rel in ("usr/lib/shim/shimx64.efi.signed", "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"):
        found = pay.file(rel)
        if found.exists():
            _write("pe", found.name, found)
    from tests import measure_images

    initrd = images._initrd(work, pay)
    _write("uki", "debian-uki", images._uki(work, pay, "console=ttyS0 lockdown=integrity", initrd))
    log = measure_images.boot(measure_images.image("uki")).eventlog  # OVMF's, from a real boot
    if log:
        _write("eventlog", "ovmf-uki", log)
    _write(
        "grub",
        "debian",
        images.CLOUD_GRUB_CFG.format(
            fs_uuid="0b5e-1234", kver=pay.kver, part_uuid="6d7c2a1e-0000-4000-8000-000000000001"
        ).encode(),
    )


def _text(work: Path) -> None:
    from tests.tools import minbase_tree

    _write("dpkg", "minbase", minbase_tree() / "var/lib/dpkg/status")
    for name in ("bash", "base-passwd", "dash", "libc6"):  # DEP-5 with several paragraphs, and free-form ones
        _write("copyright", name, minbase_tree() / f"usr/share/doc/{name}/copyright")
    conf = (ROOT / "recipes/common/mkosi.conf").read_bytes()
    repart = (ROOT / "recipes/common/mkosi.repart/10-root.conf").read_bytes()
    _write("recipe", "tdx-base", conf + b"\n---\n" + repart)
    _write("policy", "site.cvmp", ROOT / "examples/policies/site.cvmp")  # includes the shipped baseline
    _write(
        "policy",
        "interpolations.cvmp",
        b'policy "t" version "1"\nlet xs = ["a", "b"]\nrule A-1 "x" {\n  severity high\n'
        b'  require all p in packages: p.name in xs else "{p.name} {p.version} of {p.arch} at {xs} ({{literal}})"\n}\n',
    )
    bundle = work / "lint.tar"  # an evidence bundle of a lint of our recipe, as `cvmlint lint --evidence` writes it
    subprocess.run(
        [sys.executable, "-m", "cvmlint", "lint", "recipes/tdx-base", "--evidence", str(bundle)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    _write("bundle", "lint.tar", bundle)
    pin = {"name": "libc6", "version": "2.41-12", "architecture": "amd64", "sha256": "ab" * 32, "size": 1,
           "origin": "mirror"}  # fmt: skip
    inputs = {"schema": "cvmlint.build-inputs/1", "recipe": "recipes/tdx-base", "release": "trixie",
              "files": [{"path": "recipes/common/mkosi.conf", "sha256": "cd" * 32}], "packages": [pin]}  # fmt: skip
    _write(
        "record", "build.json", json.dumps({"image": {"path": "x.raw", "sha256": "ef" * 32}, "inputs": inputs}).encode()
    )
    _write("record", "packages", b"Package: libc6\nVersion: 2.41-12\nArchitecture: amd64\nFilename: pool/x.deb\n"
           b"SHA256: " + b"ab" * 32 + b"\n Continued: line\n\nPackage: other\n")  # fmt: skip


def make_all() -> None:
    """Make every target's seeds (needs the tools tests/ needs; the boot seeds download Debian packages)."""
    work = SEEDS.with_name(SEEDS.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(SEEDS, ignore_errors=True)
    work.mkdir(parents=True)
    tree = _tree(work)
    _file_systems(work, tree)
    _disks(work)
    _archives(work, tree)
    _boot(work)
    _text(work)
    shutil.rmtree(work)
    (SEEDS / "done").write_text("ok")


if __name__ == "__main__":
    make_all()
    for d in sorted(SEEDS.iterdir()):
        if d.is_dir():
            print(f"{d.name}: {len(list(d.iterdir()))} seeds")
