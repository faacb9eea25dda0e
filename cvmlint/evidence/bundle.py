"""The evidence bundle: everything an auditor needs to check a verdict without trusting who made it.

    statement.json   DSSE envelope of an in-toto Statement v1 (docs/evidence.md): subject = the image
                     (or the recipe tree digest), predicate = verdict + the SHA-256 of every other file
    results.json     the verdict, cvmlint.results/1
    facts.json       every fact with its provenance, cvmlint.facts/1 (enough to evaluate the policy again)
    inputs.json      the image's and each partition's SHA-256, the root hashes; or every recipe file read
    tool.json        cvmlint and the libraries that decided facts, Python, the command line, start and end
    policy/          the policy as evaluated: every policy and data file, byte for byte; policy.json names
                     the main file, the profiles and the waivers file (policy/waivers/…)
    report.html      the report for people;  oscal.json  OSCAL assessment-results for compliance tools
    sbom.cdx.json    the software bill of materials, CycloneDX 1.6;  sbom.spdx.json  the same in SPDX 2.3
    attestations/    standard in-toto statements, each in its own DSSE envelope: the SBOM as a CycloneDX
                     predicate, and for a build SLSA provenance v1 (cvmlint/evidence/attest.py)
    boot/            `cvmlint build --boot-check`: the serial console and what it showed (cvmlint.boot/1)

Files are written in a fixed order with sorted JSON keys, so the same scan gives the same bytes apart
from times and signatures. A bundle is a directory, or one uncompressed tar file (`*.tar`).
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cvmlint import __version__
from cvmlint.errors import InputError
from cvmlint.evidence.dsse import SigningKey, canonical_json, sign, unsigned
from cvmlint.facts.model import Facts
from cvmlint.policy.loader import Policy
from cvmlint.policy.results import Report

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://cvmlint.dev/evidence/v1"
LIBRARIES = (
    "lark",
    "pyelftools",
    "libarchive-c",
    "python-debian",
    "cryptography",
    "lz4",
    "zstandard",
    "google-re2",
    "rich",
)


@dataclass
class Evidence:
    """A verdict and everything it was made from."""

    report: Report
    facts: Facts
    policy: Policy
    inputs: dict[str, Any]
    exit_code: int
    waivers: Path | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished: datetime = field(default_factory=lambda: datetime.now(UTC))
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    extra: dict[str, bytes] = field(default_factory=dict)
    """Further files by bundle name, e.g. a build's boot console (boot/serial.log, boot/report.json)."""
    root: Any = None
    """The image's root file system, when read (the SBOMs' licences come from its copyright files)."""


def tool_info(ev: Evidence) -> dict[str, Any]:
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "name": "cvmlint",
        "version": __version__,
        "libraries": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "argv": ev.argv,
        "started": _time(ev.started),
        "finished": _time(ev.finished),
        "user": os.environ.get("USER") or None,
    }


def _time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bundle_files(ev: Evidence, signed_by: str | None) -> dict[str, bytes]:
    """Name -> bytes of every file but the statement, in the bundle's order."""
    from cvmlint.evidence.html import render_html
    from cvmlint.evidence.oscal import assessment_results
    from cvmlint.facts.serialize import facts_to_json
    from cvmlint.report.json import report_to_json

    files: dict[str, bytes] = {
        "results.json": _json(report_to_json(ev.report, ev.exit_code)),
        "facts.json": _json(facts_to_json(ev.facts)),
        "inputs.json": _json(ev.inputs),
        "tool.json": _json(tool_info(ev)),
    }
    root = _policy_root(ev.policy)
    names = []
    for path in ev.policy.files:
        rel = Path(path).resolve().relative_to(root).as_posix()
        files[f"policy/{rel}"] = Path(path).read_bytes()
        names.append(rel)
    waivers = None
    if ev.waivers is not None:
        waivers = f"waivers/{ev.waivers.name}"
        files[f"policy/{waivers}"] = ev.waivers.read_bytes()
    main = Path(ev.policy.path).resolve().relative_to(root).as_posix()
    files["policy/policy.json"] = _json(
        {
            "main": main,
            "shipped": _shipped(ev.policy, root),
            "profiles": list(ev.policy.profiles),
            "files": names,
            "waivers": waivers,
            "waivers_given_as": ev.waivers and str(ev.waivers),
            "sha256": ev.policy.sha256,
            "evaluated_on": ev.finished.date().isoformat(),
        }
    )
    files["oscal.json"] = _json(assessment_results(ev))
    sboms, packages = _sboms(ev)
    files.update(sboms)
    files["report.html"] = render_html(
        ev.report, ev.exit_code, ev.inputs, signed_by, _time(ev.finished), os.environ.get("USER") or None, packages
    ).encode()
    files.update(ev.extra)
    return files


