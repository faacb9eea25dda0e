"""The measurement engine on hostile ESPs: every bound ends in NotPredicted (the registers unknown with the
reason) or one FormatError, never a recursion, a runaway variable, a parse of a huge number, a quadratic
split, or the same file hashed thousands of times."""

from __future__ import annotations

import struct

import pytest

from cvmlint.errors import FormatError
from cvmlint.limits import LimitExceeded
from cvmlint.measure.authenticode import authenticode
from cvmlint.measure.grub import NotPredicted, measurements
from cvmlint.scan.grub_boot import Firmware

KERNEL = b"\x4d\x5a" + bytes(100)


class Esp:
    """An ESP's files by path, as GRUB names the partition (hd0,gpt1); no other partition."""

    esp = "hd0,gpt1"

    def __init__(self, config: str, files: dict[str, bytes] | None = None, directories: tuple[str, ...] = ()) -> None:
        self.files = {"/EFI/debian/grub.cfg": config.encode(), "/vmlinuz": KERNEL, "/initrd.img": b"initrd"}
        self.files.update(files or {})
        self.directories = {"/EFI/debian", *directories}

    def read(self, device: str, path: str) -> bytes | None:
        return self.files.get(path) if device == self.esp else None

    def exists(self, device: str, path: str) -> bool:
        return device == self.esp and (path in self.files or path in self.directories)

    def find(self, kind: str, value: str) -> str:
        raise NotPredicted(f"search --{kind} {value}: no partition matches")


NO_MODULES = Firmware(frozenset())


def predict(config: str, files: dict[str, bytes] | None = None) -> str:
    try:
        measurements(Esp(config, files), NO_MODULES)
    except NotPredicted as err:
        return str(err)
    return "predicted"


ENTRY = "menuentry 'Debian' {\n  linux /vmlinuz root=/dev/sda\n  initrd /initrd.img\n}\n"


def test_a_plain_config_is_predicted() -> None:
    assert predict(ENTRY) == "predicted"


def test_deep_if_nesting_meets_the_depth_limit() -> None:
    config = 'if [ "a" == "a" ]; then\n' * 2000 + ENTRY + "fi\n" * 2000
    assert "nested more than 32 deep (limit grub-depth)" in predict(config)


def test_a_variable_that_doubles_stops_growing() -> None:
    config = "set a=x\n" + "set a=$a$a\n" * 40 + ENTRY
    assert "expands past the limit grub-value-bytes" in predict(config)


@pytest.mark.parametrize("default", ["x" * 10, "9" * 5000, "-1"])
def test_a_default_that_is_no_entry_is_named(default: str) -> None:
    assert "names no entry" in predict(f"set default={default}\n" + ENTRY)


def test_a_long_line_of_escaped_quotes_is_split_in_one_pass() -> None:
    stopped = predict('echo "' + '\\"' * 200_000 + "\n" + ENTRY)
    assert "expands past the limit grub-value-bytes" in stopped and len(stopped) < 500


def test_the_same_initrd_named_thousands_of_times_is_refused() -> None:
    config = ENTRY.replace("initrd /initrd.img", "initrd " + " ".join(["/initrd.img"] * 20_000))
    assert "more files than the limit boot-reads" in predict(config)


def test_grub_cfg_that_is_a_directory_is_not_an_assertion() -> None:
    volumes = Esp(ENTRY, directories=("/EFI/debian/x86_64-efi/grub.cfg",))
    with pytest.raises(NotPredicted, match="not a file GRUB can read"):
        measurements(volumes, NO_MODULES)


def pe_with_sections(sections: list[tuple[int, int]], size: int) -> bytes:
    """A minimal PE32+ image whose section table holds (PointerToRawData, SizeOfRawData) pairs."""
    data = bytearray(size)
    data[:2] = b"MZ"
    struct.pack_into("<I", data, 0x3C, 0x40)
    data[0x40:0x44] = b"PE\0\0"
    struct.pack_into("<H", data, 0x40 + 6, len(sections))
    struct.pack_into("<H", data, 0x40 + 20, 240)
    opt = 0x40 + 24
    struct.pack_into("<H", data, opt, 0x20B)
    struct.pack_into("<I", data, opt + 60, 0x400)
    struct.pack_into("<I", data, opt + 108, 16)
    for i, (pointer, raw) in enumerate(sections):
        struct.pack_into("<II", data, opt + 240 + 40 * i + 16, raw, pointer)
    return bytes(data)


def test_overlapping_sections_are_refused_not_hashed_again_and_again() -> None:
    size = 1 << 20
    assert len(authenticode(pe_with_sections([(0x400, 0x1000)], size), "sha256", "x")) == 32
    with pytest.raises(FormatError, match="sections overlap"):
        authenticode(pe_with_sections([(0x400, size - 0x400)] * 83, size), "sha256", "uki")


def test_grub_2_12_measures_no_prologue_and_its_grub_cfg_twice() -> None:
    """As the tdx-base boot showed (tests/build): the sourced grub.cfg twice, then its commands; the kernel's
    EFI stub gets `BOOT_IMAGE=` and the initrds, each but the last padded to 4 bytes."""
    config = ENTRY.replace("initrd /initrd.img", "initrd /initrd.img /second.img")
    volumes = Esp(config, {"/second.img": b"abc"})
    measured, handoff = measurements(volumes, NO_MODULES, version="2.12")
    assert [m.description for m in measured[:3]] == ["(hd0,gpt1)/EFI/debian/grub.cfg"] * 2 + [
        "grub_cmd: menuentry Debian {\n  linux /vmlinuz root=/dev/sda\n  initrd /initrd.img /second.img\n}"
    ]
    assert handoff.kernel == KERNEL and handoff.cmdline == "/vmlinuz root=/dev/sda"
    assert handoff.initrd == b"initrd\0\0abc"
    older, _ = measurements(volumes, NO_MODULES)
    assert older[0].description.startswith("grub_cmd: [ -z (hd0,gpt1)/EFI/debian")


def test_grub_2_12_with_a_grub_cfg_beside_it_is_not_predicted() -> None:
    volumes = Esp(ENTRY, {"/EFI/BOOT/grub.cfg": b"set x=1\n"})
    with pytest.raises(NotPredicted, match=r"reads /EFI/BOOT/grub.cfg \(\$fw_path\) first"):
        measurements(volumes, NO_MODULES, version="2.12")


def test_functions_that_call_each_other_twice_stop_at_a_step_budget() -> None:
    """f0 calls f1 twice, f1 calls f2 twice … : 2^30 commands unless the tracer counts them."""
    calls = "".join(f"function f{n} {{ f{n + 1}; f{n + 1}; }}\n" for n in range(30))
    config = calls + "function f30 { true; }\nf0\n" + ENTRY
    with pytest.raises(LimitExceeded, match="grub-steps"):
        measurements(Esp(config), NO_MODULES)


def test_a_file_tested_again_and_again_is_read_once() -> None:
    volumes = Esp("set prefix=(hd0,gpt1)/x\n" + "[ -s /vmlinuz ]\n" * 5000 + ENTRY)
    reads: list[str] = []
    original = volumes.read

    def counted(device: str, path: str) -> bytes | None:
        reads.append(path)
        return original(device, path)

    volumes.read = counted  # type: ignore[method-assign]
    measured, _ = measurements(volumes, NO_MODULES)
    assert reads.count("/vmlinuz") == 1 and sum(m.description == "/vmlinuz" for m in measured) == 5001
