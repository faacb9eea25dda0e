"""`cvmlint build` end to end: lint, mkosi (in the build tool root), scan, drift, outputs, boot.

The builds are real: Debian trixie from this machine's apt mirror, our kernel from Debian's
linux-source with the BadAML patch. The Ubuntu flavour cannot be built here (no Ubuntu archive).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.boot_proof import booted_as_predicted
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

# Rules the Debian tdx-base image cannot pass here, and why (none today: keep the list honest).
CANNOT_PASS: dict[str, str] = {}


def cvmlint_build(project: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, Any, str]:
    import os

    proc = subprocess.run(
        [sys.executable, "-m", "cvmlint", "build", "--format", "json", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None, proc.stderr


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {r["rule"]: r["status"] for r in report["results"]}


@pytest.fixture(scope="module")
def tdx_debian(tmp_path_factory: pytest.TempPathFactory, kernel_deb: Path, build_root: Path) -> tuple[int, Any, str]:
    from tests.build.conftest import copy_project

    project = copy_project(tmp_path_factory.mktemp("project"), kernel_deb)
    keygen = [sys.executable, "-m", "cvmlint", "evidence", "keygen", str(project / "evidence-key.pem")]
    subprocess.run(keygen, check=True, capture_output=True)
    return (
        *cvmlint_build(  # type: ignore[return-value]
            project,
            *("-d", "debian", "--boot-check", "--evidence", "evidence", "--sign-key", "evidence-key.pem"),
            *("-f", "text", "-o", "build.txt"),
            "recipes/tdx-base",
        ),
        project,
    )


@pytest.mark.heavy
def test_measure_predicts_every_register_of_the_debian_tdx_base_boot(tdx_debian: Any) -> None:
    """shim 16 -> Debian 13's signed GRUB 2.12 -> our kernel, as `cvmlint build -d debian` makes it, booted
    (QEMU + OVMF + swtpm) until boot services are exited: every predicted event is what the TPM was asked
    to extend, in order, in both banks; nothing is unknown; RTMR[1]/[2] follow from the same events."""
    from cvmlint.image.container import open_image
    from cvmlint.measure.predict import predict
    from cvmlint.scan.disk import open_disk

    code, doc, err, _ = tdx_debian
    assert code == 0, err[-3000:]
    image = Path(doc["image"]["path"])
    prediction = booted_as_predicted(image)
    assert [e.what for e in prediction.events if e.by == "linux"] == ["LOADED_IMAGE::LoadOptions", "Linux initrd"]
    assert prediction.on_tdx == {"firmware", "shim"}  # a TD without a vTPM: GRUB 2.12 measures nothing there
    with open_image(image) as (src, _kind):
        assert predict(open_disk(src), td_vtpm=True).on_tdx == {"firmware", "shim", "grub"}


@pytest.fixture(scope="module")
def mkosi_uki(tmp_path_factory: pytest.TempPathFactory, build_root: Path) -> tuple[int, Any, str]:
    """mkosi's defaults with a UKI and a command line: systemd-boot 257 -> systemd-stub 257 -> Linux 6.12."""
    return built_no_gate(tmp_path_factory, "mkosi-uki")


@pytest.mark.heavy
def test_measure_predicts_every_register_of_a_systemd_257_uki_boot(mkosi_uki: tuple[int, Any, str]) -> None:
    """The sections systemd-stub 257 measures (.uname and .sbat beyond 252's), no PCR 12 event for a UKI
    systemd-boot starts, the command line and the initrd (with the stub's /.extra/os-release cpio) Linux
    measures."""
    _code, doc, err = mkosi_uki
    assert doc is not None, err[-3000:]
    prediction = booted_as_predicted(Path(doc["image"]["path"]))
    names = [e.what for e in prediction.events if e.pcr == 11 and e.what.startswith("section name")]
    assert [n.removeprefix("section name ") for n in names] == [
        ".linux",
        ".osrel",
        ".cmdline",
        ".initrd",
        ".uname",
        ".sbat",
    ]
    assert [e.what for e in prediction.events if e.pcr == 9] == ["LOADED_IMAGE::LoadOptions", "Linux initrd"]
    assert not [e for e in prediction.events if e.pcr == 12]


