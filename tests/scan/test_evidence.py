"""Evidence bundles of real scans: signed, verified byte by byte, replayed, compared, and their
OSCAL document and HTML page checked (the page in headless Chromium)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.images import HARDENED_CMDLINE, Variant
from tests.scan.conftest import cvmlint
from tests.tools import require

pytestmark = pytest.mark.slow


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "cvmlint", *map(str, args)], capture_output=True, text=True, timeout=600
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("keys")
    out = {}
    for algorithm in ("ed25519", "ecdsa-p256"):
        key = directory / f"{algorithm}.pem"
        assert run("evidence", "keygen", key, "--algorithm", algorithm).returncode == 0
        out[algorithm] = key
    return out


@pytest.fixture(scope="module")
def bundle(hardened_grub: Path, keys: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("evidence") / "bundle"
    proc = run(
        "scan",
        "--profile",
        "tdx-base",
        "--format",
        "json",
        "--evidence",
        dest,
        "--sign-key",
        keys["ed25519"],
        hardened_grub,
    )
    assert proc.returncode == 1  # the stock Debian minbase fails the package rules
    assert f"cvmlint: evidence: {dest} (signed by key " in proc.stderr
    return dest


def test_a_signed_bundle_holds_everything_and_verifies(
    bundle: Path, keys: dict[str, Path], hardened_grub: Path
) -> None:
    names = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    assert names == [
        "attestations/sbom.cdx.dsse.json",
        "facts.json",
        "inputs.json",
        "oscal.json",
        "policy/allowlists/common.txt",
        "policy/allowlists/dev.txt",
        "policy/allowlists/gpu.txt",
        "policy/allowlists/none.txt",
        "policy/allowlists/sev-snp-base.txt",
        "policy/allowlists/tdx-base.txt",
        "policy/cvm-baseline.cvmp",
        "policy/policy.json",
        "report.html",
        "results.json",
        "sbom.cdx.json",
        "sbom.spdx.json",
        "statement.json",
        "tool.json",
    ]
    inputs = json.loads((bundle / "inputs.json").read_text())
    assert inputs["sha256"] == run_sha256(hardened_grub)
    from tests.scan.test_sbom import validate_cyclonedx, validate_spdx

    validate_cyclonedx((bundle / "sbom.cdx.json").read_text())
    validate_spdx(bundle / "sbom.spdx.json")
    cdx = json.loads((bundle / "sbom.cdx.json").read_text())
    assert cdx["metadata"]["component"]["hashes"][0]["content"] == inputs["sha256"]
    packages = sum(c.get("purl", "").startswith("pkg:deb/") for c in cdx["components"])
    page = (bundle / "report.html").read_text()
    assert f"{packages} packages; bill of materials: <a href='sbom.cdx.json'>CycloneDX</a>" in page
    assert [p["type"] for p in inputs["partitions"]] == ["esp", "root-x86-64", "root-x86-64-verity"]
    assert inputs["verity"]["root_hash"] == inputs["verity"]["data_root_hash"]
    proc = run("evidence", "verify", bundle, "--key", f"{keys['ed25519']}.pub", "--image", hardened_grub)
    assert proc.returncode == 0 and proc.stdout.endswith("verified\n"), proc.stdout


def run_sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_one_changed_byte_in_any_file_is_named(bundle: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    files = sorted(p.relative_to(bundle) for p in bundle.rglob("*") if p.is_file())
    for rel in files:
        copy = tmp_path / str(rel).replace("/", "_")
        shutil.copytree(bundle, copy)
        target = copy / rel
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        proc = run("evidence", "verify", copy, "--key", f"{keys['ed25519']}.pub")
        assert proc.returncode == 1, rel
        if rel.name == "statement.json":
            assert "MISMATCH: statement.json:" in proc.stdout, proc.stdout
        else:
            assert f"MISMATCH: {rel.as_posix()}: sha256 " in proc.stdout and "the file was changed" in proc.stdout


def test_the_wrong_key_an_extra_file_and_another_image_are_mismatches(
    bundle: Path, keys: dict[str, Path], tmp_path: Path, cloud_image: Path
) -> None:
    proc = run("evidence", "verify", bundle, "--key", f"{keys['ecdsa-p256']}.pub")
    assert proc.returncode == 1 and "no signature by key" in proc.stdout
    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    (copy / "extra.txt").write_text("slipped in\n")
    proc = run("evidence", "verify", copy, "--key", f"{keys['ed25519']}.pub", "--image", cloud_image)
    assert "MISMATCH: extra.txt: in the bundle but not covered by the statement" in proc.stdout
    assert f"MISMATCH: {cloud_image}: sha256 " in proc.stdout and proc.returncode == 1


def test_a_private_key_given_to_verify_is_refused_naming_the_public_one(bundle: Path, keys: dict[str, Path]) -> None:
    proc = run("evidence", "verify", bundle, "--key", keys["ed25519"])
    assert proc.returncode == 2 and "is a private key: --key takes the signer's public key" in proc.stderr
    assert f"Tip: use {keys['ed25519']}.pub" in proc.stderr and "verified" not in proc.stdout


def test_replay_reproduces_the_results_and_names_a_changed_fact(bundle: Path, tmp_path: Path) -> None:
    proc = run("evidence", "replay", bundle)
    assert proc.returncode == 0 and proc.stdout.endswith("verified\n"), proc.stdout
    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    facts = json.loads((copy / "facts.json").read_text())
    facts["facts"]["packages"]["items"].append(
        {
            "name": "openssh-server",
            "version": "1:9.2p1-2",
            "origin": "dpkg",
            "where": {"partition": "root", "file": "/var/lib/dpkg/status"},
        }
    )
    (copy / "facts.json").write_text(json.dumps(facts))
    proc = run("evidence", "replay", copy)
    assert proc.returncode == 1
    assert "MISMATCH: CVM-PKG-004: results.json says pass, the facts give fail" in proc.stdout


def test_an_unsigned_tar_bundle_says_so(hardened_grub: Path, tmp_path: Path) -> None:
    dest = tmp_path / "bundle.tar"
    proc = run("scan", "--profile", "tdx-base", "--evidence", dest, hardened_grub)
    assert "UNSIGNED: no --sign-key" in proc.stderr
    proc = run("evidence", "verify", dest)
    assert proc.returncode == 1 and "the bundle is unsigned" in proc.stdout
    proc = run("evidence", "verify", dest, "--allow-unsigned")
    assert proc.returncode == 0 and "note: the bundle is UNSIGNED" in proc.stdout
    assert run("evidence", "replay", dest).returncode == 0
    import tarfile

    with tarfile.open(dest) as tar:
        page = tar.extractfile("report.html").read().decode()  # type: ignore[union-attr]
    assert "This report is UNSIGNED" in page


def test_the_sbom_attestation_verifies_with_the_in_toto_library(bundle: Path, keys: dict[str, Path]) -> None:
    """attestations/sbom.cdx.dsse.json: in-toto's own verifier accepts the signature and the Statement; the
    predicate is the bundle's CycloneDX document, the subject the image; one changed byte is refused."""
    import base64

    from tests.intoto import verified_statement

    public = Path(f"{keys['ed25519']}.pub")
    envelope = (bundle / "attestations/sbom.cdx.dsse.json").read_bytes()
    statement = verified_statement(envelope, public)
    inputs = json.loads((bundle / "inputs.json").read_text())
    assert statement["predicateType"] == "https://cyclonedx.org/bom"
    assert statement["subject"] == [{"name": inputs["name"], "digest": {"sha256": inputs["sha256"]}}]
    assert statement["predicate"] == json.loads((bundle / "sbom.cdx.json").read_text())
    tampered = json.loads(envelope)
    body = bytearray(base64.b64decode(tampered["payload"]))
    body[body.index(b"hardened-grub.raw")] ^= 1
    tampered["payload"] = base64.b64encode(bytes(body)).decode()
    with pytest.raises(Exception, match=r"(?i)verif|signature|threshold"):
        verified_statement(json.dumps(tampered).encode(), public)


