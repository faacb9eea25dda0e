"""A Debian 13 cloud-style image whose grub.cfg grub-mkconfig wrote: what a general-purpose image ships.

    ESP      shim -> Debian 13's signed GRUB 2.12 at the removable path and in /EFI/debian, and the stub
             /EFI/debian/grub.cfg grub-install writes (`search.fs_uuid … root hd0,gpt2`, `set prefix=`,
             `configfile $prefix/grub.cfg`)
    root     ext4 (mkfs.ext4 -d, no mount): debootstrap --variant=minbase with the cloud kernel and GRUB;
             /boot/grub as grub-install leaves it (modules and their .lst files, unicode.pf2, grubenv) and
             the grub.cfg grub-mkconfig writes from Debian's /etc/grub.d

grub-install and grub-mkconfig ask grub-probe about the devices; there is no device here (the root is a
directory until mkfs.ext4 makes the partition), so a grub-probe that answers for this image stands in
for the real one while grub-mkconfig runs, and the few files grub-install writes are written the way its
source writes them (util/grub-install.c). Cached by this file's text.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from tests.images import ESP_TYPE, LINUX_TYPE, MIB, _esp, _place, _sfdisk
from tests.tools import CACHE, mirror, require, run

KEY = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
WORK = CACHE / f"grub-mkconfig-{KEY}"
PACKAGES = "linux-image-cloud-amd64,grub2-common,grub-efi-amd64-bin,grub-efi-amd64-signed,shim-signed"
ESP_UUID, ESP_PARTUUID = "1234-5678", "0e1e2e3e-4e5e-4e6e-8e7e-8e9eaebecede"
ROOT_UUID, ROOT_PARTUUID = "5c0e7c52-1b1a-4e0c-9e4d-3f2a1b0c9d8e", "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
GRUB_PROBE = f"""#!/bin/sh
# stands in for grub-probe while grub-mkconfig runs: the root is /dev/vda2 (hd0,gpt2), ext4
target=device
for a in "$@"; do
  case "$a" in --target=*) target="${{a#--target=}}";; esac
done
case "$target" in
  device) echo /dev/vda2;;
  fs) echo ext2;;
  fs_uuid) echo {ROOT_UUID};;
  partuuid) echo {ROOT_PARTUUID};;
  partmap) echo gpt;;
  abstraction|cryptodisk_uuid) ;;
  drive) echo "(hd0)";;
  disk) echo /dev/vda;;
  compatibility_hint) echo hd0,gpt2;;
  hints_string) echo "--hint-bios=hd0,gpt2 --hint-efi=hd0,gpt2 --hint-baremetal=ahci0,gpt2";;
  *) echo "grub-probe stand-in: no answer for --target=$target" >&2; exit 1;;
esac
"""
STUB = f"search.fs_uuid {ROOT_UUID} root hd0,gpt2 \nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n"
"""/EFI/debian/grub.cfg as grub-install writes it (each hint followed by a space)."""


def tree() -> Path:
    """debootstrap'd trixie with the kernel and GRUB, and /boot/grub as grub-install and grub-mkconfig leave it."""
    done = WORK / "tree"
    if (done / "boot/grub/grub.cfg").exists():
        return done
    require("debootstrap")
    tmp = WORK / "tree.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    run("debootstrap", "--variant=minbase", f"--include={PACKAGES}", "trixie", tmp, mirror())
    grub = tmp / "boot/grub"
    shutil.copytree(tmp / "usr/lib/grub/x86_64-efi", grub / "x86_64-efi")
    (grub / "fonts").mkdir()
    shutil.copyfile(tmp / "usr/share/grub/unicode.pf2", grub / "fonts/unicode.pf2")
    (grub / "locale").mkdir()
    for mo in sorted((tmp / "usr/share/locale").glob("*/LC_MESSAGES/grub.mo")):
        shutil.copyfile(mo, grub / "locale" / f"{mo.parent.parent.name}.mo")
    shutil.copyfile(tmp / "usr/share/grub/default/grub", tmp / "etc/default/grub")
    with open(tmp / "etc/default/grub", "a") as fh:
        fh.write('GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200"\n')
    real = tmp / "usr/sbin/grub-probe"
    real.rename(real.with_suffix(".real"))
    real.write_text(GRUB_PROBE)
    real.chmod(0o755)
    run("chroot", tmp, "grub-editenv", "/boot/grub/grubenv", "create")
    run("chroot", tmp, "grub-mkconfig", "-o", "/boot/grub/grub.cfg")
    real.unlink()
    real.with_suffix(".real").rename(real)
    (tmp / "etc/fstab").write_text(
        f"UUID={ROOT_UUID} / ext4 rw,discard,errors=remount-ro 0 1\nUUID={ESP_UUID} /boot/efi vfat defaults 0 2\n"
    )
    tmp.rename(done)
    return done


def image() -> Path:
    """The disk: GPT with the ESP (hd0,gpt1) and the ext4 root (hd0,gpt2)."""
    disk = WORK / "disk.raw"
    if disk.exists():
        return disk
    root_tree = tree()
    work = WORK / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    shim, grub = root_tree / "usr/lib/shim/shimx64.efi.signed", root_tree / "usr/lib/grub/x86_64-efi-signed"
    mok = root_tree / "usr/lib/shim/mmx64.efi.signed"
    esp = _esp(
        work,
        {
            "EFI/debian/shimx64.efi": shim,
            "EFI/debian/grubx64.efi": grub / "grubx64.efi.signed",
            "EFI/debian/mmx64.efi": mok,
            "EFI/debian/grub.cfg": STUB.encode(),
            "EFI/BOOT/BOOTX64.EFI": shim,
            "EFI/BOOT/grubx64.efi": grub / "grubx64.efi.signed",
            "EFI/BOOT/mmx64.efi": mok,
        },
        64,
    )
    root = work / "root.ext4"
    size_mib = int(run("du", "-sm", root_tree).split()[0]) * 3 // 2 + 64
    run("mkfs.ext4", "-q", "-U", ROOT_UUID, "-E", "root_owner=0:0", "-d", root_tree, root, f"{size_mib}M")
    esp_mib = esp.stat().st_size // MIB
    parts = [
        {"start": "2048", "size": str(esp_mib * 2048), "type": ESP_TYPE, "uuid": ESP_PARTUUID},
        {"start": str((1 + esp_mib) * 2048), "size": str(size_mib * 2048), "type": LINUX_TYPE, "uuid": ROOT_PARTUUID},
    ]
    tmp = work / "disk.raw"
    _sfdisk(tmp, (2 + esp_mib + size_mib) * MIB, parts)
    _place(tmp, esp, MIB)
    _place(tmp, root, (1 + esp_mib) * MIB)
    tmp.rename(disk)
    shutil.rmtree(work)
    return disk