@pytest.mark.heavy
def test_measure_predicts_every_register_of_the_mkosi_defaults_boot(mkosi_defaults: tuple[int, Any, str]) -> None:
    """systemd-boot 257 (no shim) -> a Type #1 entry -> Debian 13's kernel 6.12, as mkosi makes it by default."""
    _code, doc, _err = mkosi_defaults
    prediction = booted_as_predicted(Path(doc["image"]["path"]))
    assert [e.by for e in prediction.events if e.pcr in (5, 9, 12) and e.by != "firmware"] == [
        "systemd-boot",  # loader.conf (PCR 5, TPM only)
        "systemd-boot",  # the options it passes, with its initrd= words (PCR 12)
        "linux",
        "linux",
    ]
    assert prediction.on_tdx == {"firmware", "systemd-boot", "linux"}


@pytest.mark.heavy
def test_the_debian_tdx_base_image_builds_passes_and_does_not_drift(tdx_debian: Any) -> None:
    code, doc, err, _ = tdx_debian
    assert code == 0, err[-3000:]
    assert doc["lint"]["exit_code"] == 0 and doc["scan"]["exit_code"] == 0
    assert doc["drift"] == []
    scan = statuses(doc["scan"])
    recipe_only = {"CVM-BUILD-001", "CVM-BUILD-002", "CVM-BUILD-004"}
    assert {k for k, v in scan.items() if v != "pass"} == recipe_only | set(CANNOT_PASS)
    image = Path(doc["image"]["path"])
    for name in ("lint report", "scan report", "sha256", "root hash", "mkosi log", "build summary"):
        assert Path(doc["outputs"][name]).is_file(), name
    record = json.loads(Path(doc["outputs"]["build summary"]).read_text())  # the file lists what the build made
    assert set(record["outputs"]) == set(doc["outputs"]) >= {"lint report", "build summary", "evidence"}
    phases = {"lint", "mkosi", "record", "boot", "evidence inputs", "scan", "evidence bundle"}
    assert set(record["timings"]) == phases and record["timings"]["mkosi"] > 0
    assert Path(doc["outputs"]["root hash"]).read_text().strip() == doc["image"]["root_hash"]
    assert Path(doc["outputs"]["sha256"]).read_text().split()[0] == doc["image"]["sha256"]
    import hashlib

    assert hashlib.sha256(image.read_bytes()).hexdigest() == doc["image"]["sha256"]
    assert {"libc6", "grub2-common", "shim-unsigned"} <= {p["name"] for p in doc["packages"]["undeclared"]}
    assert doc["packages"]["missing"] == []
    bundle = Path(doc["outputs"]["evidence"])  # the scan's evidence, signed with the fixture's key
    key = bundle.parent / "evidence-key.pem.pub"
    verified = subprocess.run(
        [sys.executable, "-m", "cvmlint", "evidence", "verify", "--key", str(key), "--image", str(image), str(bundle)],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stdout


@pytest.mark.heavy
def test_the_readme_build_example_is_what_the_build_printed(tdx_debian: Any) -> None:
    """The README's `cvmlint build` example, against this build's text view (its second --format)."""
    from tests.readme import console_examples, matches
    from tests.tools import CACHE

    _, _, _, project = tdx_debian
    example = next(e for e in console_examples(ROOT / "README.md") if e.command.startswith("cvmlint build"))
    printed = (project / "build.txt").read_text().replace(str(CACHE), "/var/cache/cvmlint").splitlines()
    assert matches(example.expected, printed), "\n".join(printed)


@pytest.mark.heavy
def test_the_debian_tdx_base_image_boots_clean_with_verity_lockdown_and_tmpfs(tdx_debian: Any) -> None:
    """`build --boot-check`: the image reaches its default target with no failed unit, the root on
    dm-verity, lockdown on and the volatile mounts; the console is kept beside the image and in the
    signed evidence."""
    code, doc, _, project = tdx_debian
    assert code == 0
    boot = doc["boot"]
    checks = {c["name"]: (c["status"], c["detail"]) for c in boot["checks"]}
    assert {status for status, _ in checks.values()} == {"pass"}, checks
    assert checks["failed units"] == ("pass", "none on the console")
    assert checks["lockdown"] == ("pass", "integrity (/sys/kernel/security/lockdown)")
    assert checks["root on dm-verity"][1].startswith("/dev/mapper/root erofs ro")
    assert all(checks[f"volatile {d}"][1].split()[1] == "tmpfs" for d in ("/tmp", "/var/tmp", "/var/log"))
    console = Path(doc["outputs"]["boot console"]).read_text()
    assert "device-mapper: verity" in console and "[FAILED]" not in console
    from cvmlint.evidence.bundle import read_bundle

    bundle = read_bundle(project / "evidence")
    assert bundle["boot/serial.log"] == Path(doc["outputs"]["boot console"]).read_bytes()
    listed = json.loads(base64.b64decode(json.loads(bundle["statement.json"])["payload"]))["predicate"]["files"]
    assert {"boot/serial.log", "boot/report.json"} <= set(listed)


@pytest.mark.heavy
def test_cvmlint_boot_reports_the_built_image_as_build_did(tdx_debian: Any) -> None:
    """The README's `cvmlint boot` example, run on the built image: what a user runs on an image someone
    else built; the same checks as the build's, and the image file untouched."""
    from tests.test_readme import EXAMPLES, NEEDS_BOOT, check

    code, doc, _, project = tdx_debian
    assert code == 0
    image = Path(doc["image"]["path"])
    before = (image.stat().st_mtime_ns, doc["image"]["sha256"])
    example = next(e for e in EXAMPLES if e.command.startswith(NEEDS_BOOT))
    check(example, project)
    assert [c["name"] for c in doc["boot"]["checks"]] == [
        line.split(maxsplit=1)[1].rsplit("  ", 1)[0].strip() for line in example.expected[1:-1]
    ]
    from cvmlint.evidence.inputs import image_inputs

    assert (image.stat().st_mtime_ns, image_inputs(image)["sha256"]) == before
    assert "Reached target" in (project / "boot.log").read_text()


@pytest.mark.heavy
def test_the_dev_profile_builds_without_drift(kernel_deb: Path, build_root: Path, tmp_path: Path) -> None:
    """The debug image, selected by the operator: SSH allowed by the policy's dev profile, and what the
    tools pull in by allowlists/dev.txt; nothing fails, the recipe and the image agree."""
    from tests.build.conftest import copy_project

    project = copy_project(tmp_path, kernel_deb)
    code, doc, stderr = cvmlint_build(project, "-d", "debian", "--mkosi-profile", "dev", "recipes/tdx-base")
    assert doc is not None, stderr
    scan = statuses(doc["scan"])
    failing = {rule: status for rule, status in scan.items() if status not in ("pass", "skipped")}
    assert code == 0 and failing == {} and doc["drift"] == [], (failing, doc["drift"], stderr[-2000:])
    assert scan["CVM-PKG-001"] == "pass" and scan["CVM-PKG-004"] == "skipped"
    assert doc["scan"]["policy"]["profile_sources"] == {"tdx-base": "cvmlint.toml", "dev": "--mkosi-profile dev"}


def dpkg_database_of(image: Path, work: Path) -> Path:
    """The root partition's /var/lib/dpkg, copied out with the file system's own tools (fsck.erofs
    --extract, debugfs rdump): the test's scratch copy, so dpkg-query can list it."""
    table = json.loads(subprocess.run(["sfdisk", "-J", str(image)], capture_output=True, text=True, check=True).stdout)
    root = next(p for p in table["partitiontable"]["partitions"] if p["type"] == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709")
    part = work / "root.img"
    with open(image, "rb") as src, open(part, "wb") as dst:
        src.seek(root["start"] * 512)
        left = root["size"] * 512
        while left:
            chunk = src.read(min(left, 1 << 24))
            dst.write(chunk)
            left -= len(chunk)
    out = work / "root"
    if part.read_bytes()[1024:1028] == bytes.fromhex("e2e1f5e0"):  # erofs superblock magic
        subprocess.run(["fsck.erofs", f"--extract={out}", str(part)], check=True, capture_output=True)
        return out / "var/lib/dpkg"
    (out / "var/lib").mkdir(parents=True)
    subprocess.run(["debugfs", "-R", f"rdump /var/lib/dpkg {out}/var/lib", str(part)], check=True, capture_output=True)
    return out / "var/lib/dpkg"


@pytest.mark.heavy
@pytest.mark.parametrize("which", ["tdx-base", "mkosi-defaults"])
def test_the_sbom_of_a_built_image_lists_exactly_what_dpkg_query_lists(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """`cvmlint sbom` on a built image, both formats valid, against dpkg-query on the image's own database;
    and the build's evidence carries both documents."""
    from tests.scan.test_sbom import cyclonedx_packages, validate_cyclonedx, validate_spdx

    built = request.getfixturevalue("tdx_debian" if which == "tdx-base" else "mkosi_defaults")
    doc = built[1]
    image = Path(doc["image"]["path"])
    admindir = dpkg_database_of(image, tmp_path)
    listed = subprocess.run(
        [
            *("dpkg-query", f"--admindir={admindir}", "-W"),
            "-f=${db:Status-Status} ${Package} ${Version} ${Architecture}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = {tuple(line.split()[1:]) for line in listed.splitlines() if line.startswith("installed ")}
    assert len(expected) > 50
    for fmt in ("cyclonedx", "spdx"):
        out = tmp_path / f"sbom.{fmt}.json"
        proc = subprocess.run([sys.executable, "-m", "cvmlint", "sbom", str(image), "-f", fmt, "-o", str(out)])
        assert proc.returncode == 0
    validate_cyclonedx((tmp_path / "sbom.cyclonedx.json").read_text())
    validate_spdx(tmp_path / "sbom.spdx.json")
    assert cyclonedx_packages(json.loads((tmp_path / "sbom.cyclonedx.json").read_text())) == expected
    if which == "tdx-base":
        from cvmlint.evidence.bundle import read_bundle

        bundle = read_bundle(built[3] / "evidence")
        validate_cyclonedx(bundle["sbom.cdx.json"].decode())
        assert cyclonedx_packages(json.loads(bundle["sbom.cdx.json"])) == expected
        origins = re.search(
            r"(\d+) packages: (\d+) declared by the recipe, (\d+) pulled in", bundle["report.html"].decode()
        )
        assert origins is not None and int(origins[1]) == len(expected) == int(origins[2]) + int(origins[3])
        assert int(origins[3]) == len(doc["packages"]["undeclared"])


@pytest.mark.heavy
def test_the_build_provenance_is_slsa_v1_and_verifies_with_in_toto(tdx_debian: Any) -> None:
    """attestations/provenance.slsa.dsse.json, checked by in-toto's libraries: the subject is the image, the
    materials are every recipe file and every installed package with its digest, the builder names mkosi."""
    from cvmlint.evidence.bundle import read_bundle
    from tests.intoto import verified_statement

    code, doc, _, project = tdx_debian
    assert code == 0
    bundle = read_bundle(project / "evidence")
    public = project / "evidence-key.pem.pub"
    provenance = verified_statement(bundle["attestations/provenance.slsa.dsse.json"], public)
    assert provenance["predicateType"] == "https://slsa.dev/provenance/v1"
    assert provenance["subject"][0]["digest"] == {"sha256": doc["image"]["sha256"]}
    definition = provenance["predicate"]["buildDefinition"]
    resolved = {d.get("uri") or d["name"]: d["digest"]["sha256"] for d in definition["resolvedDependencies"]}
    inputs = doc["inputs"]
    assert {f["path"]: f["sha256"] for f in inputs["files"]}.items() <= resolved.items()
    debs = {d["name"]: d["digest"]["sha256"] for d in definition["resolvedDependencies"] if "uri" in d}
    assert debs == {p["name"]: p["sha256"] for p in inputs["packages"]}
    assert provenance["predicate"]["runDetails"]["builder"]["version"]["mkosi"] == doc["mkosi"]
    assert definition["externalParameters"]["recipe"] == "recipes/tdx-base"
    sbom = verified_statement(bundle["attestations/sbom.cdx.dsse.json"], public)
    assert sbom["predicate"] == json.loads(bundle["sbom.cdx.json"])


@pytest.mark.heavy
def test_a_rebuild_from_the_record_is_bit_for_bit_the_first(tdx_debian: Any) -> None:
    """The issue's check: a second build from a cold work directory, offered only the recorded package
    versions, has the same bytes, root hash and predicted PCR 11 and RTMRs."""
    code, doc, _, project = tdx_debian
    assert code == 0
    inputs = doc["inputs"]
    mirror = [p for p in inputs["packages"] if p["origin"] == "mirror"]
    assert len(mirror) > 100 and all(len(p["sha256"]) == 64 and p["version"] for p in mirror)
    assert {p["name"] for p in inputs["packages"] if p["origin"] != "mirror"} == {"linux-image-6.1.0-cvm"}
    assert "recipes/common/mkosi.repart/10-root.conf" in {f["path"] for f in inputs["files"]}
    assert {"mkosi", "systemd-repart", "erofs-utils", "dosfstools"} <= set(inputs["tools"])
    from cvmlint.build.rebuild import load_record

    bundle = load_record(Path(doc["outputs"]["evidence"]))  # the evidence pins the inputs too
    assert bundle.inputs == inputs and bundle.root_hash == doc["image"]["root_hash"] and bundle.image is None
    record = Path(doc["outputs"]["build summary"])
    proc = subprocess.run(
        [sys.executable, "-m", "cvmlint", "rebuild", "--format", "json", str(record)],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    again = json.loads(proc.stdout)
    checked = {c["what"]: c for c in again["checked"]}
    assert checked["verity root hash"]["same"] and checked["verity root hash"]["first"] == doc["image"]["root_hash"]
    for register in (
        "predicted PCR 11 (sha256)",
        "predicted PCR 11 (sha384)",
        "predicted RTMR[1]",
        "predicted RTMR[2]",
    ):
        assert checked[register]["same"], checked[register]
    assert again["inputs"]["fetched"] == len(mirror) and again["inputs"]["tools_changed"] == []
    assert again["second"]["inputs"]["packages"] == inputs["packages"]  # the rebuild's own record: the same
    different = [c for c in again["checked"] if c["same"] is False]
    assert proc.returncode == 0 and again["reproducible"], (different, again["differences"])
    assert Path(again["second"]["image"]["path"]).parent.name == "rebuild"


@pytest.mark.heavy
def test_an_unpinned_seed_fails_lint_and_the_rebuild_shows_where_and_why(project: Path) -> None:
    conf = project / "recipes/common/mkosi.conf"
    conf.write_text("".join(line for line in conf.read_text().splitlines(True) if not line.startswith("Seed=")))
    code, doc, err = cvmlint_build(project, "-d", "debian", "--no-gate", "--check-reproducible", "recipes/tdx-base")
    assert "Traceback" not in err
    assert statuses(doc["lint"])["CVM-BUILD-002"] == "fail" and doc["drift"] == []
    rebuild = doc["rebuild"]
    assert code == 1 and not rebuild["reproducible"] and rebuild["exit_code"] == 1
    checked = {c["what"]: c for c in rebuild["checked"]}
    assert checked["verity root hash"]["same"] is False and checked["image sha256"]["same"] is False
    assert checked["predicted PCR 5 (sha256)"]["same"] is False  # the GPT, with its GUIDs, is measured
    causes = {(d["where"], d["what"].split(" ")[0]): d["cause"] for d in rebuild["differences"]}
    assert causes[("gpt", "disk")].startswith("Seed=")
    assert causes[("root-x86-64:superblock", "uuid:")].startswith("Seed=")
    assert any(w == "root-x86-64-verity:superblock" and c.startswith("Seed=") for (w, _), c in causes.items())
    assert any(w == "esp:/grub/grub.cfg" and "roothash=" in c for (w, _), c in causes.items())
    # nothing but what the seed explains: every file of the root is the same
    assert not [w for w, _ in causes if w.startswith("root-x86-64:/")], causes


@pytest.mark.heavy
def test_a_build_script_that_installs_a_forbidden_package_is_drift(project: Path) -> None:
    """Lint cannot see through `xargs`: the recipe passes, the image holds lua, the build says where both are."""
    script = project / "recipes/tdx-base/mkosi.postinst"
    script.write_text(
        "#!/bin/sh\n# pulls in an interpreter the policy forbids, out of lint's sight\n"
        "echo lua5.4 | xargs mkosi-install\n"
    )
    script.chmod(0o755)
    code, doc, err = cvmlint_build(project, "-d", "debian", "--mkosi-arg=--with-network=yes", "recipes/tdx-base")
    assert code == 1, err[-2000:]
    assert doc["lint"]["exit_code"] == 0 and doc["scan"]["exit_code"] == 1
    drift = {d["rule_id"]: d for d in doc["drift"]}
    assert drift["CVM-PKG-003"]["recipe"] == "pass" and drift["CVM-PKG-003"]["image"] == "fail"
    assert drift["CVM-PKG-003"]["recipe_where"].startswith("recipes/common/mkosi.conf:")
    assert drift["CVM-PKG-003"]["image_where"].startswith("root:/var/lib/dpkg/status:")
    assert "lua5.4" in drift["CVM-PKG-003"]["message"]
    assert "lua5.4" in {p["name"] for p in doc["packages"]["undeclared"]}


def built_no_gate(tmp_path_factory: pytest.TempPathFactory, recipe: str) -> tuple[int, Any, str]:
    """`cvmlint build --no-gate` of tests/build/RECIPE in a fresh directory."""
    import shutil

    from tests.conftest import ROOT

    tmp_path = tmp_path_factory.mktemp(recipe)
    shutil.copytree(ROOT / "tests/build" / recipe, tmp_path / recipe)
    return cvmlint_build(tmp_path, "--no-gate", recipe)


@pytest.fixture(scope="module")
def mkosi_defaults(tmp_path_factory: pytest.TempPathFactory, build_root: Path) -> tuple[int, Any, str]:
    """A bootable Debian image with mkosi's defaults (systemd-boot 257, a Type #1 entry), built --no-gate."""
    return built_no_gate(tmp_path_factory, "mkosi-defaults")


@pytest.mark.heavy
def test_mkosi_defaults_scan_with_every_finding_explained(mkosi_defaults: tuple[int, Any, str]) -> None:
    """A bootable Debian image with mkosi's defaults, built --no-gate, every finding checked by hand once."""
    code, doc, err = mkosi_defaults
    assert code == 1, err[-2000:]
    assert doc["notes"] == ["built with --no-gate although lint failed: a development image, not a release"]
    assert doc["scan"]["notes"] == doc["notes"] and doc["lint"]["notes"] == doc["notes"]
    scan = statuses(doc["scan"])
    assert scan == {
        "CVM-PKG-001": "fail",  # Debian's base system is not the hardened allowlist (cpio, …)
        "CVM-PKG-002": "fail",  # dpkg
        "CVM-PKG-003": "fail",  # perl-base
        "CVM-PKG-004": "pass",
        "CVM-PKG-005": "pass",
        "CVM-PKG-006": "pass",
        "CVM-FS-001": "fail",  # a writable ext4 root
        "CVM-FS-002": "fail",  # /var/tmp and /var/log on the root
        "CVM-FS-003": "pass",  # systemd's own pseudo file system mounts are not storage
        "CVM-FS-004": "fail",  # su, passwd, mount … keep their set-id bits
        "CVM-VER-001": "fail",
        "CVM-VER-002": "fail",  # no verity, no roothash=
        "CVM-VER-003": "unknown",  # no verity partitions to compare UUIDs with
        "CVM-BOOT-001": "fail",  # no lockdown=
        "CVM-BOOT-002": "fail",  # no module.sig_enforce=1, CONFIG_MODULE_SIG_FORCE unset
        "CVM-BOOT-003": "pass",
        "CVM-BOOT-004": "pass",  # Debian-signed systemd-boot and kernel
        "CVM-BOOT-005": "pass",
        "CVM-BOOT-006": "pass",  # every security parameter once
        "CVM-KERN-001": "fail",  # Debian's kernel has no BadAML guard
        "CVM-KERN-002": "fail",  # CONFIG_ACPI_TABLE_UPGRADE=y (read from esp:/config-<kver>)
        "CVM-KERN-003": "pass",  # CONFIG_STRICT_DEVMEM=y
        "CVM-KERN-004": "fail",  # CONFIG_KEXEC=y
        "CVM-KERN-005": "pass",
        "CVM-BUILD-001": "skipped",
        "CVM-BUILD-002": "skipped",
        "CVM-BUILD-003": "fail",  # /var/cache/ldconfig/aux-cache: mkosi leaves it
        "CVM-BUILD-004": "skipped",
    }
    fs003 = [f["message"] for r in doc["scan"]["results"] if r["rule"] == "CVM-FS-003" for f in r["findings"]]
    assert not any("fuse" in m for m in fs003)


def test_without_mkosi_or_tool_root_it_says_how_to_set_up(tmp_path: Path) -> None:
    from tests.conftest import ROOT

    code, doc, err = cvmlint_build(
        ROOT, "-d", "debian", "recipes/tdx-base", env={"CVMLINT_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    )
    assert code == 2 and doc is None
    assert err.startswith("no usable mkosi: the host has no mkosi (25 or newer is needed)")
    assert "run `cvmlint build --setup` once, as root" in err


def test_a_lint_failure_builds_nothing(tmp_path: Path) -> None:
    tree = tmp_path / "r"
    (tree / "mkosi.repart").mkdir(parents=True)
    (tree / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=debian\nRelease=trixie\n[Content]\nPackages=openssh-server\n"
    )
    code, doc, _ = cvmlint_build(tmp_path, "r", env={"CVMLINT_CACHE": str(tmp_path)})
    assert code == 1 and doc["gated"] is True and doc["image"] is None and doc["scan"] is None
    assert "CVM-PKG-004" in {r["rule"] for r in doc["lint"]["results"] if r["status"] == "fail"}


def minimal_recipe(directory: Path, packages: str, extra: dict[str, str] | None = None) -> Path:
    (directory / "mkosi.conf").parent.mkdir(parents=True, exist_ok=True)
    (directory / "mkosi.conf").write_text(
        f"[Distribution]\nDistribution=debian\nRelease=trixie\n"
        f"Architecture=x86-64\n[Content]\nBootable=no\nPackages={packages}\n"
    )
    for name, text in (extra or {}).items():
        (directory / name).write_text(text)
        (directory / name).chmod(0o755)
    return directory


@pytest.mark.heavy
def test_a_failing_mkosi_exits_2_with_its_last_lines_and_log(tmp_path: Path, build_root: Path) -> None:
    minimal_recipe(tmp_path / "r", "cvmlint-no-such-package")
    code, doc, err = cvmlint_build(tmp_path, "--no-gate", "r")
    assert code == 2 and doc is None
    # the progress, one line per step off a terminal, with the seconds since the build began
    assert re.search(r"cvmlint: mkosi: \[ *\d+\.\d s\] Installing Debian", err), err[-2000:]
    assert "mkosi build failed (exit " in err and "; its last lines:" in err
    assert "cvmlint-no-such-package" in err  # apt's complaint, among mkosi's last lines
    log = Path(err.split("The whole log: ")[1].split()[0])
    assert log.is_file() and "cvmlint-no-such-package" in log.read_text()


@pytest.mark.heavy
def test_an_image_missing_after_the_build_exits_2(tmp_path: Path, build_root: Path) -> None:
    # mkosi itself checks that the file is there (a directory does), cvmlint that it is an image
    moved = '#!/bin/sh\nmv "$OUTPUTDIR/image.raw" "$OUTPUTDIR/moved.raw" && mkdir "$OUTPUTDIR/image.raw"\n'
    minimal_recipe(tmp_path / "r", "base-files", {"mkosi.postoutput": moved})
    code, doc, err = cvmlint_build(tmp_path, "--no-gate", "r")
    assert code == 2 and doc is None
    assert "mkosi finished, but the image it names" in err and "is not there" in err
