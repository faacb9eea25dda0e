"""The kernel reader on Debian's cloud kernel: its payload decompressed by the real lz4 tool is the
reference; recompressed by gzip, xz, lzma, bzip2 and zstd (as kbuild does, with the size appended)
it must read back identically."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from cvmlint.errors import FormatError
from cvmlint.scan.kernel import known_params, module_signed, read_bzimage
from tests import images
from tests.tools import require

pytestmark = pytest.mark.slow

COMPRESSORS = {  # kbuild's formats; fast levels (the level does not change the format)
    "gzip": ["gzip", "-1", "-n", "-c"],
    "xz": ["xz", "--check=crc32", "-0", "-T1", "-c"],
    "lzma": ["xz", "--format=lzma", "-0", "-c"],
    "bzip2": ["bzip2", "-1", "-c"],
    "zstd": ["zstd", "-3", "-q", "-c"],
}


def payload_bounds(bz: bytes) -> tuple[int, int]:
    start = (bz[0x1F1] + 1) * 512 + int.from_bytes(bz[0x248:0x24C], "little")
    return start, int.from_bytes(bz[0x24C:0x250], "little")


def tool(argv: list[str], data: bytes) -> bytes:
    require(argv[0])
    return subprocess.run(argv, input=data, capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def kernel(payload: images.Payload) -> tuple[bytes, bytes]:
    """(bzImage, vmlinux as the lz4 tool decompresses the payload)."""
    bz = payload.kernel.read_bytes()
    start, length = payload_bounds(bz)
    return bz, tool(["lz4", "-dc"], bz[start : start + length - 4])


def with_payload(bz: bytes, new: bytes) -> bytes:
    start, length = payload_bounds(bz)
    out = bytearray(bz[:start] + new + bz[start + length :])
    out[0x24C:0x250] = len(new).to_bytes(4, "little")
    return bytes(out)


def test_lz4_payload_matches_the_lz4_tool(kernel: tuple[bytes, bytes], payload: images.Payload) -> None:
    bz, vmlinux = kernel
    image = read_bzimage(bz, "vmlinuz")
    assert image.compression == "lz4" and image.version == payload.kver
    assert hashlib.sha256(image.vmlinux).digest() == hashlib.sha256(vmlinux).digest()
    assert image.problems == []


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_every_kbuild_compression_reads_back(kernel: tuple[bytes, bytes], kind: str) -> None:
    bz, vmlinux = kernel
    packed = tool(COMPRESSORS[kind], vmlinux) + len(vmlinux).to_bytes(4, "little")  # kbuild's size_append
    image = read_bzimage(with_payload(bz, packed), "vmlinuz")
    assert image.compression == kind
    assert hashlib.sha256(image.vmlinux).digest() == hashlib.sha256(vmlinux).digest()


def test_a_payload_that_lies_about_its_size_is_refused(kernel: tuple[bytes, bytes]) -> None:
    bz, vmlinux = kernel
    packed = tool(COMPRESSORS["gzip"], vmlinux) + (len(vmlinux) // 2).to_bytes(4, "little")
    with pytest.raises(FormatError, match="announces"):
        read_bzimage(with_payload(bz, packed), "vmlinuz")


def test_known_parameters_come_from_setup_and_param_tables(kernel: tuple[bytes, bytes]) -> None:
    _bz, vmlinux = kernel
    params = known_params(vmlinux, "vmlinux")
    # __setup/early_param (inside .init.data in this kernel) and built-in module parameters
    assert {
        "lockdown",
        "console",
        "root",
        "init",
        "mitigations",
        "nosmp",
        "quiet",
        "module.sig_enforce",
        "nvme_core.io_timeout",
        "printk.time",
    } <= params
    assert "lockdwn" not in params and "consle" not in params
    # every name is a NUL-terminated string of the kernel image (with its '=', '-' spelt either way)
    strings = set(re.findall(rb"[\x21-\x7e]{2,}(?=\0)", vmlinux))
    spelt = {n: {v + e for v in (n, n.replace("_", "-")) for e in ("", "=")} for n in params}
    missing = [n for n, forms in spelt.items() if not any(f.encode() in strings for f in forms)]
    # the linker merges a string into the tail of a longer one: look those up as suffixes
    assert [n for n in missing if not any(f.encode() + b"\0" in vmlinux for f in spelt[n])] == []


def test_module_signature_trailer(payload: images.Payload, tmp_path: Path) -> None:
    module = next(payload.root.glob("lib/modules/*/kernel/fs/erofs/erofs.ko"))
    data = module.read_bytes()
    assert module_signed(data, module.name)
    assert not module_signed(data[:-40], module.name)
    assert module_signed(tool(["xz", "-c"], data), module.name + ".xz")
    assert module_signed(tool(["zstd", "-q", "-c"], data), module.name + ".zst")
