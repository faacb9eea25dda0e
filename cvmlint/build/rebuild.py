"""`cvmlint rebuild RECORD` and `cvmlint build --check-reproducible`: build a recipe a second time from
what its first build recorded, and compare the two images.

    outcome = rebuild(load_record(Path("out/cvm-tdx-base.build.json")), project, RebuildOptions())
    outcome.exit_code()     # 0 bit for bit the same, 1 different (outcome.comparison says where)

The second build gets a fresh work directory and package cache, the recipe files must read as
recorded, and mkosi is offered exactly the recorded packages (cvmlint.build.pinned): a version the
mirror no longer serves, a changed recipe file or a failed build raises (exit 2).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvmlint.build import BuildError, BuildOutcome, BuildPlan, build_recipe
from cvmlint.build.compare import Comparison, Difference, compare_images
from cvmlint.build.mkosi import UNKNOWN_TOOL, Progress
from cvmlint.build.pinned import PinError, Pinned, fetch, from_json, mirror_index
from cvmlint.errors import InputError
from cvmlint.project import Project
from cvmlint.recipe.mkosi import CommandLine


class RebuildError(BuildError):
    """The rebuild could not be made from the record (the message says which input)."""


@dataclass
class FirstBuild:
    """What the first build recorded and produced."""

    inputs: dict[str, Any]
    image: Path | None
    sha256: str
    root_hash: str
    source: Path | None = None
    """The record it was read from (a build summary or an evidence bundle)."""


@dataclass
class RebuildOptions:
    output_dir: Path | None = None
    policy_path: Path | None = None
    profiles: list[str] = field(default_factory=list)
    fail_on: str = "low"
    unknown: str = "fail"


@dataclass
class RebuildOutcome:
    first: FirstBuild
    second: BuildOutcome
    fetched: int = 0
    """Packages fetched from the mirror at their recorded versions."""
    local: list[str] = field(default_factory=list)
    """Packages the recipe itself holds (its package directories), by path."""
    files: int = 0
    comparison: Comparison | None = None
    tools: list[str] = field(default_factory=list)
    """Build tools whose version differs from the first build's: `name first -> second`."""
    fetch_seconds: float = 0.0
    compare_seconds: float = 0.0

    @property
    def reproducible(self) -> bool:
        return self.comparison is not None and self.comparison.identical

    def exit_code(self) -> int:
        return 0 if self.reproducible else 1


def load_record(path: Path, image: Path | None = None) -> FirstBuild:
    """The first build's record: its `.build.json`, or its evidence bundle (a directory or `.tar`)."""
    if path.is_file() and path.suffix == ".json":
        from cvmlint.files import Refused, read_bounded
        from cvmlint.jsonin import load_json

        try:
            doc = load_json(read_bounded(path, "record-bytes", "build record"), str(path))
        except (Refused, InputError) as err:
            raise RebuildError(f"not a readable build summary: {err}") from err
        if not isinstance(doc, dict):
            raise RebuildError(f"{path}: not a build summary (not a JSON object)")
        found = _member(doc, "image")
        first = FirstBuild(
            _member(doc, "inputs"), _path(found.get("path")), _text(found.get("sha256")), _text(found.get("root_hash"))
        )
    else:
        from cvmlint.errors import CvmlintError
        from cvmlint.evidence.bundle import read_bundle
        from cvmlint.jsonin import load_json

        try:
            recorded = load_json(read_bundle(path)["inputs.json"], f"{path}/inputs.json")
        except (CvmlintError, KeyError) as err:
            raise RebuildError(f"{path}: not a build summary or an evidence bundle with inputs.json ({err})") from err
        if not isinstance(recorded, dict):
            raise RebuildError(f"{path}: inputs.json is not an object")
        verity = _member(recorded, "verity")
        first = FirstBuild(
            _member(recorded, "build"), None, _text(recorded.get("sha256")), _text(verity.get("root_hash"))
        )
    if not isinstance(first.inputs, dict) or first.inputs.get("schema") != "cvmlint.build-inputs/1":
        raise RebuildError(
            f"{path}: records no build inputs (made by an older cvmlint, or not by `cvmlint build`): nothing "
            "to rebuild from"
        )
    _check_shape(first.inputs, path)
    first.source = path
    if image is not None:
        first.image = image
    return first


def _check_shape(inputs: dict[str, Any], path: Path) -> None:
    """The record's members a rebuild reads have the types it expects."""
    files = inputs.get("files")
    problems = [
        name
        for name, ok in (
            ("recipe", isinstance(inputs.get("recipe"), str) and inputs["recipe"]),
            ("files", isinstance(files, list) and all(_is_file_entry(f) for f in files)),
            ("command_line", isinstance(inputs.get("command_line", {}), dict)),
            ("tools", isinstance(inputs.get("tools", {}), dict)),
        )
        if not ok
    ]
    if problems:
        raise RebuildError(f"{path}: a malformed build record ({', '.join(problems)})")


