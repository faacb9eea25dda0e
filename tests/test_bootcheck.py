"""`cvmlint boot`'s judgement of a serial console, on the console of a real boot: the Debian tdx-base
image as built before its /var/lib/systemd was volatile (systemd-logind and networkd's persistent
storage failed on the read-only root). The boot itself is tested on a built image (tests/build)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvmlint.bootcheck import ANSI, judge

CONSOLE = Path(__file__).parent / "data/boot/tdx-base-failed-units.log"


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return [ANSI.sub("", line).rstrip("\r") for line in CONSOLE.read_text(errors="replace").splitlines()]


def by_name(console: list[str], timed_out: bool = False) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.detail) for c in judge(console, timed_out, 600)}


def test_the_failed_units_of_a_real_boot_are_named_with_their_count(lines: list[str]) -> None:
    checks = by_name(lines)
    status, detail = checks["failed units"]
    assert status == "fail"
    assert "systemd-logind.service - User Login Management (6 times)" in detail
    assert "systemd-networkd-p" in detail
    assert checks["default target"] == ("pass", "multi-user.target")
    assert checks["lockdown"] == ("pass", "integrity (/sys/kernel/security/lockdown)")
    assert checks["root on dm-verity"][0] == "pass" and "/dev/mapper/root erofs" in checks["root on dm-verity"][1]
    assert all(checks[f"volatile {d}"][0] == "pass" for d in ("/tmp", "/var/tmp", "/var/log"))


def test_without_the_failures_every_check_passes(lines: list[str]) -> None:
    clean = [line for line in lines if "[FAILED]" not in line]
    assert {status for status, _ in by_name(clean).values()} == {"pass"}


def test_a_failure_hidden_behind_a_terminal_escape_still_counts(lines: list[str]) -> None:
    clean = [line for line in lines if "[FAILED]" not in line]
    hidden = ANSI.sub("", "\x1bM\x1b[0;1;31m[FAILED]\x1b[0m Failed to start x.service - X.")
    assert by_name([*clean, hidden])["failed units"] == ("fail", "x.service - X")


def test_what_the_console_does_not_show_is_unknown_not_pass(lines: list[str]) -> None:
    """An image without cvm-status: the kernel's lockdown notice still decides lockdown; the root's
    device and the volatile mounts cannot be told."""
    bare = [line for line in lines if "cvm-status: " not in line and "[FAILED]" not in line]
    checks = by_name(bare)
    assert checks["lockdown"][0] == "pass" and "Kernel configuration" in checks["lockdown"][1]
    assert checks["root on dm-verity"] == (
        "unknown",
        "the console does not say what / is mounted from (no cvm-status mount line); verity set up for ['root']",
    )
    assert all(checks[f"volatile {d}"][0] == "unknown" for d in ("/tmp", "/var/tmp", "/var/log"))
    no_notice = [line for line in bare if "locked down" not in line]
    assert by_name(no_notice)["lockdown"][0] == "unknown"


def test_lockdown_none_and_a_writable_root_fail(lines: list[str]) -> None:
    changed = [
        line.replace("lockdown none [integrity]", "lockdown [none] integrity").replace(
            "mount / /dev/mapper/root erofs ro,", "mount / /dev/vda2 ext4 rw,"
        )
        for line in lines
    ]
    checks = by_name(changed)
    assert checks["lockdown"] == ("fail", "none (/sys/kernel/security/lockdown)")
    assert checks["root on dm-verity"][0] == "fail" and "/dev/vda2 ext4" in checks["root on dm-verity"][1]


def test_a_boot_that_never_reaches_its_target_fails(lines: list[str]) -> None:
    cut = lines[: next(i for i, line in enumerate(lines) if "Reached target multi-user.target" in line)]
    assert by_name(cut, timed_out=True)["default target"] == ("fail", "not reached within 600 s")
    rescue = [*cut, 'You are in emergency mode. After logging in, type "journalctl -xb" to view']
    status, detail = by_name(rescue)["default target"]
    assert status == "fail" and "emergency mode" in detail


@pytest.mark.slow
def test_a_console_past_its_limit_stops_the_reading_and_is_unknown(tmp_path: Path) -> None:
    """An image can print without end: reading stops at console-bytes, and the report says so (never a pass)."""
    import json
    import subprocess
    import sys

    from tests import measure_images

    image = measure_images.image("uki")
    argv = [sys.executable, "-m", "cvmlint", "--limit", "console-bytes=1024", "boot", str(image)]
    proc = subprocess.run(
        [*argv, "--no-tpm", "--boot-timeout", "300", "--log", str(tmp_path / "c.log"), "-f", "json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr
    checks = {c["name"]: (c["status"], c["detail"]) for c in json.loads(proc.stdout)["checks"]}
    assert checks["console"][0] == "unknown" and "passed 1,024 bytes" in checks["console"][1]
    assert json.loads(proc.stdout)["verdict"] != "pass"
    assert (tmp_path / "c.log").stat().st_size <= 1024 + (1 << 16)
