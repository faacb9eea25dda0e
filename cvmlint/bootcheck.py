"""`cvmlint boot`: boot an image under QEMU with OVMF (and a software TPM) and judge what its serial
console shows: the default target reached, the root on dm-verity, the lockdown mode, the volatile
mounts, no failed unit.

The image is never written: QEMU opens it as a snapshot. What the console does not show is unknown,
with the reason, never a pass. The recipes' `cvm-status.service` prints the lockdown mode and what
`/`, `/tmp`, `/var/tmp` and `/var/log` are mounted from (`cvm-status: …` lines); another image is
judged from systemd's and the kernel's own lines where they suffice. The console is what the guest
chose to print: this shows how an image boots, it does not prove anything about a hostile one.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvmlint import limits
from cvmlint.errors import InputError

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
VOLATILE = ("/tmp", "/var/tmp", "/var/log")
LOCKED = ("integrity", "confidentiality")
SETTLE_SECONDS = 15.0
"""How long to keep reading after the default target: units that fail just after it still count."""

ANSI = re.compile(r"\x1b(\[[0-9;:?=<>]*[A-Za-z]|[@-Z\\-_c])")
"""Terminal control sequences systemd and the firmware write (CSI sequences and one-character escapes)."""
REACHED = re.compile(r"Reached target (multi-user|graphical)\.target")
RESCUE = re.compile(r"Reached target (emergency|rescue)\.target|You are in (emergency|rescue) mode")
PANIC = re.compile(r"Kernel panic - not syncing")
FAILED = re.compile(
    r"\[(?:FAILED|DEPEND| TIME )\] (?:Failed to (?:start|mount|activate|listen on)|Dependency failed for"
    r"|Timed out waiting for) (.+?)\.?$"
)
STATUS = re.compile(r"cvm-status: (.*)$")
KERNEL_LOCKED = re.compile(r"Kernel is locked down from (.+?);")
VERITY_SETUP = re.compile(r"Finished systemd-veritysetup@([^ .]+)\.")
KVM_FAILED = re.compile(r"KVM internal error|kvm run failed|failed to initialize kvm|Could not access KVM")
"""/dev/kvm can open and still not run a guest (nested virtualisation without the CPU features QEMU needs)."""


@dataclass
class Check:
    name: str
    status: str  # pass, fail or unknown
    detail: str


@dataclass
class BootCheck:
    """What one boot showed."""

    image: Path
    log: Path
    accelerator: str
    tpm: str
    seconds: float = 0.0
    console: list[str] = field(default_factory=list)
    timed_out: bool = False
    cut: str = ""
    """Why reading the console stopped early (the console-bytes limit), or empty."""
    checks: list[Check] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        statuses = {c.status for c in self.checks}
        return "fail" if "fail" in statuses else "unknown" if "unknown" in statuses else "pass"

    def exit_code(self) -> int:
        return 0 if self.verdict == "pass" else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "cvmlint.boot/1",
            "image": str(self.image),
            "serial_log": str(self.log),
            "accelerator": self.accelerator,
            "tpm": self.tpm,
            "seconds": round(self.seconds, 1),
            "timed_out": self.timed_out,
            "verdict": self.verdict,
            "checks": [c.__dict__ for c in self.checks],
        }


def boot_check(image: Path, log: Path, timeout: float = 600, memory_mib: int = 1536, tpm: bool = True) -> BootCheck:
    """Boot `image` until the default target is reached (and SETTLE_SECONDS more), a rescue shell or a
    panic, or `timeout` seconds; keep the console in `log`; judge it."""
    if not image.is_file():
        raise InputError(f"{image}: no such image file")
    for needed in ("qemu-system-x86_64",):
        if shutil.which(needed) is None:
            raise InputError(f"{needed} is not installed: apt-get install qemu-system-x86 ovmf")
    if not OVMF_CODE.is_file():
        raise InputError(f"{OVMF_CODE} is missing: apt-get install ovmf")
    accel, why = accelerator()
    result = _attempt(image, log, accel, f"{accel} ({why})", timeout, memory_mib, tpm)
    failed = next((line.strip() for line in result.console if KVM_FAILED.search(line)), None)
    if accel == "kvm" and failed is not None:
        said = f"tcg (software emulation: KVM failed: {failed})"
        result = _attempt(image, log, "tcg", said, timeout, memory_mib, tpm)
    result.checks = judge(result.console, result.timed_out, timeout)
    if result.cut:
        result.checks.append(Check("console", "unknown", result.cut))
    return result


def _attempt(image: Path, log: Path, accel: str, said: str, timeout: float, memory_mib: int, tpm: bool) -> BootCheck:
    """One boot, with fresh firmware variables and a fresh TPM."""
    with tempfile.TemporaryDirectory(prefix="cvmlint-boot-") as tmp:
        state = Path(tmp)
        vars_copy = state / "vars.fd"
        shutil.copyfile(OVMF_VARS, vars_copy)
        argv = qemu_argv(image, vars_copy, accel, memory_mib)
        tpm_process, tpm_said = _software_tpm(state) if tpm else (None, "none (--no-tpm)")
        if tpm_process is not None:
            argv += [
                *("-chardev", f"socket,id=chrtpm,path={state / 'swtpm.sock'}"),
                *("-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0"),
            ]
        result = BootCheck(image, log, said, tpm_said)
        try:
            _run(argv, result, timeout)
        finally:
            if tpm_process is not None:
                tpm_process.kill()
                tpm_process.wait()
    return result


def accelerator() -> tuple[str, str]:
    """KVM when /dev/kvm opens for reading and writing, else software emulation; and why."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as error:
        return "tcg", f"software emulation: /dev/kvm is not usable ({error.strerror})"
    os.close(fd)
    return "kvm", "hardware virtualisation through /dev/kvm"