def test_two_bundles_of_one_scan_differ_only_in_times_and_signatures(
    hardened_grub: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    for name in ("first", "second"):  # the same command line, run in two directories
        (tmp_path / name).mkdir()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cvmlint",
                "scan",
                "--profile",
                "tdx-base",
                "--evidence",
                "bundle",
                "--sign-key",
                str(keys["ed25519"]),
                str(hardened_grub),
            ],
            cwd=tmp_path / name,
            check=False,
            capture_output=True,
        )
    bundle, again = tmp_path / "first/bundle", tmp_path / "second/bundle"
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        rel = path.relative_to(bundle)
        a, b = path.read_bytes(), (again / rel).read_bytes()
        if rel.parts[0] == "attestations":  # signed statements: compare what they say
            a, b = (base64.b64decode(json.loads(x)["payload"]) for x in (a, b))
        if rel.name in ("tool.json", "statement.json", "oscal.json", "report.html") or rel.name.startswith("sbom."):
            a, b = _untimed(a), _untimed(b)
        assert a == b, rel


def _untimed(data: bytes) -> Any:
    import re

    data = re.sub(rb'"(payload|sig|serialNumber)": "[^"]*"', b"", data)  # a CycloneDX serial includes the time
    data = re.sub(rb'"serialNumber":"[^"]*"', b"", data)
    return re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|\+00:00)", b"TIME", data)