def _sboms(ev: Evidence) -> tuple[dict[str, bytes], int]:
    """The target's software bill of materials, CycloneDX and SPDX (cvmlint/sbom.py), and its package count."""
    from cvmlint import sbom

    document = sbom.from_facts(ev.facts, ev.root)
    document.created = ev.finished.replace(microsecond=0)
    files = {
        "sbom.cdx.json": sbom.cyclonedx_json(document).encode(),
        "sbom.spdx.json": sbom.spdx_json(document).encode(),
    }
    return files, sum(p.kind in ("package", "declared") for p in document.parts)


def subject(ev: Evidence) -> dict[str, Any]:
    """What every statement of the bundle speaks of: the image file (or the recipe tree) and its SHA-256."""
    target = ev.report.target
    digest = ev.inputs.get("sha256") or (target.digest if isinstance(target.digest, str) else "")
    return {"name": target.name, "digest": {"sha256": str(digest).removeprefix("sha256:")}}


def statement(ev: Evidence, files: dict[str, bytes]) -> dict[str, Any]:
    """The in-toto Statement: the subject and the cvmlint predicate (docs/evidence.md)."""
    import hashlib

    target = ev.report.target

    return {
        "_type": STATEMENT_TYPE,
        "subject": [subject(ev)],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "target": {"kind": target.kind, "name": target.name},
            "verdict": "pass" if ev.exit_code == 0 else "fail",
            "exit_code": ev.exit_code,
            "summary": ev.report.summary(),
            "policy": {
                "name": ev.policy.name,
                "version": ev.policy.version,
                "sha256": ev.policy.sha256,
                "profiles": list(ev.policy.profiles),
            },
            "tool": {"name": "cvmlint", "version": __version__},
            "created": _time(ev.finished),
            "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
        },
    }


def write_bundle(dest: Path, ev: Evidence, key: SigningKey | None = None) -> Path:
    """Write the bundle (a directory, or a tar file when `dest` ends in .tar); its path."""
    from cvmlint.evidence.attest import envelopes

    files = bundle_files(ev, key.keyid if key else None)
    files.update(envelopes(subject(ev), files, ev.inputs.get("build"), (ev.started, ev.finished), key))
    body = canonical_json(statement(ev, files))
    envelope = sign(body, key) if key else unsigned(body)
    files = {"statement.json": _json(envelope), **files}
    if dest.suffix == ".tar":
        _write_tar(dest, files, ev.finished)
    else:
        for name, data in files.items():
            path = dest / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return dest


def _write_tar(dest: Path, files: dict[str, bytes], when: datetime) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), int(when.timestamp()), 0o644
            tar.addfile(info, io.BytesIO(data))


def read_bundle(path: Path) -> dict[str, bytes]:
    """Name -> bytes of every file of a bundle directory or tar: regular files only, each name a plain
    relative path, sizes, counts and depth within the bundle-* limits. Anything else is an InputError
    naming the bundle and the member."""
    from cvmlint.files import is_regular

    if path.is_dir():
        files = _read_directory(path)
    elif is_regular(path):
        files = _read_tar(path)
    else:
        raise InputError(f"{path}: not an evidence bundle (a directory or a tar file)")
    _no_conflicts(path, files)
    return files


