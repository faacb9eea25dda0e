"""Software bills of materials from what cvmlint read: CycloneDX 1.6 JSON (cyclonedx-python-lib) and
SPDX 2.3 JSON (spdx-tools, the SPDX project's own library: it writes and validates the document).

An image's SBOM: the image itself as the root component (its SHA-256 and the dm-verity root hash),
every package of its dpkg database (name, version, architecture, source package, package URL, and the
licences of /usr/share/doc/NAME/copyright when it is in the machine-readable format, DEP-5), the
kernel (version, the BadAML guard markers found in it) and every EFI binary on the ESP (SHA-256,
Authenticode signer). A recipe's: the declared packages, each with the file and line that declares
it, marked declared (their versions exist only once the image is built).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cvmlint import __version__
from cvmlint.facts.model import Facts
from cvmlint.facts.provenance import Items, Unknown

if TYPE_CHECKING:
    from cvmlint.image.tree import Tree

COPYRIGHT_BYTES = 1 << 20
"""A copyright file larger than this is not read for licences (Debian's largest are a few hundred KiB)."""

# DEP-5 short names (Debian's copyright-format 1.0, "Short name") as SPDX identifiers.
DEP5_TO_SPDX = {
    "GPL-1": "GPL-1.0-only", "GPL-1+": "GPL-1.0-or-later", "GPL-2": "GPL-2.0-only", "GPL-2+": "GPL-2.0-or-later",
    "GPL-3": "GPL-3.0-only", "GPL-3+": "GPL-3.0-or-later", "LGPL-2": "LGPL-2.0-only", "LGPL-2+": "LGPL-2.0-or-later",
    "LGPL-2.1": "LGPL-2.1-only", "LGPL-2.1+": "LGPL-2.1-or-later", "LGPL-3": "LGPL-3.0-only",
    "LGPL-3+": "LGPL-3.0-or-later", "AGPL-3": "AGPL-3.0-only", "AGPL-3+": "AGPL-3.0-or-later",
    "GFDL-1.2": "GFDL-1.2-only", "GFDL-1.2+": "GFDL-1.2-or-later", "GFDL-1.3": "GFDL-1.3-only",
    "GFDL-1.3+": "GFDL-1.3-or-later", "Expat": "MIT", "BSD-2-clause": "BSD-2-Clause", "BSD-3-clause": "BSD-3-Clause",
    "BSD-4-clause": "BSD-4-Clause", "Artistic": "Artistic-1.0-Perl", "Artistic-2.0": "Artistic-2.0",
    "Apache-2.0": "Apache-2.0", "MPL-1.1": "MPL-1.1", "MPL-2.0": "MPL-2.0", "Zlib": "Zlib", "ISC": "ISC",
    "CC0-1.0": "CC0-1.0", "public-domain": "LicenseRef-public-domain",
}  # fmt: skip
_OPERATOR = re.compile(r"\s+(or|and)\s+", re.IGNORECASE)


@dataclass
class Part:
    """One component, in neither format's words."""

    ref: str
    kind: str  # image, recipe, package, declared, kernel, boot
    name: str
    version: str = ""
    purl: str = ""
    sha256: str = ""
    licences: list[str] = field(default_factory=list)
    """DEP-5 License fields, as written (`GPL-2+ or Artistic`)."""
    properties: dict[str, str] = field(default_factory=dict)


@dataclass
class Sbom:
    root: Part
    parts: list[Part]
    created: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    @property
    def unknown(self) -> dict[str, str]:
        """What could not be read, by fact: an SBOM without it is incomplete, and says so."""
        prefix = "cvmlint:unknown:"
        return {k.removeprefix(prefix): v for k, v in self.root.properties.items() if k.startswith(prefix)}


def from_facts(facts: Facts, root_tree: Tree | None = None) -> Sbom:
    """The SBOM of an image's or a recipe's facts; `root_tree` (an image's root) gives the licences."""
    target = facts.target
    digest = target.digest.removeprefix("sha256:") if isinstance(target.digest, str) else ""
    system = facts.os if not isinstance(facts.os, Unknown) else None
    distro = (system.distribution if system and isinstance(system.distribution, str) else "") or "debian"
    release = system.release if system and isinstance(system.release, str) else ""
    if target.kind == "recipe":
        root = Part("recipe", "recipe", target.name, sha256=digest, properties={"cvmlint:kind": "recipe"})
        _note_unknown(root, facts, ("packages",))
        return Sbom(root, _declared(facts, distro, release))
    root = Part("image", "image", target.name, sha256=digest, properties={"cvmlint:kind": "disk image"})
    _note_unknown(root, facts, ("packages", "kernel", "boot"))
    verity = facts.verity
    root_hash = getattr(verity, "root_hash", None)
    if isinstance(root_hash, str) and root_hash:
        root.properties["cvmlint:verity-root-hash"] = root_hash
    parts = _installed(facts, distro, release, root_tree) + _kernel(facts) + _boot(facts)
    return Sbom(root, parts)


def _note_unknown(root: Part, facts: Facts, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(facts, name)
        if isinstance(value, Unknown):
            root.properties[f"cvmlint:unknown:{name}"] = str(value.reason)


def purl(distro: str, name: str, version: str, arch: str, release: str) -> str:
    """A Debian package's URL: `pkg:deb/DISTRO/NAME@VERSION?arch=ARCH&distro=RELEASE` (empty parts left out)."""
    from packageurl import PackageURL

    qualifiers = {k: v for k, v in (("arch", arch), ("distro", release)) if v}
    return PackageURL("deb", distro, name, version or None, qualifiers or None).to_string()


def _installed(facts: Facts, distro: str, release: str, tree: Tree | None) -> list[Part]:
    if not isinstance(facts.packages, Items):
        return []
    out = []
    for p in facts.packages:
        version = p.version if isinstance(p.version, str) else ""
        arch = p.arch if isinstance(p.arch, str) else ""
        source = p.source if isinstance(p.source, str) else ""
        part = Part(
            f"pkg:{p.name}:{arch}",
            "package",
            p.name,
            version,
            purl(distro, p.name, version, arch, release),
            licences=_licences(tree, p.name),
            properties={"cvmlint:source-package": source, "cvmlint:where": str(p.where)},
        )
        out.append(part)
    return out


def _declared(facts: Facts, distro: str, release: str) -> list[Part]:
    if not isinstance(facts.packages, Items):
        return []
    return [
        Part(
            f"declared:{p.name}",
            "declared",
            p.name,
            purl=purl(distro, p.name, "", "", release),
            properties={"cvmlint:declared-at": str(p.where), "cvmlint:version": "unknown until the image is built"},
        )
        for p in facts.packages
    ]


def _kernel(facts: Facts) -> list[Part]:
    kernel = facts.kernel
    version = getattr(kernel, "version", None)
    if isinstance(kernel, Unknown) or not isinstance(version, str):
        return []
    where = kernel.where
    markers = list(getattr(kernel.strings, "found", []) or [])
    properties = {"cvmlint:where": str(where), "cvmlint:badaml-guard-markers": ", ".join(markers) or "none"}
    sha = where.sha256 if where is not None and where.sha256 else ""
    return [Part("kernel", "kernel", "linux", version, sha256=sha, properties=properties)]


def _boot(facts: Facts) -> list[Part]:
    boot = facts.boot
    if isinstance(boot, Unknown) or not isinstance(boot.binaries, Items):
        return []
    out = []
    for b in boot.binaries:
        signer = b.signer if isinstance(b.signer, str) else f"unknown: {b.signer}"
        properties = {"cvmlint:boot-role": b.kind, "cvmlint:authenticode-signer": signer or "unsigned"}
        sha = b.sha256 if isinstance(b.sha256, str) else ""
        out.append(Part(f"esp:{b.path}", "boot", b.path, sha256=sha, properties=properties))
    return out


def _licences(tree: Tree | None, package: str) -> list[str]:
    """The distinct License fields of a DEP-5 copyright file; none for a free-form one or none at all."""
    if tree is None:
        return []
    from cvmlint.errors import CvmlintError

    try:
        node = tree.lookup(f"/usr/share/doc/{package}/copyright")
        raw = tree.read(node, COPYRIGHT_BYTES) if node is not None else b""
    except (CvmlintError, OSError):
        return []
    return copyright_licences(raw)


def copyright_licences(raw: bytes) -> list[str]:
    """The licences of a copyright file's bytes: none unless it is machine-readable (DEP-5)."""
    text = raw[:COPYRIGHT_BYTES].decode("utf-8", "replace")
    return _dep5_licences(text) if text.startswith("Format:") else []


def _dep5_licences(text: str) -> list[str]:
    import logging

    from debian.copyright import Copyright, Error, NotMachineReadableError

    logging.getLogger("debian.copyright").setLevel(logging.ERROR)  # its notes on the file's style are not ours
    found: list[str] = []
    try:  # fields are parsed when read: a malformed one raises there, not in the constructor
        parsed = Copyright(text.splitlines(keepends=True), strict=False)
        paragraphs: list[Any] = [parsed.header, *parsed.all_files_paragraphs()]
        for paragraph in paragraphs:
            licence = getattr(paragraph, "license", None)
            synopsis = licence.synopsis.strip() if licence is not None else ""
            if synopsis and synopsis not in found:
                found.append(synopsis)
    except (Error, NotMachineReadableError, ValueError):
        return []  # not machine-readable after all: no licence claimed
    return found


def spdx_expression(licences: list[str]) -> str | None:
    """The DEP-5 fields as one SPDX expression (AND of each field), or None when a name has no SPDX id."""
    terms = []
    for field_text in licences:
        tokens = _OPERATOR.split(field_text.replace(",", " "))
        mapped = []
        for k, token in enumerate(tokens):
            if k % 2:
                mapped.append(token.upper())
            elif (spdx := DEP5_TO_SPDX.get(token.strip())) is None or spdx.startswith("LicenseRef-"):
                return None
            else:
                mapped.append(spdx)
        terms.append(f"({' '.join(mapped)})" if len(mapped) > 1 else mapped[0])
    return " AND ".join(dict.fromkeys(terms)) or None


def cyclonedx_json(sbom: Sbom) -> str:
    """CycloneDX 1.6 JSON."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    kinds = {
        "image": ComponentType.OPERATING_SYSTEM,
        "recipe": ComponentType.OPERATING_SYSTEM,
        "package": ComponentType.LIBRARY,
        "declared": ComponentType.LIBRARY,
        "kernel": ComponentType.OPERATING_SYSTEM,
        "boot": ComponentType.APPLICATION,
    }

    def component(part: Part) -> Component:
        expression = spdx_expression(part.licences) if part.licences else None
        licences: list[Any] = (
            [LicenseExpression(expression)] if expression else [DisjunctiveLicense(name=n) for n in part.licences]
        )
        return Component(
            type=kinds[part.kind],
            name=part.name,
            version=part.version or None,
            bom_ref=part.ref,
            purl=PackageURL.from_string(part.purl) if part.purl else None,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=part.sha256)] if part.sha256 else [],
            licenses=licences,
            properties=[Property(name=k, value=v) for k, v in part.properties.items() if v],
        )

    import uuid

    bom = Bom()
    bom.metadata.timestamp = sbom.created
    # unique per document as CycloneDX asks, yet the same for the same target at the same second
    bom.serial_number = uuid.uuid5(uuid.NAMESPACE_URL, f"cvmlint:{sbom.root.sha256 or sbom.root.name}:{sbom.created}")
    root = component(sbom.root)
    bom.metadata.component = root
    parts = [component(p) for p in sbom.parts]
    for part in parts:
        bom.components.add(part)
    bom.register_dependency(root, parts)
    bom.metadata.properties.add(Property(name="cvmlint:version", value=__version__))
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"


def spdx_json(sbom: Sbom) -> str:
    """SPDX 2.3 JSON. Not validated as it is written (names and versions come from the image: one the
    validator dislikes must not cost the scan its evidence); the tests validate it with spdx-tools."""
    import io

    from spdx_tools.spdx.model import (
        Actor,
        ActorType,
        Checksum,
        ChecksumAlgorithm,
        CreationInfo,
        Document,
        ExternalPackageRef,
        ExternalPackageRefCategory,
        Package,
        Relationship,
        RelationshipType,
        SpdxNoAssertion,
    )
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

    def spdx_id(part: Part, k: int) -> str:
        return f"SPDXRef-{part.kind}-{k}-" + re.sub(r"[^A-Za-z0-9.-]", "-", part.name)[:60]

    from license_expression import get_spdx_licensing

    licensing = get_spdx_licensing()  # 15 ms to make: once, not once per package

    def package(part: Part, k: int) -> Package:
        expression = spdx_expression(part.licences) if part.licences else None
        notes = [f"{k}: {v}" for k, v in part.properties.items() if v]
        if part.licences:
            notes.append("DEP-5 licences: " + "; ".join(part.licences))
        return Package(
            spdx_id=spdx_id(part, k),
            name=part.name,
            download_location=SpdxNoAssertion(),
            version=part.version or None,
            files_analyzed=False,
            checksums=[Checksum(ChecksumAlgorithm.SHA256, part.sha256)] if part.sha256 else [],
            license_declared=licensing.parse(expression) if expression else SpdxNoAssertion(),
            external_references=(
                [ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", part.purl)] if part.purl else []
            ),
            comment="\n".join(notes) or None,
        )

    root = package(sbom.root, 0)
    packages = [root, *(package(p, k) for k, p in enumerate(sbom.parts, start=1))]
    namespace = f"https://cvmlint.invalid/spdx/{sbom.root.kind}/{sbom.root.sha256 or sbom.root.name}"
    info = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=f"{sbom.root.kind} {sbom.root.name}",
        document_namespace=namespace,
        creators=[Actor(ActorType.TOOL, f"cvmlint-{__version__}")],
        created=sbom.created.replace(tzinfo=None),
    )
    relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, root.spdx_id)]
    relationships += [Relationship(root.spdx_id, RelationshipType.CONTAINS, p.spdx_id) for p in packages[1:]]
    out = io.StringIO()
    write_document_to_stream(Document(info, packages=packages, relationships=relationships), out, validate=False)
    return out.getvalue() + "\n"
