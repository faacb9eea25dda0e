"""`cvmlint sbom` on images the tests build from real Debian trees: each document validates with its
format's own library, and the package list is what dpkg-query lists in the tree the image was made from."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import images
from tests.scan.conftest import cvmlint
from tests.tools import minbase_tree

pytestmark = pytest.mark.slow


def dpkg_query(tree: Path) -> set[tuple[str, str, str]]:
    """(name, version, architecture) of every installed package, as dpkg itself lists them."""
    out = subprocess.run(
        [
            *("dpkg-query", f"--admindir={tree}/var/lib/dpkg", "-W"),
            "-f=${db:Status-Status} ${Package} ${Version} ${Architecture}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {tuple(line.split()[1:]) for line in out.splitlines() if line.startswith("installed ")}  # type: ignore[misc]


def sbom(target: Path, fmt: str, dest: Path) -> Any:
    out = dest / f"sbom.{fmt}.json"
    run = cvmlint("sbom", target, "-f", fmt, "-o", out)
    assert run.code == 0, run.err
    return json.loads(out.read_text()), out


def cyclonedx_packages(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    found = set()
    for c in doc["components"]:
        if c.get("purl", "").startswith("pkg:deb/"):
            arch = re.search(r"arch=([^&]+)", c["purl"])
            found.add((c["name"], c["version"], arch.group(1) if arch else ""))
    return found


def validate_cyclonedx(text: str) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None


def validate_spdx(path: Path) -> Any:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    document = parse_file(str(path))
    assert validate_full_spdx_document(document) == []
    return document


@pytest.mark.parametrize("which", ["hardened", "cloud"])
def test_the_packages_are_exactly_what_dpkg_lists_in_the_tree(
    which: str, hardened_grub: Path, cloud_image: Path, tmp_path: Path
) -> None:
    image, tree = (hardened_grub, minbase_tree()) if which == "hardened" else (cloud_image, images.cloud_tree())
    expected = dpkg_query(tree)
    assert len(expected) > 80
    cdx, cdx_path = sbom(image, "cyclonedx", tmp_path)
    validate_cyclonedx(cdx_path.read_text())
    assert cyclonedx_packages(cdx) == expected
    _, spdx_path = sbom(image, "spdx", tmp_path)
    document = validate_spdx(spdx_path)
    with_purl = [p for p in document.packages if p.external_references]
    assert {(p.name, p.version) for p in with_purl} == {(n, v) for n, v, _ in expected}
    root = cdx["metadata"]["component"]
    assert root["hashes"][0]["content"] == hashlib.sha256(image.read_bytes()).hexdigest()


def test_licences_come_from_the_machine_readable_copyright_files(hardened_grub: Path, tmp_path: Path) -> None:
    cdx, _ = sbom(hardened_grub, "cyclonedx", tmp_path)
    by_name = {c["name"]: c for c in cdx["components"]}
    checked = 0
    for doc in sorted((minbase_tree() / "usr/share/doc").glob("*/copyright")):
        text = doc.read_text(errors="replace")
        name = doc.parent.name
        if name not in by_name:
            continue
        licences = by_name[name].get("licenses", [])
        if not text.startswith("Format:"):
            assert licences == [], name
            continue
        # the header's and each Files paragraph's License (stand-alone License paragraphs only give texts)
        paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
        applying = [p for k, p in enumerate(paragraphs) if k == 0 or re.search(r"^Files:", p, re.MULTILINE)]
        fields = {m.group(1).strip() for p in applying for m in re.finditer(r"^License:(.*)$", p, re.MULTILINE)}
        fields.discard("")
        shown = {x["license"].get("name") or x["license"].get("id") for x in licences if "license" in x}
        expression = next((x["expression"] for x in licences if "expression" in x), None)
        assert shown == fields or expression is not None, name
        checked += 1
    assert checked > 50
    assert by_name["grep"]["licenses"] == [{"expression": "GPL-3.0-or-later"}]  # DEP-5 GPL-3+
    # public-domain has no SPDX identifier: the DEP-5 names are given as they are
    assert {x["license"]["name"] for x in by_name["base-passwd"]["licenses"]} == {"GPL-2", "public-domain"}


def test_the_boot_binaries_and_the_image_carry_their_digests_and_signers(
    hardened_grub: Path, payload: images.Payload, tmp_path: Path
) -> None:
    cdx, _ = sbom(hardened_grub, "cyclonedx", tmp_path)
    boot = {c["name"]: c for c in cdx["components"] if c["bom-ref"].startswith("esp:")}
    shim = boot["/EFI/BOOT/BOOTX64.EFI"]
    real = hashlib.sha256(payload.file("usr/lib/shim/shimx64.efi.signed").read_bytes()).hexdigest()
    assert shim["hashes"] == [{"alg": "SHA-256", "content": real}]
    props = {p["name"]: p["value"] for p in shim["properties"]}
    assert props["cvmlint:boot-role"] == "shim" and "Microsoft" in props["cvmlint:authenticode-signer"]
    kernel = next(c for c in cdx["components"] if c["bom-ref"] == "kernel")
    assert kernel["version"] == payload.kver
    root = {p["name"]: p["value"] for p in cdx["metadata"]["component"]["properties"]}
    assert re.fullmatch(r"[0-9a-f]{64}", root["cvmlint:verity-root-hash"])


def test_a_recipe_sbom_lists_the_declared_packages_at_their_lines(tmp_path: Path) -> None:
    cdx, cdx_path = sbom(Path("recipes/tdx-base"), "cyclonedx", tmp_path)
    validate_cyclonedx(cdx_path.read_text())
    declared = {c["name"]: {p["name"]: p["value"] for p in c["properties"]} for c in cdx["components"]}
    assert "systemd" in declared and "version" not in next(c for c in cdx["components"] if c["name"] == "systemd")
    where = declared["systemd"]["cvmlint:declared-at"]
    path, line = where.rsplit(":", 1)
    assert Path(path).read_text().splitlines()[int(line) - 1].strip() in ("systemd", "Packages=systemd")
    _, spdx_path = sbom(Path("recipes/tdx-base"), "spdx", tmp_path)
    validate_spdx(spdx_path)


def test_an_image_whose_root_cannot_be_read_gives_an_incomplete_sbom_and_exit_1(tmp_path: Path) -> None:
    """A LUKS2 root: no package list, and the SBOM says so (never an empty list passed off as complete)."""
    image = images.unreadable_root("luks-root")
    out = tmp_path / "sbom.json"
    run = cvmlint("sbom", image, "-o", out)
    assert run.code == 1 and "packages unknown (" in run.err and "incomplete" in run.err
    validate_cyclonedx(out.read_text())
    root = {p["name"]: p["value"] for p in json.loads(out.read_text())["metadata"]["component"]["properties"]}
    assert "LUKS2" in root["cvmlint:unknown:packages"] or "luks" in root["cvmlint:unknown:packages"].lower()
