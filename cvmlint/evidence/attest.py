"""Standard in-toto statements beside cvmlint's own, for tools that verify attestations and know nothing
of cvmlint: the SBOM as a CycloneDX predicate (every bundle) and SLSA provenance v1 (a `cvmlint build`),
each an in-toto Statement v1 in its own DSSE envelope, signed with the bundle's key.

    attestations/sbom.cdx.dsse.json          predicateType https://cyclonedx.org/bom
    attestations/provenance.slsa.dsse.json   predicateType https://slsa.dev/provenance/v1

The provenance says what the build record already holds: the builder (mkosi's version and where it ran,
the build tools' versions), the external parameters (the recipe, mkosi's command line), the internal
ones (seed, SourceDateEpoch, distribution), and as resolved dependencies every recipe file read and
every package installed, each with its SHA-256.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cvmlint import __version__

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
CYCLONEDX = "https://cyclonedx.org/bom"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://cvmlint.dev/build/mkosi/v1"
BUILDER = "https://cvmlint.dev/builder/mkosi"


def _time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def sbom_statement(subject: dict[str, Any], cyclonedx: bytes) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [subject],
        "predicateType": CYCLONEDX,
        "predicate": json.loads(cyclonedx),
    }


def provenance_statement(
    subject: dict[str, Any], build: dict[str, Any], started: datetime, finished: datetime
) -> dict[str, Any]:
    """SLSA provenance v1 of a build, from its record (cvmlint.build-inputs/1)."""
    from cvmlint.sbom import purl

    distro = str(build.get("distribution") or "debian")
    release = str(build.get("release") or "")
    files = [{"name": f["path"], "digest": {"sha256": f["sha256"]}} for f in build.get("files", [])]
    packages = [
        {
            "uri": purl(distro, p["name"], p["version"], p["architecture"], release),
            "digest": {"sha256": p["sha256"]},
            "name": p["name"],
            "annotations": {"origin": p["origin"]},
        }
        for p in build.get("packages", [])
    ]
    tools = [
        {"uri": purl("debian", name, version, "", ""), "name": name}
        for name, version in sorted((build.get("tools") or {}).items())
        if version and " " not in version
    ]
    mkosi = str(build.get("mkosi") or "")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [subject],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "recipe": build.get("recipe"),
                    "commandLine": build.get("command_line"),
                    "gate": build.get("gate"),
                },
                "internalParameters": {
                    "distribution": build.get("distribution"),
                    "release": build.get("release"),
                    "seed": build.get("seed"),
                    "sourceDateEpoch": build.get("source_date_epoch"),
                },
                "resolvedDependencies": files + packages,
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER,
                    "version": {"cvmlint": __version__, "mkosi": mkosi},
                    "builderDependencies": tools,
                },
                "metadata": {"startedOn": _time(started), "finishedOn": _time(finished)},
            },
        },
    }


def envelopes(
    subject: dict[str, Any],
    files: dict[str, bytes],
    build: dict[str, Any] | None,
    times: tuple[datetime, datetime],
    key: Any,
) -> dict[str, bytes]:
    """The attestation files of a bundle whose other files are `files`."""
    from cvmlint.evidence.dsse import canonical_json, sign, unsigned

    statements = {"attestations/sbom.cdx.dsse.json": sbom_statement(subject, files["sbom.cdx.json"])}
    if build:
        statements["attestations/provenance.slsa.dsse.json"] = provenance_statement(subject, build, *times)
    out = {}
    for name, statement in statements.items():
        body = canonical_json(statement)
        envelope = sign(body, key) if key else unsigned(body)
        out[name] = (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode()
    return out