def member_name(name: str, bundle: Path) -> str:
    """`name` when it is a plain relative path inside a bundle; else an InputError."""
    parts = name.split("/")
    problem = (
        "is absolute"
        if name.startswith("/")
        else "leaves the bundle (..)"
        if ".." in parts
        else "has an empty or . component"
        if any(p in ("", ".") for p in parts)
        else "holds a NUL or a backslash"
        if "\0" in name or "\\" in name
        else "has a component longer than 255 bytes"
        if any(len(p.encode("utf-8", "surrogateescape")) > 255 for p in parts)
        else "is longer than 1024 bytes"
        if len(name.encode("utf-8", "surrogateescape")) > 1024
        else ""
    )
    if problem:
        raise InputError(f"{bundle}: member {name[:120]!r} {problem}")
    return name


def _read_directory(root: Path) -> dict[str, bytes]:
    from cvmlint import limits
    from cvmlint.files import read_bounded

    files: dict[str, bytes] = {}
    total = 0
    stack = [(root, 0)]
    while stack:  # iterative: a bundle of thousands of nested directories is refused, not a RecursionError
        directory, depth = stack.pop()
        limits.check("bundle-depth", depth, "evidence bundle", str(directory.relative_to(root)))
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            item = Path(entry.path)
            rel = member_name(item.relative_to(root).as_posix(), root)
            if entry.is_symlink():
                raise InputError(f"{root}: member {rel} is a symbolic link (a bundle holds regular files only)")
            if entry.is_dir(follow_symlinks=False):
                stack.append((item, depth + 1))
                continue
            if not entry.is_file(follow_symlinks=False):
                raise InputError(f"{root}: member {rel} is not a regular file")
            limits.check("bundle-files", len(files) + 1, "evidence bundle", rel)
            data = read_bounded(item, "bundle-file-bytes", "bundle member", f"{root}/{rel}")
            total += len(data)
            limits.check("bundle-bytes", total, "evidence bundle", rel)
            files[rel] = data
    return dict(sorted(files.items()))


def _read_tar(path: Path) -> dict[str, bytes]:
    from cvmlint import limits

    limits.check("bundle-bytes", path.stat().st_size, "evidence bundle", "tar file")  # bounds headers too
    files: dict[str, bytes] = {}
    total = 0
    try:
        with open(path, "rb") as fh, tarfile.open(fileobj=fh, mode="r:") as tar:
            for member in tar:
                name = member_name(member.name.removeprefix("./").rstrip("/") if member.isdir() else member.name, path)
                if member.isdir():
                    continue
                if not member.isreg() or member.issparse():
                    raise InputError(f"{path}: member {name} is not a regular file (a bundle holds regular files only)")
                limits.check("bundle-files", len(files) + 1, "evidence bundle", name)
                limits.check("bundle-file-bytes", member.size, "evidence bundle", name)
                total += member.size
                limits.check("bundle-bytes", total, "evidence bundle", name)
                if name in files:
                    raise InputError(f"{path}: member {name} appears twice")
                handle = tar.extractfile(member)
                files[name] = handle.read() if handle else b""
    except (OSError, tarfile.TarError, UnicodeError) as err:
        raise InputError(f"{path}: not an evidence bundle (a directory or a tar file): {err}") from None
    return files


def _no_conflicts(bundle: Path, files: dict[str, bytes]) -> None:
    """No name is both a file and a directory (`policy/a` and `policy/a/b`)."""
    directories = {"/".join(name.split("/")[:k]) for name in files for k in range(1, name.count("/") + 1)}
    clash = sorted(directories & files.keys())
    if clash:
        raise InputError(f"{bundle}: member {clash[0]} is both a file and a directory")


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _shipped(policy: Policy, root: Path) -> str | None:
    """Where the bundle holds the policies shipped with cvmlint (what `include "cvmlint:…"` read), relative
    to policy/; None when the policy read none of them."""
    from cvmlint._resources import policies_dir

    shipped = policies_dir().resolve()
    if not any(Path(p).resolve().is_relative_to(shipped) for p in policy.files):
        return None
    return shipped.relative_to(root).as_posix() if shipped.is_relative_to(root) else None


def _policy_root(policy: Policy) -> Path:
    paths = [Path(p).resolve() for p in policy.files]
    return Path(os.path.commonpath([str(p.parent) for p in paths]))
