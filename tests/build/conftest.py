"""What the build tests share: the build tool root, the CVM kernel (built from Debian's linux-source
with our patch, signed with the tests' Secure Boot key) and a copy of the repository to build in."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.tools import CACHE, require, run, secure_boot_key, tool_root


@pytest.fixture(scope="session")
def build_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tool root `cvmlint build` runs mkosi in (made as `cvmlint build --setup` makes it), cached."""
    from cvmlint.build.mkosi import BUILD_ROOT

    os.environ["CVMLINT_CACHE"] = str(CACHE)
    return tool_root(BUILD_ROOT)


@pytest.fixture(scope="session")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """patches/build-kernel.sh's output (cached by the hash of its inputs): the kernel package, signed
    with the tests' Secure Boot key, and the test-only forced-guard bzImage."""
    require("make", "gcc", "sbsign")
    key, cert = secure_boot_key()
    out = tmp_path_factory.mktemp("kernel")
    run(
        "sh",
        ROOT / "patches/build-kernel.sh",
        out,
        env={"SB_KEY": str(key), "SB_CERT": str(cert), "CACHE": str(CACHE / "kernel")},
    )
    return out


@pytest.fixture(scope="session")
def kernel_deb(kernels: Path) -> Path:
    """linux-image-6.1.0-cvm_*.deb."""
    return next(kernels.glob("linux-image-6.1.0-cvm_*.deb"))


def copy_project(dest: Path, kernel_deb: Path) -> Path:
    """The recipes, patches, policies and cvmlint.toml in `dest`, with the kernel in
    recipes/common/mkosi.packages/ and the Secure Boot key as recipes/common/mkosi.key/.crt."""
    for name in ("recipes", "patches", "policies"):
        shutil.copytree(ROOT / name, dest / name, symlinks=True, ignore=shutil.ignore_patterns("mkosi.output"))
    shutil.copy(ROOT / "cvmlint.toml", dest)
    common = dest / "recipes/common"
    shutil.copy(kernel_deb, common / "mkosi.packages")
    key, cert = secure_boot_key()
    shutil.copy(key, common / "mkosi.key")
    shutil.copy(cert, common / "mkosi.crt")
    (common / "mkosi.key").chmod(0o600)
    return dest


@pytest.fixture
def project(tmp_path: Path, kernel_deb: Path, build_root: Path) -> Path:
    """A fresh copy of the project to build in (see copy_project)."""
    return copy_project(tmp_path, kernel_deb)