def test_diff_names_the_rule_and_the_fact_that_changed(hardened_grub: Path, variant_image: Any, bundle: Path) -> None:
    """A rule that goes from pass to fail is exit 1, named with the fact that changed; the image's and
    each partition's digests are shown, the ESP (the command line is in its grub.cfg) as changed."""
    image = variant_image("no-lockdown", Variant(cmdline=HARDENED_CMDLINE.replace("lockdown=integrity ", "")))
    proc = run("evidence", "diff", bundle, image, "--profile", "tdx-base")
    assert proc.returncode == 1, proc.stderr
    assert "cmdline:" in proc.stdout and "lockdown=integrity" in proc.stdout
    assert "rule CVM-BOOT-001: pass -> fail (changed: cmdline)" in proc.stdout, proc.stdout
    assert "worse: 1 rules (CVM-BOOT-001)" in proc.stdout
    assert f"image: {run_sha256(hardened_grub)} -> {run_sha256(image)} (changed)" in proc.stdout
    assert "partition 1 esp: " in proc.stdout and "partition 2 root-x86-64: " in proc.stdout
    same = run("evidence", "diff", bundle, bundle)
    assert same.returncode == 0 and "rules: no status changed" in same.stdout


def test_diff_names_a_profile_as_the_cause(hardened_grub: Path, bundle: Path) -> None:
    """The same image judged with the dev profile too: the SSH rule stops being checked (worse, exit 1),
    and the cause shown is the profile, not a fact; the digests are the same."""
    proc = run("evidence", "diff", bundle, hardened_grub, "--profile", "tdx-base", "--profile", "dev")
    assert proc.returncode == 1 and "profiles:\n  + dev (" in proc.stdout, proc.stdout
    assert "rule CVM-PKG-004: pass -> skipped (changed: profiles)" in proc.stdout
    assert f"image: {run_sha256(hardened_grub)} -> {run_sha256(hardened_grub)} (same)" in proc.stdout


def test_the_oscal_document_validates(bundle: Path) -> None:
    from trestle.oscal.assessment_results import AssessmentResults

    from cvmlint.evidence.oscal import control_id

    doc = json.loads((bundle / "oscal.json").read_text())
    model = AssessmentResults.parse_obj(doc["assessment-results"])
    result = model.results[0]
    controls = {
        c.control_id
        for sel in result.reviewed_controls.control_selections
        for c in getattr(sel, "include_controls", None) or ()
    }
    assert {"cm-7.5", "si-7"} <= controls
    assert any(f.title.startswith("CVM-PKG-001") for f in result.findings or ())
    results = json.loads((bundle / "results.json").read_text())["results"]
    # every rule an observation (skipped ones too), one finding per failed or unknown rule with all its controls
    assert len(result.observations or ()) == len(results)
    judged = [r for r in results if r["status"] in ("fail", "unknown", "error")]
    assert sorted(f.title.split(":")[0] for f in result.findings or ()) == sorted(r["rule"] for r in judged)
    raw = {f["title"].split(":")[0]: f for f in doc["assessment-results"]["results"][0]["findings"]}
    several = 0
    for rule in judged:
        named = [p["value"] for p in raw[rule["rule"]].get("props", []) if p["name"] == "control-id"]
        assert named == [c for c in map(control_id, rule.get("references", [])) if c]
        several += len(named) > 1
    assert several  # a rule mapped to two controls is one finding naming both
    broken = json.loads(json.dumps(doc["assessment-results"]))  # a negative control: trestle refuses it
    del broken["results"][0]["uuid"]
    broken["results"][0]["findings"][0]["target"]["status"]["state"] = "maybe"
    with pytest.raises(Exception, match=r"uuid|state"):
        AssessmentResults.parse_obj(broken)


