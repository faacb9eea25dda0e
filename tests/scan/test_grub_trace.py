"""The one GRUB interpreter in its two modes: the menu a scan reads (every undecided branch followed)
and the boot `measure` traces (only what GRUB will do, or NotFollowed naming the file and line)."""

from __future__ import annotations

import pytest

from cvmlint.scan import grub, grub_boot

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

    def find(kind: str, value: str) -> str:
        raise grub.NotFollowed(f"search --{kind} {value}: no partition matches")

    firmware = grub_boot.Firmware(frozenset({"part_gpt"}))
    env = {"grub_platform": "efi", "root": "esp"}
    return grub_boot.boot_trace(load, read, find, firmware, "esp", "/grub.cfg", env, entry)


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
    config = PLATFORMS.replace('[ "$grub_platform" = pc ]', '[ "$mystery" = pc ]')
    with pytest.raises(grub.NotFollowed, match=r"/grub.cfg:1: \$mystery is not a variable cvmlint knows the value of"):
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
        ("insmod lvm_x\n", "insmod lvm_x: $prefix is not known"),
        ("search --fs-uuid --set=root 1234\n", "search --fs-uuid 1234: no partition matches"),
        ("set x=$unknown\n", "$unknown is not a variable cvmlint knows the value of"),
        ("background_image /x.png\n", "`background_image /x.png` is not followed"),
        ("[ -d /boot ]\n", "`[ -d /boot ]` is not followed"),
        ("echo /boot/*\n", "would be expanded against file names"),
        ("menuentry y --weird z { linux /vmlinuz-a }\n", "menuentry option --weird is not followed"),
        ("set default=7\n", "default='7' names no entry"),
    ],
)
def test_what_a_boot_trace_cannot_decide_is_named_with_its_line(config: str, words: str) -> None:
    with pytest.raises(grub.NotFollowed) as err:
        traced({"/grub.cfg": "set a=1\n" + config + "menuentry x { linux /vmlinuz-a }\n"})
    assert words in str(err.value)
    if "names no entry" not in words:
        assert "/grub.cfg:2" in str(err.value)


ENV_BLOCK = b"# GRUB Environment Block\nsaved_entry=one\n" + b"#" * 990


def test_grub_mkconfig_constructs_are_run_and_measured_as_grub_runs_them() -> None:
    """`[ -s ]` and load_env open grubenv (measured twice), an assignment and a function call are command
    lines, `if CMD` runs CMD and keeps its status in $?, export carries a variable into configfile's menu."""
    configs = {
        "/grub.cfg": """if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
id_option="--id"
export id_option
function pick {
  set default="${1}"
}
pick 1
insmod part_gpt
if [ "$?" = 0 ]; then echo "ok ${saved_entry}"; fi
configfile /menu.cfg
""",
        "/menu.cfg": "menuentry zero $id_option z0 { linux /vmlinuz-b }\nmenuentry one { linux /vmlinuz-a }\n",
    }
    load, read = files(configs)

    def read_all(device: str, path: str) -> bytes | None:
        return ENV_BLOCK if path == "/boot/grub/grubenv" else read(device, path)

    def find(kind: str, value: str) -> str:
        raise grub.NotFollowed("no search here")

    firmware = grub_boot.Firmware(frozenset({"part_gpt"}))
    env = {"grub_platform": "efi", "root": "esp", "prefix": "(esp)/boot/grub"}
    steps = grub_boot.boot_trace(load, read_all, find, firmware, "esp", "/grub.cfg", env)
    commands = [s.text for s in steps if s.kind == "command"]
    assert commands[:9] == [
        "[ -s (esp)/boot/grub/grubenv ]",
        "set have_grubenv=true",
        "load_env",
        "id_option=--id",
        "export id_option",
        "pick 1",
        "set default=1",
        "insmod part_gpt",
        "[ 0 = 0 ]",
    ]
    assert commands[9:11] == ["echo ok one", "configfile /menu.cfg"]
    assert commands[11].startswith("menuentry zero --id z0 {")  # the exported option, in the new menu
    assert commands[-2:] == ["setparams zero", "linux /vmlinuz-b"]  # `default` is not exported
    opened = [s.text for s in steps if s.kind == "file"]
    assert opened[:3] == ["(esp)/grub.cfg", "(esp)/boot/grub/grubenv", "(esp)/boot/grub/grubenv"]
