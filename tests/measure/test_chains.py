"""Chains people ship, proven from the TPM's side (heavy: each image is built, then booted to
ExitBootServices): a Debian 13 cloud-style image whose grub.cfg grub-mkconfig wrote."""

from __future__ import annotations

import pytest

from tests import grub_mkconfig_image
from tests.boot_proof import booted_as_predicted

pytestmark = pytest.mark.heavy


def test_measure_predicts_every_register_of_a_grub_mkconfig_image() -> None:
    """shim -> GRUB 2.12 -> the stub grub.cfg grub-install writes (search.fs_uuid, set prefix, configfile)
    -> grub-mkconfig's grub.cfg on ext4 ([ -s grubenv ], load_env, functions, export, menuentry options,
    insmod of a module read from /boot/grub, fwsetup, 41_custom) -> the kernel's EFI stub."""
    prediction = booted_as_predicted(grub_mkconfig_image.image())
    commands = [e.what for e in prediction.events if e.pcr == 8]
    root = f"search.fs_uuid {grub_mkconfig_image.ROOT_UUID} root hd0,gpt2"
    assert commands[:3] == [f"grub_cmd: {root}", "grub_cmd: set prefix=(hd0,gpt2)/boot/grub", commands[2]]
    assert "grub_cmd: load_env" in commands and "grub_cmd: fwsetup --is-supported" in commands
    files = [e.what for e in prediction.events if e.pcr == 9 and e.by == "grub"]
    assert files.count("(hd0,gpt2)/boot/grub/grubenv") == 2 and "(hd0,gpt2)/boot/grub/x86_64-efi/bli.mod" in files
    assert [e.what for e in prediction.events if e.by == "linux"] == ["LOADED_IMAGE::LoadOptions", "Linux initrd"]