def test_the_html_report_in_a_browser(bundle: Path, tmp_path: Path) -> None:
    require("chromium")
    page = bundle / "report.html"
    text = page.read_text()
    assert "<script" not in text and "http://" not in text and "https://" not in text  # self-contained
    shot = tmp_path / "report.png"
    argv = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,1600",
    ]
    subprocess.run([*argv, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=False)
    assert shot.is_file() and shot.stat().st_size > 10_000
    dom = subprocess.run(
        [*argv, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=False
    ).stdout
    assert "FAIL:" in dom and "rules failed" in dom
    results = json.loads((bundle / "results.json").read_text())["results"]
    for rule in (r for r in results if r["status"] == "fail"):
        assert rule["rule"] in dom and rule["findings"][0]["message"].split(" ")[0] in dom
    shutil.copy(shot, Path("/tmp/cvmlint-report.png"))  # to look at by hand


def test_scan_html_shows_what_the_bundle_page_shows_and_fits_a_phone(hardened_grub: Path, tmp_path: Path) -> None:
    """`scan -f html` names the image's SHA-256, its partitions and the verity root hash like the bundle's
    page; it declares a viewport, and rule texts' `code` is code, not raw backticks."""
    page = tmp_path / "scan.html"
    proc = run("scan", "--profile", "tdx-base", "-f", "html", "-o", page, hardened_grub)
    assert proc.returncode in (0, 1), proc.stderr
    text = page.read_text()
    assert f"<code>{run_sha256(hardened_grub)}</code>" in text and "dm-verity root hash" in text
    assert "<th>partitions</th>" in text and "root-x86-64-verity" in text
    assert "<meta name=viewport content='width=device-width, initial-scale=1'>" in text
    assert "through the <code>dev</code> profile" in text and "`dev`" not in text
    require("chromium")
    shot = tmp_path / "phone.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=390,1400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert shot.is_file() and shot.stat().st_size > 10_000
    shutil.copy(shot, Path("/tmp/cvmlint-scan-phone.png"))  # to look at by hand


def test_lint_writes_a_recipe_bundle(tmp_path: Path) -> None:
    from tests.conftest import ROOT

    dest = tmp_path / "recipe-bundle"
    proc = subprocess.run(
        [sys.executable, "-m", "cvmlint", "lint", "recipes/tdx-base", "--evidence", str(dest)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    inputs = json.loads((dest / "inputs.json").read_text())
    assert inputs["kind"] == "recipe"
    assert "recipes/common/mkosi.conf" in {f["path"] for f in inputs["files"]}
    statement = json.loads((dest / "statement.json").read_text())
    assert statement["signatures"] == []
    assert cvmlint("evidence", "replay", dest).code == 0


def test_replay_judges_waivers_on_the_day_the_bundle_was_made(hardened_grub: Path, tmp_path: Path) -> None:
    from datetime import date, timedelta

    from cvmlint.evidence.verify import replay_bundle

    expires = date.today() + timedelta(days=30)
    waivers = tmp_path / "waivers.toml"
    waivers.write_text(
        f'[[waiver]]\nrule = "CVM-KERN-001"\nreason = "BadAML fix lands in the next kernel"\n'
        f'approver = "alice@example.com"\nexpires = {expires}\n'
    )
    dest = tmp_path / "bundle"
    proc = run("scan", "--profile", "tdx-base", "--waivers", waivers, "--evidence", dest, "-f", "json", hardened_grub)
    assert proc.returncode == 1, proc.stderr
    assert {r["rule"]: r["status"] for r in json.loads(proc.stdout)["results"]}["CVM-KERN-001"] == "waived"
    check, results = replay_bundle(dest)
    assert check.problems == [] and check.notes == []
    check, results = replay_bundle(dest, today=expires + timedelta(days=1))
    assert check.problems == []  # judged as on the day the bundle was made: still waived
    assert {r["rule"]: r["status"] for r in results}["CVM-KERN-001"] == "waived"
    assert any(
        n.startswith("waiver for CVM-KERN-001") and f"has expired since ({expires})" in n for n in check.notes
    ), check.notes
