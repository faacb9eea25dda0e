"""Images that boot far enough to report what was measured, and their boot under QEMU + OVMF + swtpm.

The ESP holds Debian's signed shim and either its signed GRUB with a kernel and initrd, or systemd-boot
with a UKI; the initrd is a static busybox whose /init mounts securityfs, prints every PCR of the sha256
and sha384 banks and the firmware's event log (base64) to the serial console, and powers off. The images
are cached by this file's text; a boot's console is cached beside its image (the image decides it).
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests import images, tpm_commands
from tests.build.boot import OVMF_VARS, qemu_argv
from tests.tools import CACHE, require, run

KEY = hashlib.sha256(Path(__file__).read_bytes() + images.BUILDER_KEY.encode()).hexdigest()[:12]
WORK = CACHE / f"measure-{KEY}"
INIT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t securityfs securityfs /sys/kernel/security
echo "measure-begin"
for bank in sha256 sha384; do
  for n in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
    echo "pcr $bank $n $(/bin/busybox cat /sys/class/tpm/tpm0/pcr-$bank/$n)"
  done
done
log=/sys/kernel/security/tpm0/binary_bios_measurements
if [ -r $log ]; then
  echo "eventlog-begin"
  /bin/busybox base64 $log
  echo "eventlog-end"
fi
echo "measure-end"
/bin/busybox poweroff -f
"""
CMDLINE = "console=ttyS0 quiet"
DISK_GUID = "5e1f0c2a-3b4d-4e6f-8a9b-0c1d2e3f4a5b"
ESP_GUID = "0e1e2e3e-4e5e-4e6e-8e7e-8e9eaebecede"


@dataclass
class Observed:
    """What the guest printed: PCR values by (bank, index), and the event log when the kernel had it;
    and what the TPM was asked to extend, in order."""

    pcrs: dict[tuple[str, int], bytes]
    eventlog: bytes | None
    extends: list[tpm_commands.Extend]


def busybox() -> Path:
    """Debian's static busybox, unpacked once."""
    target = WORK / "busybox"
    binary = target / "bin/busybox"
    if not binary.exists():
        require("apt-get", "dpkg-deb")
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        images._download(target, "busybox-static")
        run("dpkg-deb", "-x", next(target.glob("busybox-static_*.deb")), target)
    return binary


def initrd() -> Path:
    out = WORK / "initrd.img"
    if not out.exists():
        tree = WORK / "initrd-tree"
        shutil.rmtree(tree, ignore_errors=True)
        for d in ("bin", "proc", "sys", "dev"):
            (tree / d).mkdir(parents=True)
        shutil.copyfile(busybox(), tree / "bin/busybox")
        (tree / "bin/busybox").chmod(0o755)
        (tree / "init").write_text(INIT)
        (tree / "init").chmod(0o755)
        partial = out.with_suffix(".partial")
        run("sh", "-c", f"cd '{tree}' && find . | sort | cpio --quiet -o -H newc --reproducible > '{partial}'")
        partial.rename(out)
    return out