def qemu_argv(image: Path, vars_copy: Path, accel: str, memory_mib: int) -> list[str]:
    cpu = "host" if accel == "kvm" else "max"
    return [
        "qemu-system-x86_64",
        *("-machine", f"q35,accel={accel}", "-cpu", cpu, "-smp", "2", "-m", str(memory_mib)),
        *("-nographic", "-no-reboot", "-nic", "none"),
        *("-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}"),
        *("-drive", f"if=pflash,format=raw,file={vars_copy}"),
        *("-drive", f"file={image},format=raw,if=none,id=disk0,snapshot=on"),
        *("-device", "virtio-blk-pci,drive=disk0,bootindex=0"),
    ]


def _software_tpm(state: Path) -> tuple[subprocess.Popen[bytes] | None, str]:
    """A TPM 2.0 emulator for the guest (what a vTPM gives a confidential VM), when swtpm is installed."""
    if shutil.which("swtpm") is None or shutil.which("swtpm_setup") is None:
        return None, "none: swtpm is not installed (apt-get install swtpm swtpm-tools)"
    setup = subprocess.run(
        ["swtpm_setup", "--tpm2", "--tpmstate", str(state), "--pcr-banks", "sha256"],
        capture_output=True,
        check=False,
    )
    if setup.returncode != 0:
        return None, f"none: swtpm_setup failed ({setup.stderr.decode(errors='replace').strip()[:200]})"
    sock = state / "swtpm.sock"
    process = subprocess.Popen(
        ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}", "--ctrl", f"type=unixio,path={sock}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not sock.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not sock.exists():
        process.kill()
        process.wait()
        return None, "none: swtpm did not start"
    return process, "swtpm (TPM 2.0, sha256 bank)"


