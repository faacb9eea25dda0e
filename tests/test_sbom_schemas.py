"""The SBOM validators the tests rely on reject broken documents (negative controls): a test that
validates our documents cannot pass on anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cvmlint.sbom import Part, Sbom, cyclonedx_json, spdx_json

SBOM = Sbom(
    Part("image", "image", "x.raw", sha256="ab" * 32, properties={"cvmlint:verity-root-hash": "cd" * 32}),
    [Part("pkg:bash:amd64", "package", "bash", "5.2.15-2+b2", "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64",
          licences=["GPL-3+"])],
)  # fmt: skip


def cyclonedx_errors(document: dict[str, Any]) -> object:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))


def spdx_errors(document: dict[str, Any], tmp_path: Path) -> list[Any]:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    path = tmp_path / "doc.spdx.json"
    path.write_text(json.dumps(document))
    try:
        return list(validate_full_spdx_document(parse_file(str(path))))
    except Exception as error:  # spdx-tools refuses some documents while parsing: that is a rejection too
        return [error]


def test_cyclonedx_validation_accepts_ours_and_rejects_broken_ones() -> None:
    good = json.loads(cyclonedx_json(SBOM))
    assert cyclonedx_errors(good) is None
    broken = [
        good | {"bomFormat": "SPDX"},
        good | {"components": [{k: v for k, v in good["components"][0].items() if k != "name"}]},
        good | {"components": [good["components"][0] | {"type": "kernel-module"}]},
        good | {"unexpected": True},
        good | {"components": [good["components"][0] | {"hashes": [{"alg": "SHA-256", "content": "xyz"}]}]},
    ]
    for document in broken:
        assert cyclonedx_errors(document) is not None, document


def test_spdx_validation_accepts_ours_and_rejects_broken_ones(tmp_path: Path) -> None:
    good = json.loads(spdx_json(SBOM))
    assert spdx_errors(good, tmp_path) == []
    package = good["packages"][1]
    broken = [
        good | {"spdxVersion": "SPDX-9.9"},
        good | {"packages": [good["packages"][0], {k: v for k, v in package.items() if k != "SPDXID"}]},
        good | {"packages": [good["packages"][0], package | {"checksums": [{"algorithm": "SHA256",
                                                                           "checksumValue": "x"}]}]},
        good | {"relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                                   "relatedSpdxElement": "SPDXRef-nothing"}]},
    ]  # fmt: skip
    for document in broken:
        assert spdx_errors(document, tmp_path) != [], document


@pytest.mark.parametrize("field", ["name", "version", "purl"])
def test_our_package_component_carries_what_the_issue_asks(field: str) -> None:
    component = json.loads(cyclonedx_json(SBOM))["components"][0]
    assert component[field]