def image(kind: str, cmdline: str = CMDLINE) -> Path:
    """`kind` "uki" (shim -> systemd-boot -> UKI), "shim-uki" (shim -> UKI) or "grub" (shim -> GRUB ->
    kernel + initrd): a GPT disk holding only the ESP."""
    name = f"{kind}-{hashlib.sha256(cmdline.encode()).hexdigest()[:8]}"
    out = WORK / f"{name}.raw"
    if out.exists():
        return out
    pay = images.payload()
    work = WORK / f"{name}.work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    files: dict[str, bytes | Path] = {"EFI/BOOT/BOOTX64.EFI": pay.file("usr/lib/shim/shimx64.efi.signed")}
    if kind == "uki":
        stub = pay.file("usr/lib/systemd/boot/efi/systemd-bootx64.efi")
        files["EFI/BOOT/grubx64.efi"] = images._signed(work, stub)
        files["loader/loader.conf"] = b"timeout 0\ndefault measured.efi\n"
        files["EFI/Linux/measured.efi"] = images._signed(work, images._uki(work, pay, cmdline, initrd()))
    elif kind == "shim-uki":  # shim starts the UKI itself, as its second stage
        files["EFI/BOOT/grubx64.efi"] = images._signed(work, images._uki(work, pay, cmdline, initrd()))
    elif kind == "grub-mkosi":  # mkosi's layout (FORMATS.md §4.4) with Debian's signed GRUB
        token = f"debian/{pay.kver}"
        files.update(
            {
                "EFI/BOOT/grubx64.efi": pay.file("usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"),
                "EFI/debian/grub.cfg": b"configfile /grub/grub.cfg\n",
                "grub/grub.cfg": (
                    f'set timeout=0\nif [ "${{grub_platform}}" == "efi" ]; then\n'
                    f'    menuentry "debian-{pay.kver}" {{\n'
                    f"        linux /{token}/vmlinuz {cmdline}\n        initrd /debian/initrd\n    }}\nfi\n"
                ).encode(),
                f"{token}/vmlinuz": pay.kernel,
                "debian/initrd": initrd(),
            }
        )
    else:
        grub_cfg = (
            f"set timeout=0\nset default=0\n\nmenuentry 'Debian measured' {{\n"
            f"    linux /vmlinuz-{pay.kver} {cmdline}\n    initrd /initrd.img-{pay.kver}\n}}\n"
        ).encode()
        files.update(
            {
                "EFI/BOOT/grubx64.efi": pay.file("usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"),
                "EFI/BOOT/grub.cfg": grub_cfg,
                "EFI/debian/grub.cfg": grub_cfg,
                f"vmlinuz-{pay.kver}": pay.kernel,
                f"initrd.img-{pay.kver}": initrd(),
            }
        )
    esp = images._esp(work, files, 64)
    esp_mib = esp.stat().st_size // images.MIB
    disk = work / "disk.raw"
    with open(disk, "wb") as fh:
        fh.truncate((2 + esp_mib) * images.MIB)
    script = work / "disk.sfdisk"
    script.write_text(  # a fixed disk GUID: the GPT is measured (PCR 5)
        f"label: gpt\nlabel-id: {DISK_GUID}\nunit: sectors\nsector-size: 512\nfirst-lba: 2048\n"
        f"start=2048, size={esp_mib * 2048}, type={images.ESP_TYPE}, name=esp, uuid={ESP_GUID}\n"
    )
    run("sh", "-c", f"sfdisk -q '{disk}' < '{script}'")
    images._place(disk, esp, images.MIB)
    disk.rename(out)
    shutil.rmtree(work)
    return out


NETWORK_FIRST = (*("-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,bootindex=0,romfile="),)
"""A NIC the firmware tries to boot from before the disk (OVMF's own PXE; QEMU's user network gives it
an address but no boot file, so it returns and the disk boots next)."""


def boot(disk: Path, timeout: float = 600, network_first: bool = False) -> Observed:
    """Boot `disk` (a snapshot) with a fresh software TPM (sha256 and sha384 banks) as the first boot
    option, or with `network_first` after a network boot that fails, and read what the guest printed
    and what the TPM was asked to extend; the console is cached beside the image."""
    console = disk.with_suffix(".network-first.console" if network_first else ".console")
    if not console.exists():
        text = _boot_with_tpm(disk, timeout, NETWORK_FIRST if network_first else ())
        if "measure-end" not in text:
            raise AssertionError(f"the guest did not report its measurements:\n{text[-3000:]}")
        _keep(console, text)
    return _observed(console.read_text())


def boot_to_exit_boot_services(disk: Path, timeout: float = 1200) -> Observed:
    """Boot any image (one that reports nothing) until the firmware logs that boot services were
    exited: the extends up to the kernel, from the TPM's side (Observed.pcrs stays empty)."""
    console = disk.with_suffix(".tpm.console")
    if not console.exists():
        _keep(console, _boot_with_tpm(disk, timeout, (), until_exit_boot_services=True))
    return _observed(console.read_text())


def _keep(console: Path, text: str) -> None:
    console.with_suffix(".partial").write_text(text)
    console.with_suffix(".partial").rename(console)


EXITED = hashlib.sha256(b"Exit Boot Services Returned with Success").digest()
"""The firmware's last PCR 5 event before the kernel runs."""


