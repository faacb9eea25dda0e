"""The PE reader against pefile (sections) and sbverify (Authenticode signers) on Debian's signed
shim and GRUB, systemd-boot and a UKI made with objcopy and signed with sbsign."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cvmlint.scan.pe import parse_pe
from tests import images
from tests.tools import run

pytestmark = pytest.mark.slow

BINARIES = [
    "usr/lib/shim/shimx64.efi.signed",
    "usr/lib/shim/mmx64.efi.signed",
    "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
    "usr/lib/systemd/boot/efi/systemd-bootx64.efi",
    "usr/lib/systemd/boot/efi/linuxx64.efi.stub",
]


def leaf_cns(sbverify_list: str) -> list[str]:
    """Per signature, the CN of the certificate that issued no other one."""
    out = []
    for block in re.split(r"^signature \d+$", sbverify_list, flags=re.M)[1:]:
        subjects = re.findall(r"^ - subject: .*?CN=([^/\n]+)", block, flags=re.M)
        issuers = set(re.findall(r"^   issuer: .*?CN=([^/\n]+)", block, flags=re.M))
        out.append(next(s for s in subjects if s not in issuers))
    return out


def reference_sections(path: Path) -> dict[str, tuple[int, int]]:
    """Offsets and sizes from pefile; names from objdump, which resolves long (`/4`) names."""
    import pefile

    names = re.findall(r"^\s+\d+ (\S+)\s", run("objdump", "-h", path), flags=re.M)
    pe = pefile.PE(str(path), fast_load=True)
    assert len(names) == len(pe.sections)
    out: dict[str, tuple[int, int]] = {}
    for name, s in zip(names, pe.sections, strict=True):
        size = min(s.Misc_VirtualSize, s.SizeOfRawData) if s.Misc_VirtualSize else s.SizeOfRawData
        out.setdefault(name, (s.PointerToRawData, size))
    return out


@pytest.mark.parametrize("rel", BINARIES)
def test_sections_and_signers_match_pefile_and_sbverify(payload: images.Payload, rel: str) -> None:
    path = payload.file(rel)
    image = parse_pe(path.read_bytes(), rel)
    assert image.sections == reference_sections(path)
    listing = run("sbverify", "--list", path, ok=(0, 1))
    expected = leaf_cns(listing)
    assert [re.search(r"CN=([^,]+)", s).group(1) for s in image.signers] == expected  # type: ignore[union-attr]
    assert image.signed == bool(expected)


def test_signed_uki_sections_and_signer(payload: images.Payload, tmp_path: Path) -> None:
    work = tmp_path
    initrd = work / "initrd"
    initrd.write_bytes(b"070701" + bytes(200))
    uki = images._signed(work, images._uki(work, payload, "ro quiet", initrd))
    image = parse_pe(uki.read_bytes(), "uki")
    assert {".linux", ".initrd", ".cmdline", ".osrel", ".uname"} <= set(image.sections)
    off, size = image.sections[".cmdline"]
    assert uki.read_bytes()[off : off + size] == b"ro quiet"
    assert image.sections == reference_sections(uki)
    assert image.signers == ["O=cvmlint tests,CN=cvmlint test secure boot key"]
