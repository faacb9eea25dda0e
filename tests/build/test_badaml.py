"""The BadAML guard at run time, under QEMU (q35, software emulation), with an SSDT whose _INI writes
and reads guest RAM through a SystemMemory region (patches/ssdt-sysmem.asl):

* the production kernel (not a confidential guest here): the guard stays silent, the AML works;
* the TEST-ONLY kernel (patches/test/, CONFIG_CVM_AML_GUARD_TEST_FORCE=y) acts as in a confidential
  guest: the guard refuses the write and the read, the AML method fails, and the kernel goes on to
  start userspace (a tiny static init that says so and powers off).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.tools import require, run

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
INIT_C = r"""
#include <stdio.h>
#include <unistd.h>
#include <sys/reboot.h>
int main(void) {
    printf("badaml-test: userspace is running after ACPI initialisation\n");
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
"""


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled SSDT and an initramfs holding only a static init."""
    require("iasl", "gcc", "cpio")
    work = tmp_path_factory.mktemp("badaml")
    shutil.copy(ROOT / "patches/ssdt-sysmem.asl", work)
    run("iasl", "-p", work / "ssdt-sysmem", work / "ssdt-sysmem.asl")
    (work / "init.c").write_text(INIT_C)
    (work / "root").mkdir()
    run("gcc", "-static", "-Os", "-o", work / "root/init", work / "init.c")
    run("sh", "-c", f"cd '{work / 'root'}' && echo init | cpio --quiet -o -H newc > '{work / 'initramfs.cpio'}'")
    return work


def console(kernel: Path, guest: Path, log: Path) -> str:
    require("qemu-system-x86_64")
    argv = [
        "qemu-system-x86_64",
        "-machine",
        "q35,accel=tcg",
        "-m",
        "512",
        "-nographic",
        "-no-reboot",
        "-nic",
        "none",
        "-kernel",
        str(kernel),
        "-initrd",
        str(guest / "initramfs.cpio"),
        "-append",
        "console=ttyS0 acpi.aml_debug_output=1 panic=-1 rdinit=/init",
        "-acpitable",
        f"file={guest / 'ssdt-sysmem.aml'}",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=300, check=False)
    log.write_text(proc.stdout)
    return proc.stdout


def test_the_production_kernel_leaves_aml_alone_outside_a_confidential_guest(
    kernels: Path, guest: Path, tmp_path: Path
) -> None:
    deb = next(kernels.glob("linux-image-6.1.0-cvm_*.deb"))
    run("dpkg-deb", "-x", deb, tmp_path / "pkg")
    text = console(tmp_path / "pkg/boot/vmlinuz-6.1.0-cvm", guest, tmp_path / "serial.log")
    assert "cvm-aml-guard" not in text
    assert "C0FFEE42" in text, text[-2000:]  # the AML read back what it wrote
    assert "badaml-test: userspace is running" in text


def test_the_forced_guard_refuses_aml_access_to_ram_and_the_kernel_runs_on(
    kernels: Path, guest: Path, tmp_path: Path
) -> None:
    text = console(kernels / "vmlinuz-6.1.0-cvm-test-forced-guard", guest, tmp_path / "serial.log")
    lines = text.splitlines()
    assert any("cvm-aml-guard: active: AML may not access private memory" in line for line in lines), text[-3000:]
    denied = re.compile(r"cvm-aml-guard: denied AML write of \d+ bytes at physical address 0x110000 \(private memory\)")
    assert any(denied.search(line) for line in lines), text[-3000:]
    assert any(
        r"Aborting method \_SB._INI due to previous error (AE_AML_ILLEGAL_ADDRESS)" in line for line in lines
    )  # the method fails
    assert "C0FFEE42" not in text  # nothing was written to RAM, nothing read back
    assert "badaml-test: userspace is running" in text  # and the kernel carried on