def _boot_with_tpm(disk: Path, timeout: float, devices: tuple[str, ...], until_exit_boot_services: bool = False) -> str:
    """The console, then one `tpm-extend PCR bank:digest …` line per extend swtpm was asked for."""
    require("qemu-system-x86_64", "swtpm", "swtpm_setup")
    with tempfile.TemporaryDirectory(prefix="cvmlint-tpm-") as tmp:
        state = Path(tmp)
        run("swtpm_setup", "--tpm2", "--tpmstate", state, "--pcr-banks", "sha256,sha384")
        sock, tpm_log, commands = state / "swtpm.sock", state / "swtpm.log", state / "commands.log"
        with open(tpm_log, "wb") as log:
            tpm = subprocess.Popen(
                [
                    *("swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}"),
                    *("--ctrl", f"type=unixio,path={sock}", "--log", f"file={commands},level=20"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_socket(tpm, sock, tpm_log, deadline=time.monotonic() + 10)
            vars_copy = state / "vars.fd"
            shutil.copyfile(OVMF_VARS, vars_copy)
            disk_first = qemu_argv(disk, vars_copy, "1024", cpus=1, first_boot_option=True)
            argv = [
                *(a.replace("bootindex=0", "bootindex=1") if devices else a for a in disk_first),
                *("-chardev", f"socket,id=chrtpm,path={sock}"),
                *("-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0"),
                *devices,
            ]
            text = _run_qemu(argv, state, timeout, commands if until_exit_boot_services else None)
        finally:
            tpm.kill()
            tpm.wait()
        done = tpm_commands.extends(commands.read_text(errors="replace"), ("sha256", "sha384"))
    lines = [f"tpm-extend {e.pcr} " + " ".join(f"{b}:{d.hex()}" for b, d in e.digests.items()) for e in done]
    return text + "\n" + "\n".join(lines) + "\n"


def _run_qemu(argv: list[str], state: Path, timeout: float, stop_at_exit: Path | None) -> str:
    """QEMU to its end, or (`stop_at_exit`: the TPM's command log) until boot services are exited."""
    out, err = state / "qemu.out", state / "qemu.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        qemu = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        try:
            while qemu.poll() is None and time.monotonic() < deadline:
                time.sleep(2)
                if stop_at_exit is not None and _exited(stop_at_exit):
                    break
        finally:
            qemu.kill()
            qemu.wait()
    text = out.read_bytes().decode("utf-8", "replace").replace("\r", "")
    if stop_at_exit is None and "measure-end" not in text:  # QEMU's own complaint is the first thing to read then
        text += "\n--- qemu stderr ---\n" + err.read_bytes().decode("utf-8", "replace")[-3000:]
    if stop_at_exit is not None and not _exited(stop_at_exit):
        raise AssertionError(f"boot services were not exited in {timeout} s:\n{text[-3000:]}")
    return text


def _exited(commands: Path) -> bool:
    done = tpm_commands.extends(commands.read_text(errors="replace"), ("sha256",))
    return any(e.pcr == 5 and e.digests.get("sha256") == EXITED for e in done)


def _wait_for_socket(tpm: subprocess.Popen[bytes], sock: Path, log: Path, deadline: float) -> None:
    """swtpm's control socket, or a failure saying why it never came (swtpm's own output kept)."""
    while not sock.exists():
        if tpm.poll() is not None or time.monotonic() > deadline:
            state = f"exited with {tpm.returncode}" if tpm.returncode is not None else "still running"
            raise AssertionError(
                f"swtpm made no socket at {sock} ({state}):\n{log.read_text(errors='replace')[-2000:]}"
            )
        time.sleep(0.05)


_PCR = re.compile(r"^pcr (sha256|sha384) (\d+) ([0-9A-Fa-f]+)$")


def _observed(console: str) -> Observed:
    lines = console.split("\n")
    pcrs = {}
    for line in lines:
        found = _PCR.match(line.strip())
        if found:
            pcrs[(found.group(1), int(found.group(2)))] = bytes.fromhex(found.group(3))
    log = None
    if "eventlog-begin" in lines:
        start, end = lines.index("eventlog-begin"), lines.index("eventlog-end")
        log = base64.b64decode("".join(lines[start + 1 : end]))
    extends = [
        tpm_commands.Extend(int(words[1]), {b: bytes.fromhex(d) for b, d in (w.split(":") for w in words[2:])})
        for words in (line.split() for line in lines if line.startswith("tpm-extend "))
    ]
    return Observed(pcrs, log, extends)