def _is_file_entry(item: object) -> bool:
    """A recipe file as a record names it: a path (no NUL, at most 4096 bytes) and a SHA-256 in hex."""
    if not isinstance(item, dict):
        return False
    path, digest = item.get("path"), item.get("sha256")
    return (
        isinstance(path, str)
        and 0 < len(path.encode("utf-8", "surrogateescape")) <= 4096
        and "\0" not in path
        and isinstance(digest, str)
        and len(digest) == 64
        and all(c in "0123456789abcdef" for c in digest)
    )


def _member(doc: dict[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name)
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _path(text: object) -> Path | None:
    return Path(text) if isinstance(text, str) and text else None


def rebuild(
    first: FirstBuild, project: Project, options: RebuildOptions, progress: Progress = lambda s: None
) -> RebuildOutcome:
    """Build again from `first`'s inputs and compare; RebuildError when it cannot be built from them."""
    inputs = first.inputs
    release = _debian_release(inputs)
    files = _check_recipe_files(inputs.get("files") or [])
    pins = from_json(inputs.get("packages") or [])
    if not pins:
        raise RebuildError("the record lists no packages: the rebuild cannot pin what the first build installed")
    with tempfile.TemporaryDirectory(prefix="cvmlint-rebuild-") as tmp:
        pinned = Path(tmp) / "pinned"
        progress(f"fetching {sum(p.origin == 'mirror' for p in pins)} packages at their recorded versions")
        started = time.monotonic()
        fetched = _fetch(pins, release, pinned)
        fetch_seconds = time.monotonic() - started
        second = build_recipe(_second_plan(first, options, pinned, project), project, progress)
    if second.gated or second.image is None:
        raise RebuildError(
            f"the second build was not made: lint of {inputs['recipe']} fails now, and the first build was made "
            "with the lint gate on (rebuild with the first build's policy)"
        )
    outcome = RebuildOutcome(first, second, len(fetched), [p.origin for p in pins if p.origin != "mirror"], files)
    outcome.fetch_seconds = fetch_seconds
    outcome.tools = _tool_changes(inputs.get("tools") or {}, second.inputs.get("tools") or {})
    progress("comparing the two images")
    started = time.monotonic()
    outcome.comparison = _compare(first, second)
    outcome.compare_seconds = time.monotonic() - started
    if outcome.tools and not outcome.comparison.identical:
        outcome.comparison.differences.append(
            Difference(
                "build tools",
                "not the versions of the first build: " + ", ".join(outcome.tools),
                "a different mkosi, systemd-repart or mkfs lays out or stamps the bytes differently: rebuild "
                "with the recorded versions",
            )
        )
    return outcome


def _debian_release(inputs: dict[str, Any]) -> str:
    release, distribution = inputs.get("release"), inputs.get("distribution", "debian")
    if distribution != "debian" or not isinstance(release, str) or not release:
        raise RebuildError(
            f"the first build was of {distribution or 'an unknown distribution'} {release or '(no release)'}: "
            "only Debian images are rebuilt from pinned packages (from the Debian mirror apt names)"
        )
    return release


def _fetch(pins: list[Pinned], release: str, dest: Path) -> list[Path]:
    """The recorded mirror packages from this machine's mirror into `dest`, each digest checked."""
    from cvmlint.build.mkosi import debian_sources

    arch = next((p.architecture for p in pins if p.architecture != "all"), "amd64")
    try:
        index = mirror_index(debian_sources(release), arch, {p.name for p in pins})
        return fetch(pins, index, dest, Path.cwd())
    except PinError as err:
        raise RebuildError(f"cannot rebuild from the record: {err}") from err


def _second_plan(first: FirstBuild, options: RebuildOptions, pinned: Path, project: Project) -> BuildPlan:
    """The first build's recipe and mkosi command line, offered only the `pinned` packages."""
    inputs, cli = first.inputs, first.inputs.get("command_line") or {}
    directory = Path(inputs["recipe"])
    return BuildPlan(
        directory,
        project.entry_for(directory),
        CommandLine(
            tuple(cli.get("profiles") or ()), cli.get("distribution"), cli.get("release"), cli.get("architecture")
        ),
        options.policy_path,
        list(options.profiles),
        bool(inputs.get("gate", True)),
        options.output_dir or _second_output(first, directory),
        list(cli.get("mkosi_args") or []),
        fail_on=options.fail_on,
        unknown=options.unknown,
        pinned=pinned,
    )


def _tool_changes(first: dict[str, str], second: dict[str, str]) -> list[str]:
    return [
        f"{name} {first.get(name, 'absent')} -> {second.get(name, 'absent')}"
        for name in sorted(set(first) | set(second))
        if first.get(name) != second.get(name)
        or any(versions.get(name, "").startswith(UNKNOWN_TOOL) for versions in (first, second))
    ]


def _check_recipe_files(files: list[dict[str, str]]) -> int:
    import hashlib

    from cvmlint.files import Refused, read_bounded

    for item in files:
        path = Path(item["path"])
        try:  # a recipe file: a regular file within record-bytes (never /proc/self/mem or a 64 GiB sparse file)
            now = hashlib.sha256(read_bounded(path, "record-bytes", "recipe file")).hexdigest()
        except Refused as err:
            now = "missing" if not os.path.lexists(path) else f"unreadable ({err.reason})"
        if now != item["sha256"]:
            raise RebuildError(
                f"cannot rebuild from the record: the recipe file {path} changed since the first build "
                f"(recorded sha256 {item['sha256']}, now {now})"
            )
    return len(files)


def _second_output(first: FirstBuild, directory: Path) -> Path:
    base = first.image.parent if first.image is not None else directory / "mkosi.output"
    return base / "rebuild"


def _compare(first: FirstBuild, second: BuildOutcome) -> Comparison:
    assert second.image is not None
    from cvmlint.evidence.inputs import file_sha256

    usable = first.image is not None and first.image.is_file() and file_sha256(first.image) == first.sha256
    if usable:
        assert first.image is not None
        return compare_images(first.image, second.image, (first.root_hash, second.root_hash))
    result = Comparison(first.image or Path("(first image)"), second.image)
    result.check("image sha256", first.sha256, second.sha256)
    result.check("verity root hash", first.root_hash, second.root_hash)
    result.identical = first.sha256 == second.sha256
    if not result.identical:
        result.differences.append(
            Difference(
                "image",
                "the digests differ; the first image is not at hand with its recorded digest, so the difference "
                "is not narrowed (give it with --image)",
            )
        )
    return result


def rebuild_json(outcome: RebuildOutcome, build_doc: dict[str, Any]) -> dict[str, Any]:
    comparison = outcome.comparison
    return {
        "schema": "cvmlint.rebuild/1",
        "record": str(outcome.first.source) if outcome.first.source else None,
        "recipe": outcome.first.inputs.get("recipe"),
        "first": {
            "image": str(outcome.first.image) if outcome.first.image else None,
            "sha256": outcome.first.sha256,
            "root_hash": outcome.first.root_hash,
        },
        "second": build_doc,
        "inputs": {
            "recipe_files": outcome.files,
            "fetched": outcome.fetched,
            "from_recipe": outcome.local,
            "tools_changed": outcome.tools,
        },
        "checked": [
            {"what": what, "first": a, "second": b, "same": same(a, b)}
            for what, a, b in (comparison.checked if comparison else [])
        ],
        "differences": [d.__dict__ for d in (comparison.differences if comparison else [])],
        "seconds": {
            "fetch": round(outcome.fetch_seconds, 1),
            "build": round(outcome.second.seconds, 1),
            "compare": round(outcome.compare_seconds, 1),
        },
        "reproducible": outcome.reproducible,
        "exit_code": outcome.exit_code(),
    }


def render_text(outcome: RebuildOutcome, width: int = 80) -> str:
    """The rebuild for a terminal: inputs, each comparison, each difference with its likely cause."""
    import textwrap

    comparison = outcome.comparison
    assert comparison is not None
    first, second = outcome.first, outcome.second
    local = f"; {len(outcome.local)} from the recipe ({', '.join(outcome.local)})" if outcome.local else ""
    out = [
        f"rebuild of {first.inputs.get('recipe')} from {first.source or 'the first build'}",
        f"inputs: {outcome.files} recipe files as recorded; {outcome.fetched} packages fetched from the mirror at "
        f"their recorded versions, every digest as recorded{local}",
        f"build tools: {'as recorded' if not outcome.tools else 'DIFFERENT: ' + ', '.join(outcome.tools)} "
        f"({second.mkosi})",
        f"second build: {second.image} (mkosi {second.seconds:.0f} s; the packages fetched in "
        f"{outcome.fetch_seconds:.0f} s, the images compared in {outcome.compare_seconds:.0f} s)",
        "",
    ]
    out = [
        line
        for text in out
        for line in (textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False) or [""])
    ]
    for what, a, b in comparison.checked:
        state = {True: "same", False: "DIFFERENT", None: "unknown"}[same(a, b)]
        line = f"{state:9}  {what}: {_short(a)}" + ("" if a == b else f" vs {_short(b)}")
        out += textwrap.wrap(line, width, initial_indent="  ", subsequent_indent=" " * 13, break_on_hyphens=False)
    if comparison.differences:
        out += ["", "where the two builds differ:"]
        for d in comparison.differences:
            out += textwrap.wrap(f"{d.where}: {d.what}", width, initial_indent="  ", subsequent_indent="      ")
            if d.cause:
                out += textwrap.wrap(
                    f"likely cause: {d.cause}", width, initial_indent="    ", subsequent_indent="      "
                )
    verdict = (
        "REPRODUCIBLE: the second build is bit for bit the first"
        if outcome.reproducible
        else f"NOT REPRODUCIBLE: {sum(1 for c in comparison.checked if same(c[1], c[2]) is False)} of "
        f"{len(comparison.checked)} checks differ"
    )
    out += ["", f"verdict: {verdict}; exit {outcome.exit_code()}"]
    return "\n".join(out) + "\n"


def same(first: str, second: str) -> bool | None:
    """Whether a checked value is the same in both builds; None when it is unknown in either."""
    if first.startswith("unknown (") or second.startswith("unknown ("):
        return None
    return first == second


def _short(value: str) -> str:
    return value[:16] + "…" if len(value) > 20 and all(c in "0123456789abcdef" for c in value) else value
