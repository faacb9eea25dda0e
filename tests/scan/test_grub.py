"""The static GRUB interpreter, on a configuration as grub-mkconfig 2.06 writes it for Debian
(tests/scan/data/debian-grub.cfg, reached through the ESP stub Debian installs) and on mkosi's."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvmlint.scan import grub

DATA = Path(__file__).parent / "data"
UUID = "3a1e5f0c-7b2d-4c8e-9f10-223344556677"
STUB = f"search.fs_uuid {UUID} root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n"


def menu_of(
    files: dict[tuple[str, str], str],
    start: tuple[str, str] = ("esp", "/EFI/debian/grub.cfg"),
) -> grub.GrubMenu:
    def load(device: str, path: str) -> grub.GrubFile | None:
        text = files.get((device, path))
        return grub.GrubFile(device, path, text) if text is not None else None

    def find(kind: str, value: str) -> str | None:
        return "root" if kind == "fs-uuid" and value == UUID else None

    return grub.read_menu(load, find, [start], {"grub_platform": "efi"})


def debian(default: str | None = None) -> grub.GrubMenu:
    text = (DATA / "debian-grub.cfg").read_text()
    if default is not None:
        text += f"set default='{default}'\n"
    return menu_of({("esp", "/EFI/debian/grub.cfg"): STUB, ("root", "/boot/grub/grub.cfg"): text})


def test_debian_config_through_the_esp_stub() -> None:
    menu = debian()
    assert menu.files == [("esp", "/EFI/debian/grub.cfg"), ("root", "/boot/grub/grub.cfg")]
    assert [e.title for e in menu.entries] == [
        "Debian GNU/Linux",
        "Debian GNU/Linux, with Linux 6.1.0-56-cloud-amd64",
        "Debian GNU/Linux, with Linux 6.1.0-56-cloud-amd64 (recovery mode)",
        "UEFI Firmware Settings",
    ]
    first = menu.default_entry()
    assert first is menu.entries[0]
    assert (first.device, first.file, first.line, first.args_line) == ("root", "/boot/grub/grub.cfg", 89, 97)
    assert (first.kernel_device, first.kernel) == ("root", "/boot/vmlinuz-6.1.0-56-cloud-amd64")
    assert first.args.split()[:2] == [f"root=UUID={UUID}", "ro"]
    assert first.initrds == ["/boot/initrd.img-6.1.0-56-cloud-amd64"]
    assert menu.entries[3].kernel is None  # fwsetup boots no kernel
    assert menu.entries[0].path[0][2] == f"gnulinux-simple-{UUID}"  # `menuentry_id_option="--id"` was decided


@pytest.mark.parametrize(
    ("default", "title"),
    [
        ("1>1", "Debian GNU/Linux, with Linux 6.1.0-56-cloud-amd64 (recovery mode)"),
        (
            f"gnulinux-advanced-{UUID}>gnulinux-6.1.0-56-cloud-amd64-advanced-{UUID}",
            "Debian GNU/Linux, with Linux 6.1.0-56-cloud-amd64",
        ),
        ("UEFI Firmware Settings", "UEFI Firmware Settings"),
        ("2", "UEFI Firmware Settings"),
        ("no such entry", "Debian GNU/Linux"),
    ],
)
def test_default_by_position_title_or_id_through_submenus(default: str, title: str) -> None:
    entry = debian(default).default_entry()
    assert entry is not None and entry.title == title


def test_mkosi_style_config_keeps_repeated_parameters_and_expands_variables() -> None:
    cfg = """set timeout=0
set hash=5f1e
if [ "${grub_platform}" == "efi" ]; then
    menuentry "debian-6.1" {
        linux /debian/vmlinuz roothash=$hash lockdown=integrity "quoted arg" roothash=${hash}00
        initrd /debian/initrd
    }
else
    menuentry "bios-only" {
        linux /bios/vmlinuz
    }
fi
"""
    menu = menu_of({("esp", "/grub/grub.cfg"): cfg}, ("esp", "/grub/grub.cfg"))
    assert [e.title for e in menu.entries] == ["debian-6.1"]  # the platform test is decided
    assert menu.entries[0].args == "roothash=5f1e lockdown=integrity quoted arg roothash=5f1e00"


def test_configfile_loops_and_missing_files_are_problems_not_hangs() -> None:
    menu = menu_of(
        {("esp", "/a.cfg"): "configfile /b.cfg\n", ("esp", "/b.cfg"): "configfile /a.cfg\n"}, ("esp", "/a.cfg")
    )
    assert menu.entries == [] and any("loop" in p or "too many" in p for p in menu.problems)
    missing = menu_of({("esp", "/a.cfg"): "source /nowhere.cfg\n"}, ("esp", "/a.cfg"))
    assert missing.problems == ["(esp)/nowhere.cfg does not exist"]


@pytest.mark.parametrize("text", ["{" * 300_000, "if [ a ]; then\n" * 50_000, '"' * 10_000, "menuentry x {\n" * 5000])
def test_hostile_configs_are_bounded(text: str) -> None:
    menu = menu_of({("esp", "/a.cfg"): text}, ("esp", "/a.cfg"))
    assert isinstance(menu, grub.GrubMenu)
