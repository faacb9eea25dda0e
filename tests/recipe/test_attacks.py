"""Recipe corners a pull request could use to get a weak image past the gate: every value is read as
the program that consumes it reads it (systemd-repart, mkosi, apt, the kernel), and what the build host
decides is unknown. Each case lints a small recipe and checks the critical rules do not pass."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from cvmlint.facts.provenance import Unknown
from cvmlint.recipe.facts import recipe_facts
from cvmlint.recipe.mkosi import CommandLine
from tests.recipe.conftest import Maker

BASE = """
[Distribution]
Distribution=debian
Release=trixie
Architecture=x86-64

[Output]
Format=disk
ImageId=t

[Content]
Bootable=yes
Packages=systemd
"""
ROOT_VERITY = {
    "r/mkosi.repart/10-root.conf": (
        "[Partition]\nType=root\nFormat=erofs\nCopyFiles=/\nVerity=data\nVerityMatchKey=root\n"
    ),
    "r/mkosi.repart/11-root-verity.conf": "[Partition]\nType=root-verity\nVerity=hash\nVerityMatchKey=root\n",
}


def lint(directory: Path, *args: str) -> dict[str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "cvmlint", "lint", "-f", "json", *args, str(directory)],
        capture_output=True,
        text=True,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return {r["rule"]: r["status"] for r in report["results"]}


def facts_of(directory: Path) -> Any:
    facts, _ = recipe_facts(directory, None, CommandLine())
    return facts


# ---- systemd's unit-file syntax in repart definitions ----------------------------------------------
def test_a_comment_ending_in_a_backslash_does_not_swallow_the_next_line(make_tree: Maker) -> None:
    root = ROOT_VERITY["r/mkosi.repart/10-root.conf"] + "# the hash partition is 11-root-verity.conf \\\nVerity=off\n"
    make_tree({"r/mkosi.conf": BASE, **ROOT_VERITY, "r/mkosi.repart/10-root.conf": root})
    rootfs = facts_of(Path("r")).rootfs
    assert rootfs.verity is False  # systemd-repart reads Verity=off
    results = lint(Path("r"))
    assert results["CVM-VER-001"] == "fail" and results["CVM-VER-002"] == "fail"


@pytest.mark.parametrize("separator", ["\f", "\v", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_only_newline_and_carriage_return_end_a_repart_line(make_tree: Maker, separator: str) -> None:
    """`# note<FF>Verity=data` is one comment line for systemd (Python's splitlines() would make two)."""
    root = "[Partition]\nType=root\nFormat=ext4\nCopyFiles=/\n# note" + separator + "Verity=data\n"
    root += "# x" + separator + "VerityMatchKey=root\n"
    verity = "[Partition]\nType=root-verity\n# x" + separator + "Verity=hash\n# x" + separator + "VerityMatchKey=root\n"
    make_tree({"r/mkosi.conf": BASE, "r/mkosi.repart/10-root.conf": root, "r/mkosi.repart/11-root-verity.conf": verity})
    rootfs = facts_of(Path("r")).rootfs
    assert (rootfs.format, rootfs.verity) == ("ext4", False)
    results = lint(Path("r"))
    assert results["CVM-VER-001"] == "fail" and results["CVM-FS-001"] == "fail"


def test_a_carriage_return_ends_a_repart_line(make_tree: Maker) -> None:
    root = "[Partition]\rType=root\rFormat=erofs\rCopyFiles=/\rVerity=data\rVerityMatchKey=root\r"
    make_tree({"r/mkosi.conf": BASE, **ROOT_VERITY, "r/mkosi.repart/10-root.conf": root})
    assert facts_of(Path("r")).rootfs.verity is True


# ---- the kernel command line as the kernel parses it ----------------------------------------------
def test_a_quote_spanning_items_makes_one_parameter(make_tree: Maker) -> None:
    conf = BASE + 'KernelCommandLine=x="a module.sig_enforce=1 lockdown=integrity b"\n'
    make_tree({"r/mkosi.conf": conf, **ROOT_VERITY})
    params = [(p.name, p.value) for p in facts_of(Path("r")).cmdline if not isinstance(p.value, Unknown)]
    assert params == [("x", "a module.sig_enforce=1 lockdown=integrity b")]
    results = lint(Path("r"))
    assert results["CVM-BOOT-001"] == "fail" and results["CVM-BOOT-002"] != "pass"


def test_double_dash_in_etc_kernel_cmdline_swallows_the_root_hash_and_the_rest(make_tree: Maker) -> None:
    conf = BASE + "KernelCommandLine=lockdown=integrity module.sig_enforce=1\n"
    make_tree({"r/mkosi.conf": conf, **ROOT_VERITY, "r/mkosi.extra/etc/kernel/cmdline": "console=ttyS0 --\n"})
    names = [p.name for p in facts_of(Path("r")).cmdline]
    assert names == ["console"]
    results = lint(Path("r"))
    assert results["CVM-VER-002"] == "fail" and results["CVM-BOOT-001"] == "fail"


def test_a_value_with_a_quote_inside_is_not_the_value_without_it(make_tree: Maker) -> None:
    make_tree({"r/mkosi.conf": BASE + 'KernelCommandLine=lockdown=integ"rity"\n', **ROOT_VERITY})
    assert lint(Path("r"))["CVM-BOOT-001"] == "fail"


def test_a_parameter_past_the_kernels_2047_bytes_is_lost(make_tree: Maker) -> None:
    padding = "x" * 2100
    make_tree({"r/mkosi.conf": BASE + f"KernelCommandLine=pad={padding} lockdown=integrity\n", **ROOT_VERITY})
    assert "lockdown" not in [p.name for p in facts_of(Path("r")).cmdline]


def test_a_second_line_of_etc_kernel_cmdline_is_lost_on_a_boot_loader_line(make_tree: Maker) -> None:
    """For a type-1 entry or GRUB, mkosi writes the joined line into one line of a file: what follows the
    file's first line break (and the root hash, KernelCommandLine=) is not on it."""
    conf = BASE + "Bootloader=systemd-boot\nUnifiedKernelImages=none\nKernelCommandLine=lockdown=integrity\n"
    make_tree({"r/mkosi.conf": conf, **ROOT_VERITY, "r/mkosi.extra/etc/kernel/cmdline": "console=ttyS0\nquiet\n"})
    assert [p.name for p in facts_of(Path("r")).cmdline] == ["console"]
    conf = conf.replace("UnifiedKernelImages=none", "UnifiedKernelImages=unsigned")  # a UKI: one line, all of it
    make_tree({"r/mkosi.conf": conf})
    assert [p.name for p in facts_of(Path("r")).cmdline] == ["console", "quiet", "roothash", "lockdown"]


def test_grub_quoting_is_not_guessed(make_tree: Maker) -> None:
    conf = BASE + "Bootloader=grub\nKernelCommandLine=lockdown=integrity foo='bar baz'\n"
    make_tree({"r/mkosi.conf": conf, **ROOT_VERITY})
    cmdline = facts_of(Path("r")).cmdline
    assert isinstance(cmdline, Unknown) and "GRUB reads the `linux` line" in cmdline.reason
    assert lint(Path("r"))["CVM-BOOT-001"] == "unknown"


# ---- what the build host decides ------------------------------------------------------------------
def test_path_exists_outside_the_recipe_is_unknown(make_tree: Maker) -> None:
    for value in ("/etc/hostname", "../../../../../../etc/hostname"):
        make_tree(
            {
                "r/mkosi.conf": BASE,
                **ROOT_VERITY,
                "r/mkosi.conf.d/10-ssh.conf": f"[Match]\nPathExists={value}\n\n[Content]\nPackages=openssh-server\n",
            }
        )
        packages = facts_of(Path("r")).packages
        assert isinstance(packages, Unknown) and "outside the recipe" in packages.reason
        assert lint(Path("r"))["CVM-PKG-004"] == "unknown"


def test_environment_copied_from_the_build_host_is_unknown(make_tree: Maker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEBUG", raising=False)
    conf = BASE + "\n[Build]\nEnvironment=DEBUG\n"
    make_tree(
        {
            "r/mkosi.conf": conf,
            **ROOT_VERITY,
            "r/mkosi.conf.d/10-debug.conf": "[Match]\nEnvironment=DEBUG=1\n\n[Content]\nPackages=openssh-server\n",
        }
    )
    packages = facts_of(Path("r")).packages
    assert isinstance(packages, Unknown) and "copies the build host's $DEBUG" in packages.reason
    assert lint(Path("r"))["CVM-PKG-004"] == "unknown"


# ---- steps that change the configuration or the tree after parsing -------------------------------
def test_a_configure_script_makes_everything_unknown(make_tree: Maker) -> None:
    make_tree({"r/mkosi.conf": BASE, **ROOT_VERITY, "r/mkosi.configure": "#!/bin/sh\ncat\n"})
    (Path("r/mkosi.configure")).chmod(0o755)
    facts = facts_of(Path("r"))
    for fact in (facts.packages, facts.cmdline, facts.rootfs, facts.verity):
        assert isinstance(fact, Unknown) and "mkosi.configure" in fact.reason
    results = lint(Path("r"))
    assert {results[r] for r in ("CVM-PKG-004", "CVM-VER-001", "CVM-BOOT-001", "CVM-FS-001")} == {"unknown"}


def tar_of(files: dict[str, tuple[bytes, int]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_an_extra_tree_archive_is_read(make_tree: Maker) -> None:
    conf = BASE + "KernelCommandLine=lockdown=integrity module.sig_enforce=1\n"
    make_tree({"r/mkosi.conf": conf, **ROOT_VERITY})
    Path("r/mkosi.extra.tar").write_bytes(
        tar_of({"usr/bin/helper": (b"#!/bin/sh\n", 0o4755), "etc/kernel/cmdline": (b"lockdown=none --\n", 0o644)})
    )
    facts = facts_of(Path("r"))
    helper = next(f for f in facts.files if f.path == "/usr/bin/helper")
    assert helper.setuid and str(helper.where) == "r/mkosi.extra.tar:usr/bin/helper"
    assert [(p.name, p.value) for p in facts.cmdline] == [("lockdown", "none")]
    results = lint(Path("r"))
    assert results["CVM-BOOT-001"] == "fail" and results["CVM-VER-002"] == "fail"


def test_remove_files_is_a_pathlib_glob_and_removes_before_the_command_line_is_read(make_tree: Maker) -> None:
    conf = BASE + "KernelCommandLine=lockdown=integrity\n"
    files = {"r/mkosi.conf": conf, **ROOT_VERITY, "r/mkosi.extra/etc/kernel/cmdline": "lockdown=none\n"}
    make_tree({**files, "r/mkosi.conf": conf + "RemoveFiles=/etc/kernel/cmdline\n"})
    assert [(p.name, p.value) for p in facts_of(Path("r")).cmdline if p.name == "lockdown"] == [
        ("lockdown", "integrity")
    ]
    make_tree({**files, "r/mkosi.conf": conf + "RemoveFiles=/*/cmdline\n"})  # pathlib: `*` is one name only
    assert [(p.name, p.value) for p in facts_of(Path("r")).cmdline if p.name == "lockdown"] == [
        ("lockdown", "none"),
        ("lockdown", "integrity"),
    ]
    make_tree({**files, "r/mkosi.conf": conf + "RemoveFiles=/etc/kernel\n"})  # a directory goes whole
    assert [p.value for p in facts_of(Path("r")).cmdline if p.name == "lockdown"] == ["integrity"]


def test_a_symlinked_kernel_cmdline_is_read_on_the_build_host(make_tree: Maker) -> None:
    make_tree(
        {
            "r/mkosi.conf": BASE + "KernelCommandLine=lockdown=integrity\n",
            **ROOT_VERITY,
            "r/mkosi.extra/etc/kernel/.keep": "",
        }
    )
    Path("r/mkosi.extra/etc/kernel/cmdline").symlink_to("/etc/hostname")
    cmdline = facts_of(Path("r")).cmdline
    assert isinstance(cmdline, Unknown) and "through the build host's file system" in cmdline.reason


# ---- package names as apt reads them --------------------------------------------------------------
@pytest.mark.parametrize("spec", ["openssh-server:amd64", "openssh-server=1:9.2p1-2", "openssh-server/trixie", "ssh"])
def test_a_qualified_package_name_is_the_package(make_tree: Maker, spec: str) -> None:
    make_tree({"r/mkosi.conf": BASE.replace("Packages=systemd", f"Packages=systemd {spec}"), **ROOT_VERITY})
    assert lint(Path("r"))["CVM-PKG-004"] == "fail"


@pytest.mark.parametrize("spec", ["openssh.server", "OPENSSH-SERVE.", "openssh-*", "?name(openssh-s)", "~nssh-server"])
def test_a_name_apt_reads_as_a_pattern_matching_an_ssh_server_fails(make_tree: Maker, spec: str) -> None:
    """apt-get install openssh.server installs openssh-server: no package has that name, so apt matches it
    as a regular expression (case-insensitive, anywhere in the name)."""
    make_tree({"r/mkosi.conf": BASE.replace("Packages=systemd", f"Packages=systemd {spec}"), **ROOT_VERITY})
    assert lint(Path("r"))["CVM-PKG-004"] == "fail"


def test_a_pattern_matching_nothing_forbidden_passes_the_ssh_rule(make_tree: Maker) -> None:
    make_tree(
        {"r/mkosi.conf": BASE.replace("Packages=systemd", "Packages=systemd libstdc++6 python3.13"), **ROOT_VERITY}
    )
    assert lint(Path("r"))["CVM-PKG-004"] == "pass"


@pytest.mark.parametrize("spec", ["./openssh-server.deb", "?and(?name(a),?essential)", "ssh-server^"])
def test_an_apt_pattern_task_or_file_is_unknown(make_tree: Maker, spec: str) -> None:
    make_tree({"r/mkosi.conf": BASE.replace("Packages=systemd", f"Packages=systemd\n         {spec}"), **ROOT_VERITY})
    assert lint(Path("r"))["CVM-PKG-004"] == "unknown"


def test_uki_auto_is_unknown_when_the_uki_and_the_entry_line_differ(make_tree: Maker) -> None:
    """UnifiedKernelImages=auto: mkosi builds a UKI only when systemd-stub is in the image; the UKI carries
    the whole line, a type-1 entry only its first line: the kernel's parameters are not known."""
    conf = BASE + "Bootloader=systemd-boot\nKernelCommandLine=lockdown=integrity\n"
    make_tree({"r/mkosi.conf": conf, **ROOT_VERITY, "r/mkosi.extra/etc/kernel/cmdline": "console=ttyS0\nquiet\n"})
    cmdline = facts_of(Path("r")).cmdline
    assert isinstance(cmdline, Unknown) and "UnifiedKernelImages=auto" in cmdline.reason
    make_tree({"r/mkosi.extra/etc/kernel/cmdline": "console=ttyS0 quiet\n"})  # one line: both readings agree
    assert [p.name for p in facts_of(Path("r")).cmdline] == ["console", "quiet", "roothash", "lockdown"]
