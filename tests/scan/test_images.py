"""`cvmlint scan` end to end on real images: Debian's signed shim and GRUB, Debian's cloud kernel,
an erofs root made by mkfs.erofs from a debootstrap'd tree, dm-verity by veritysetup.

Expected values come from the inputs (the tree, the kernel config, veritysetup's root hash), never
from cvmlint itself.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests import images
from tests.images import HARDENED_CMDLINE, Variant
from tests.scan.conftest import Run, cvmlint, scan
from tests.tools import minbase_tree

pytestmark = pytest.mark.slow

# What the hardened images' content satisfies, and what it cannot (a stock Debian minbase and kernel).
HARDENED_PASS = {
    "CVM-PKG-004",
    "CVM-PKG-005",
    "CVM-FS-001",
    "CVM-FS-002",
    "CVM-FS-003",
    "CVM-VER-001",
    "CVM-VER-002",
    "CVM-VER-003",
    "CVM-BOOT-001",
    "CVM-BOOT-002",
    "CVM-BOOT-003",
    "CVM-BOOT-004",
    "CVM-BOOT-005",
    "CVM-BOOT-006",
    "CVM-KERN-003",
    "CVM-KERN-005",
}
HARDENED_FAIL = {
    "CVM-PKG-001",
    "CVM-PKG-002",
    "CVM-PKG-003",
    "CVM-PKG-006",
    "CVM-FS-004",
    "CVM-KERN-001",
    "CVM-KERN-002",
    "CVM-KERN-004",
    "CVM-BUILD-003",  # debootstrap leaves its logs and ldconfig's aux-cache
}
RECIPE_ONLY = {"CVM-BUILD-001", "CVM-BUILD-002", "CVM-BUILD-004"}


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if line == text)


def setid_files(tree: Path) -> set[str]:
    found = set()
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o6000:
                found.add("/" + os.path.relpath(os.path.join(dirpath, name), tree))
    return found


def assert_statuses(run: Run, passing: set[str], failing: set[str]) -> None:
    wrong = [run.explain(r) for r in sorted(passing) if run.status(r) != "pass"]
    wrong += [run.explain(r) for r in sorted(failing) if run.status(r) != "fail"]
    assert wrong == []
    assert set(run.by_rule) == passing | failing | RECIPE_ONLY
    assert all(run.status(r) == "skipped" for r in RECIPE_ONLY)


def test_hardened_grub_passes_what_its_content_satisfies(hardened_grub_scan: Run, payload: images.Payload) -> None:
    run = hardened_grub_scan
    assert run.code == 1
    assert_statuses(run, HARDENED_PASS, HARDENED_FAIL)
    assert run.out["summary"]["unknown"] == 0
    kver = payload.kver
    # The Debian kernel has no BadAML guard: the rule fails and says so, at the kernel on the ESP.
    assert run.findings("CVM-KERN-001") == [
        f"kernel {kver} carries none of the known BadAML mitigation markers @ esp:/vmlinuz-{kver}"
    ]
    config = payload.file(f"boot/config-{kver}")
    assert run.locations("CVM-KERN-002") == {
        f"root:/boot/config-{kver}:{line_of(config, 'CONFIG_ACPI_TABLE_UPGRADE=y')}"
    }
    assert run.locations("CVM-KERN-004") == {
        f"root:/boot/config-{kver}:{line_of(config, 'CONFIG_KEXEC=y')}",
        f"root:/boot/config-{kver}:{line_of(config, 'CONFIG_KEXEC_FILE=y')}",
    }


def test_hardened_grub_names_the_offending_packages_and_files(hardened_grub_scan: Run) -> None:
    run = hardened_grub_scan
    status = minbase_tree() / "var/lib/dpkg/status"
    assert (
        f"package manager apt is installed (dpkg) @ root:/var/lib/dpkg/status:{line_of(status, 'Package: apt')}"
    ) in run.findings("CVM-PKG-002")
    assert "root:/usr/bin/apt-get" in run.locations("CVM-PKG-002")
    assert "root:/usr/bin/perl" in run.locations("CVM-PKG-003")  # perl-base: an interpreter in minbase
    assert {f"root:{p}" for p in setid_files(minbase_tree())} == run.locations("CVM-FS-004")
    assert any("(mode 4755)" in f for f in run.findings("CVM-FS-004"))


def test_hardened_grub_facts(hardened_grub: Path, payload: images.Payload) -> None:
    facts = cvmlint("facts", "--json", hardened_grub).out["facts"]
    assert facts["verity"]["root_hash"] == hardened_grub.with_suffix(".roothash").read_text()
    assert facts["verity"]["tree_valid"] is True and facts["verity"]["uuids_match"] is True
    assert facts["rootfs"]["format"] == "erofs" and facts["rootfs"]["found_by"] == "dps-type"
    assert facts["kernel"]["version"] == payload.kver
    assert {"lockdown", "console", "module.sig_enforce", "mitigations"} <= set(facts["kernel"]["params"])
    binaries = {b["path"]: b for b in facts["boot"]["binaries"]["items"]}
    assert binaries["/EFI/BOOT/BOOTX64.EFI"]["kind"] == "shim"
    assert "Microsoft" in binaries["/EFI/BOOT/BOOTX64.EFI"]["signer"]
    assert binaries["/EFI/BOOT/grubx64.efi"]["kind"] == "grub"
    assert "Debian" in binaries["/EFI/BOOT/grubx64.efi"]["signer"]
    entry = facts["boot"]["entries"]["items"][0]
    assert entry["default"] and entry["kind"] == "grub" and entry["title"] == "Debian hardened"
    expected = HARDENED_CMDLINE.format(roothash=facts["verity"]["root_hash"]).split()
    assert [
        p["name"] + ("=" + p["value"] if p["value"] is not None else "") for p in entry["cmdline"]["items"]
    ] == expected
    assert entry["cmdline"]["items"][0]["where"] == {"partition": "esp", "file": "/EFI/BOOT/grub.cfg", "line": 5}
    # both cpio segments of the initrd: the plain early one and the zstd one
    assert "kernel/x86/microcode/.placeholder" in entry["initrd_files"]
    assert f"usr/lib/modules/{payload.kver}/kernel/erofs.ko" in entry["initrd_files"]
    installed = (minbase_tree() / "var/lib/dpkg/status").read_text().count("Status: install ok installed")
    assert len(facts["packages"]["items"]) == installed


def test_hardened_uki(hardened_uki: Path) -> None:
    run = scan(hardened_uki)
    assert_statuses(run, HARDENED_PASS, HARDENED_FAIL)
    facts = cvmlint("facts", "--json", "--no-verity", hardened_uki).out["facts"]
    assert facts["boot"]["loader"] == "systemd-boot" and facts["boot"]["uki"] is True
    entry = facts["boot"]["entries"]["items"][0]
    assert entry["kind"] == "uki" and entry["title"] == "debian-hardened.efi"
    assert entry["cmdline"]["where"] == {
        "partition": "esp",
        "file": "/EFI/Linux/debian-hardened.efi",
        "detail": "section .cmdline",
    }
    signers = {b["path"]: b["signer"] for b in facts["boot"]["binaries"]["items"]}
    assert "CN=cvmlint test secure boot key" in signers["/EFI/Linux/debian-hardened.efi"]
    assert "CN=cvmlint test secure boot key" in signers["/EFI/BOOT/grubx64.efi"]
    assert facts["verity"]["unknown"] == "root hash not computed (--no-verity)"


def test_cloud_image_fails_the_hardening_rules_and_says_where(cloud_image: Path) -> None:
    run = scan(cloud_image)
    assert run.code == 1
    for rule in (
        "CVM-FS-001",
        "CVM-FS-002",
        "CVM-FS-003",
        "CVM-VER-001",
        "CVM-VER-002",
        "CVM-BOOT-001",
        "CVM-BOOT-002",
        "CVM-PKG-002",
        "CVM-PKG-003",
    ):
        assert run.status(rule) == "fail", run.explain(rule)
    assert any("ext4" in f for f in run.findings("CVM-FS-001"))
    assert any("can be mounted read-write" in f for f in run.findings("CVM-FS-001"))
    grub_line = next(i for i, line in enumerate(images.CLOUD_GRUB_CFG.splitlines(), 1) if "\tlinux\t" in line)
    assert run.findings("CVM-VER-002") == [
        f"boot entry 'Debian GNU/Linux' has no roothash= on its command line @ root:/boot/grub/grub.cfg:{grub_line}"
    ]
    assert run.locations("CVM-BOOT-001") == {f"root:/boot/grub/grub.cfg:{grub_line}"}
    compilers = run.locations("CVM-PKG-003")
    assert {
        "root:/usr/bin/x86_64-linux-gnu-gcc-12",
        "root:/usr/bin/python3.11",
        "root:/usr/lib/gcc/x86_64-linux-gnu/12/cc1",
    } <= compilers
    status = images.cloud_tree() / "var/lib/dpkg/status"
    assert f"root:/var/lib/dpkg/status:{line_of(status, 'Package: gcc-12')}" in compilers
    assert "root:/usr/bin/apt" in run.locations("CVM-PKG-002")
    facts = cvmlint("facts", "--json", "--no-verity", cloud_image).out["facts"]
    assert facts["rootfs"]["format"] == "ext4"
    assert facts["rootfs"]["found_by"] == "cmdline root=PARTUUID=7c6b5a49-3827-4615-8493-a2b1c0d9e8f7"
    assert facts["rootfs"]["verity"] is False


@pytest.mark.parametrize(
    ("name", "variant", "rule", "finding"),
    [
        (
            "flipped-byte",
            Variant(flip_root_byte=images.flipped_bit_offset()),
            "CVM-VER-001",
            "the hash tree does not match the data: first bad data block 1234",
        ),
        (
            "wrong-roothash",
            Variant(roothash_override="ab" * 32),
            "CVM-VER-002",
            "boot entry 'Debian hardened' has roothash=" + "ab" * 32 + ", but the hash tree's root hash is ",
        ),
        (
            "no-lockdown",
            Variant(cmdline=HARDENED_CMDLINE.replace("lockdown=integrity ", "")),
            "CVM-BOOT-001",
            "boot entry 'Debian hardened' has lockdown=none @ esp:/EFI/BOOT/grub.cfg:5",
        ),
        (
            "misspelt-param",
            Variant(cmdline=HARDENED_CMDLINE.replace("console=", "consle=")),
            "CVM-BOOT-003",
            "does not know the parameter 'consle' (misspelt?) @ esp:/EFI/BOOT/grub.cfg:5",
        ),
    ],
)
def test_variants_fail_the_rule_they_break(
    variant_image: Any, name: str, variant: Variant, rule: str, finding: str
) -> None:
    run = scan(variant_image(name, variant))
    assert run.status(rule) == "fail", run.explain(rule)
    assert any(finding in f for f in run.findings(rule)), run.findings(rule)
    others = {r for r in HARDENED_PASS if r != rule and run.status(r) != "pass"}
    assert others == set(), [run.explain(r) for r in others]


def test_a_flipped_byte_names_the_verity_block(variant_image: Any) -> None:
    image = variant_image("flipped-byte", Variant(flip_root_byte=images.flipped_bit_offset()))
    facts = cvmlint("facts", "--json", image).out["facts"]
    assert facts["verity"]["tree_valid"] is False and facts["verity"]["first_bad_block"] == 1234
    run = scan(image)
    assert any(loc.startswith("root-verity") and "block 1234" in loc for loc in run.locations("CVM-VER-001")), (
        run.findings("CVM-VER-001")
    )


def test_gcc_as_a_file_without_a_package(variant_image: Any) -> None:
    gcc = images.cloud_tree() / "usr/bin/x86_64-linux-gnu-gcc-12"
    run = scan(variant_image("gcc-file", Variant(extra_files={"/usr/bin/gcc-12": gcc})), "--no-verity")
    assert "root:/usr/bin/gcc-12" in run.locations("CVM-PKG-003")
    assert not any("package gcc" in f for f in run.findings("CVM-PKG-003"))


@pytest.mark.parametrize("name", ["luks-root", "unknown-root"])
def test_an_unreadable_root_gives_unknowns_never_passes(payload: images.Payload, name: str) -> None:
    run = scan(images.unreadable_root(name))
    assert run.code == 1
    root_rules = (
        "CVM-PKG-001",
        "CVM-PKG-002",
        "CVM-PKG-003",
        "CVM-FS-004",
        "CVM-KERN-002",
        "CVM-KERN-005",
        "CVM-VER-001",
    )
    for rule in root_rules:
        assert run.status(rule) in ("unknown", "fail"), run.explain(rule)
    reason = "luks2-encrypted; cvmlint reads no keys" if name == "luks-root" else "holds no known file system"
    assert reason in " ".join(run.by_rule["CVM-PKG-002"]["reasons"]), run.explain("CVM-PKG-002")
    assert run.status("CVM-BOOT-001") == "pass"  # the ESP still reads


def test_qcow2_of_the_hardened_image_gives_the_same_verdicts(
    hardened_grub: Path, hardened_grub_scan: Run, tmp_path: Path
) -> None:
    from tests.tools import run

    qcow2 = tmp_path / "hardened.qcow2"
    run("qemu-img", "convert", "-O", "qcow2", hardened_grub, qcow2)
    again = scan(qcow2)
    assert {r: again.status(r) for r in again.by_rule} == {
        r: hardened_grub_scan.status(r) for r in hardened_grub_scan.by_rule
    }


def test_the_pipeline_waits_only_for_the_facts_rules_read(hardened_uki: Path) -> None:
    """scan, build and evidence diff judge through one pipeline: no baseline rule reads the measurement
    prediction, so it is not made unless evidence asks for every fact."""
    from cvmlint._resources import default_policy_path
    from cvmlint.pipeline import judge_image
    from cvmlint.policy import load_policy
    from cvmlint.scan import ScanOptions

    policy = load_policy(default_policy_path())
    with judge_image(hardened_uki, policy, ScanOptions(verity=False)) as judged:
        assert {"kernel", "boot", "cmdline", "verity"} <= judged.read and "measurements" not in judged.read
        judged.facts()
        assert "measurements" in judged.scanned.later  # still pending
        everything = judged.facts(everything=True)
        from cvmlint.facts.model import Measurements

        assert judged.scanned.later == {} and isinstance(everything.measurements, Measurements)


def test_a_squashfs_root_reads_as_its_erofs_twin(hardened_grub: Path, hardened_grub_scan: Run) -> None:
    """The same tree made by mksquashfs instead of mkfs.erofs: the same packages and files, and the
    rule that asks for erofs fails naming squashfs."""
    import json

    twin = images.squashfs_root(hardened_grub)
    erofs, squashfs = (cvmlint("facts", image, "--json", "--no-verity").out["facts"] for image in (hardened_grub, twin))
    assert squashfs["rootfs"]["format"] == "squashfs" and erofs["rootfs"]["format"] == "erofs"
    assert squashfs["packages"]["items"] == erofs["packages"]["items"] and len(erofs["packages"]["items"]) > 50

    def shape(files: dict[str, Any]) -> list[tuple[Any, ...]]:
        # a directory's size is its format's own listing: only a file's size is the content's
        return [
            (f["path"], f["type"], f["mode"], f["uid"], f["size"] if f["type"] == "file" else 0, f["target"])
            for f in files["items"]
        ]

    assert shape(squashfs["files"]) == shape(erofs["files"])
    run = scan(twin, "--no-verity")
    fs001 = run.by_rule["CVM-FS-001"]
    assert fs001["status"] == "fail" and "squashfs" in json.dumps(fs001["findings"]), run.explain("CVM-FS-001")
    assert run.status("CVM-PKG-002") == hardened_grub_scan.status("CVM-PKG-002") == "fail"
