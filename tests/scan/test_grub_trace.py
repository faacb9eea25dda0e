"""The one GRUB interpreter in its two modes: the menu a scan reads (every undecided branch followed)
and the boot `measure` traces (only what GRUB will do, or NotFollowed naming the file and line)."""

from __future__ import annotations

import pytest

from cvmlint.scan import grub

KERNELS = {"/vmlinuz-a": b"kernel a", "/vmlinuz-b": b"kernel b", "/initrd.img": b"initrd"}


def files(configs: dict[str, str]) -> tuple[grub.Loader, grub.FileReader]:
    def load(device: str, path: str) -> grub.GrubFile | None:
        text = configs.get(path)
        return grub.GrubFile(device, path, text, text.encode()) if text is not None else None

    def read(device: str, path: str) -> bytes | None:
        return KERNELS.get(path)

    return load, read


def traced(configs: dict[str, str], entry: str | None = None) -> list[grub.Executed]:
    load, read = files(configs)
    return grub.boot_trace(load, read, "esp", "/grub.cfg", {"grub_platform": "efi", "root": "esp"}, entry)


def scanned(configs: dict[str, str]) -> grub.GrubMenu:
    load, _ = files(configs)
    return grub.read_menu(load, lambda kind, value: None, [("esp", "/grub.cfg")], {"grub_platform": "efi"})


PLATFORMS = """\
if [ "$grub_platform" = pc ]; then
  set kernel=/vmlinuz-b
elif [ "$grub_platform" = efi ]; then
  set kernel=/vmlinuz-a
else
  set kernel=/vmlinuz-b
fi
menuentry 'Debian' {
  # the block is measured as written
  linux $kernel root=/dev/vda2 "quiet splash"
  initrd /initrd.img
}
"""


def test_scan_and_boot_agree_on_what_an_elif_chain_boots() -> None:
    steps = traced({"/grub.cfg": PLATFORMS})
    commands = [s.text for s in steps if s.kind == "command"]
    assert commands[:4] == ["[ efi = pc ]", "[ efi = efi ]", "set kernel=/vmlinuz-a", commands[3]]
    assert commands[3].startswith("menuentry Debian {\n  # the block is measured as written\n  linux $kernel")
    assert commands[3].endswith("initrd /initrd.img\n}")
    assert commands[4:] == [
        "setparams Debian",
        "linux /vmlinuz-a root=/dev/vda2 quiet splash",
        "initrd /initrd.img",
    ]
    assert [(s.text, s.data) for s in steps if s.kind == "file"] == [
        ("(esp)/grub.cfg", PLATFORMS.encode()),
        ("/vmlinuz-a", b"kernel a"),
        ("/initrd.img", b"initrd"),
    ]
    assert [s.text for s in steps if s.kind == "cmdline"] == ['/vmlinuz-a root=/dev/vda2 "quiet splash"']
    menu = scanned({"/grub.cfg": PLATFORMS})
    default = menu.default_entry()
    assert default is not None and default.kernel == "/vmlinuz-a"


def test_an_undecided_condition_is_followed_both_ways_by_a_scan_and_stops_a_boot_trace() -> None:
    config = PLATFORMS.replace('[ "$grub_platform" = pc ]', "[ -f /etc/marker ]")
    with pytest.raises(grub.NotFollowed, match=r"/grub.cfg:1: the condition `\[ -f /etc/marker \]` is not decided"):
        traced({"/grub.cfg": config})
    assert not scanned({"/grub.cfg": config}).problems


def test_source_shares_its_variables() -> None:
    configs = {"/grub.cfg": "source /vars.cfg\nmenuentry e { linux $kernel }\n", "/vars.cfg": "set kernel=/vmlinuz-a\n"}
    assert [s.text for s in traced(configs) if s.kind == "file"] == ["(esp)/grub.cfg", "/vars.cfg", "/vmlinuz-a"]


def test_configfile_boots_its_own_menu_in_a_new_context() -> None:
    """`default` is not exported: the new menu boots its first entry; GRUB does not come back."""
    configs = {
        "/grub.cfg": "set default=1\nconfigfile /menu.cfg\nmenuentry never { linux /vmlinuz-a }\n",
        "/menu.cfg": "menuentry zero { linux /vmlinuz-b }\nmenuentry one { linux /vmlinuz-a }\n",
    }
    steps = traced(configs)
    assert [s.text for s in steps if s.kind == "file"] == ["(esp)/grub.cfg", "/menu.cfg", "/vmlinuz-b"]
    commands = [s.text for s in steps if s.kind == "command"]
    assert "setparams zero" in commands and not any("never" in c for c in commands)


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ("insmod part_gpt\n", "`insmod part_gpt` is not followed"),
        ("search --fs-uuid --set=root 1234\n", "`search --fs-uuid --set=root 1234` is not followed"),
        ("set x=$unknown\n", "$unknown is not a variable cvmlint knows the value of"),
        ("function f { true }\n", "functions are not followed"),
        ("submenu more { true }\n", "submenus and menuentry options are not followed"),
        ("set default=7\n", "default='7' names no entry"),
    ],
)
def test_what_a_boot_trace_cannot_decide_is_named_with_its_line(config: str, words: str) -> None:
    with pytest.raises(grub.NotFollowed) as err:
        traced({"/grub.cfg": "set a=1\n" + config + "menuentry x { linux /vmlinuz-a }\n"})
    assert words in str(err.value)
    if "names no entry" not in words:
        assert "/grub.cfg:2" in str(err.value)
