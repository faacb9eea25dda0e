"""`cvmlint build --setup`'s first-build preparation: the Secure Boot key pair it makes when none is there."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from cvmlint.build.mkosi import BuildError
from cvmlint.build.prepare import cvm_kernel, secure_boot_key


def test_a_missing_key_pair_is_made_once_owner_readable_and_matching(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    common = tmp_path / "project/recipes/common"
    common.mkdir(parents=True)
    key, cert, made = secure_boot_key(common)
    assert made and stat.S_IMODE(key.stat().st_mode) == 0o600
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    assert certificate.public_key().public_numbers() == private.public_key().public_numbers()  # type: ignore[union-attr]
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CODE_SIGNING in usage
    assert "cvmlint Secure Boot (project)" in certificate.subject.rfc4514_string()
    if shutil.which("openssl"):  # the tool build-kernel.sh checks the pair with agrees
        pub = [
            subprocess.run(argv, capture_output=True, check=True).stdout
            for argv in (
                ["openssl", "pkey", "-in", str(key), "-pubout"],
                ["openssl", "x509", "-in", str(cert), "-noout", "-pubkey"],
            )
        ]
        assert pub[0] == pub[1]
    before = key.read_bytes()
    assert secure_boot_key(common) == (key, cert, False) and key.read_bytes() == before


def test_half_a_pair_is_refused_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "mkosi.crt").write_text("a certificate someone enrolled\n")
    with pytest.raises(BuildError, match=r"mkosi\.crt is there but .*mkosi\.key is not"):
        secure_boot_key(tmp_path)
    assert (tmp_path / "mkosi.crt").read_text() == "a certificate someone enrolled\n"


def test_a_kernel_package_already_there_is_not_built_again(tmp_path: Path) -> None:
    packages = tmp_path / "mkosi.packages"
    packages.mkdir()
    deb = packages / "linux-image-6.1.0-cvm_6.1.192-3_amd64.deb"
    deb.write_bytes(b"!<arch>\n")
    said: list[str] = []
    assert cvm_kernel(tmp_path, tmp_path / "no-script.sh", tmp_path / "k", tmp_path / "c", said.append) == (deb, False)
    with pytest.raises(BuildError, match=r"no-script\.sh to build one"):
        cvm_kernel(tmp_path / "elsewhere", tmp_path / "no-script.sh", tmp_path / "k", tmp_path / "c", said.append)
    assert said == []