def _run(argv: list[str], result: BootCheck, timeout: float) -> None:
    """QEMU until the console shows the end of the boot, or the time is up; the console into result.log."""
    started = time.monotonic()
    deadline, settled = started + timeout, None
    with (
        open(result.log, "w", encoding="utf-8", errors="replace") as out,
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL) as qemu,
    ):
        assert qemu.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(qemu.stdout.fileno(), selectors.EVENT_READ)
        buffer, total, cap = b"", 0, limits.get("console-bytes")
        while qemu.poll() is None and time.monotonic() < (settled or deadline):
            if not selector.select(timeout=1):
                continue
            chunk = os.read(qemu.stdout.fileno(), 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                result.cut = (
                    f"the console passed {cap:,} bytes after {time.monotonic() - started:.0f} s; reading stopped "
                    "(raise it with --limit console-bytes=N)"
                )
                break
            *complete, buffer = (buffer + chunk).split(b"\n")
            for raw in complete:
                line = ANSI.sub("", raw.decode("utf-8", "replace")).rstrip("\r")
                out.write(line + "\n")
                result.console.append(line)
                if settled is None and (REACHED.search(line) or RESCUE.search(line) or PANIC.search(line)):
                    settled = min(deadline, time.monotonic() + SETTLE_SECONDS)
                if KVM_FAILED.search(line):
                    settled = time.monotonic()
        result.timed_out = settled is None and not result.cut and time.monotonic() >= deadline
        qemu.kill()
    result.seconds = time.monotonic() - started


def judge(console: list[str], timed_out: bool, timeout: float) -> list[Check]:
    """The checks, from the console's lines."""
    status = [m.group(1) for line in console if (m := STATUS.search(line))]
    return [
        _target(console, timed_out, timeout),
        _failed_units(console),
        _lockdown(console, status),
        _verity_root(console, status),
        *_volatile(status),
    ]


def _target(console: list[str], timed_out: bool, timeout: float) -> Check:
    name = "default target"
    for line in console:
        if m := RESCUE.search(line) or PANIC.search(line):
            return Check(name, "fail", f"the boot ended in {m.group(0).strip()!r}")
    reached = [m.group(0) for line in console if (m := REACHED.search(line))]
    if reached:
        return Check(name, "pass", reached[-1].removeprefix("Reached target "))
    why = f"not reached within {timeout:.0f} s" if timed_out else "not reached: the VM stopped before it"
    return Check(name, "fail", why)


def _failed_units(console: list[str]) -> Check:
    counts: dict[str, int] = {}
    for line in console:
        if m := FAILED.search(line):
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    if not counts:
        return Check("failed units", "pass", "none on the console")
    listed = "; ".join(f"{unit} ({n} times)" if n > 1 else unit for unit, n in counts.items())
    return Check("failed units", "fail", listed)


def _lockdown(console: list[str], status: list[str]) -> Check:
    for line in status:
        if line.startswith("lockdown "):
            level = re.search(r"\[(\w+)\]", line)
            mode = level.group(1) if level else line.removeprefix("lockdown ")
            return Check("lockdown", "pass" if mode in LOCKED else "fail", f"{mode} (/sys/kernel/security/lockdown)")
    for line in console:
        if m := KERNEL_LOCKED.search(line):
            # lock_kernel_down() is only ever asked for integrity or confidentiality (Linux 6.1)
            return Check("lockdown", "pass", f"integrity or stricter (the kernel: locked down from {m.group(1)})")
    return Check("lockdown", "unknown", "the console shows neither cvm-status's lockdown line nor the kernel's notice")


def _verity_root(console: list[str], status: list[str]) -> Check:
    root = _mounts(status).get("/")
    verity = {m.group(1) for line in console if (m := VERITY_SETUP.search(line))}
    if root is None:
        why = "the console does not say what / is mounted from (no cvm-status mount line)"
        return Check("root on dm-verity", "unknown", why + (f"; verity set up for {sorted(verity)}" if verity else ""))
    source, fstype, options = root
    device = source.removeprefix("/dev/mapper/")
    if source.startswith("/dev/mapper/") and device in verity and "ro" in options.split(","):
        return Check("root on dm-verity", "pass", f"{source} {fstype} ro, set up by systemd-veritysetup@{device}")
    return Check("root on dm-verity", "fail", f"/ is {source} {fstype} {options}: not a verity device set up at boot")


def _volatile(status: list[str]) -> list[Check]:
    mounts = _mounts(status)
    checks = []
    for path in VOLATILE:
        name = f"volatile {path}"
        if path not in mounts:
            checks.append(Check(name, "unknown", "the console does not say what it is mounted from"))
            continue
        source, fstype, options = mounts[path]
        ok = fstype in ("tmpfs", "ramfs")
        checks.append(Check(name, "pass" if ok else "fail", f"{source} {fstype} {options}"))
    return checks


def _mounts(status: list[str]) -> dict[str, tuple[str, str, str]]:
    """cvm-status's `mount TARGET SOURCE FSTYPE OPTIONS` lines (findmnt --target: the mount holding it)."""
    found = {}
    for line in status:
        parts = line.split()
        if len(parts) == 5 and parts[0] == "mount":
            found[parts[1]] = (parts[2], parts[3], parts[4])
    return found


def render_text(result: BootCheck) -> str:
    lines = [
        f"boot {result.image}: {result.verdict.upper()}  ({result.accelerator}; TPM: {result.tpm}; "
        f"{result.seconds:.0f} s)"
    ]
    width = max(len(c.name) for c in result.checks)
    lines += [f"  {c.status:<7} {c.name:<{width}}  {c.detail}" for c in result.checks]
    lines.append(f"serial console: {result.log}; exit {result.exit_code()}")
    return "\n".join(lines) + "\n"
