"""Differential testing of the recipe reader: cvmlint's facts against real mkosi and systemd-repart.

For one recipe and one set of mkosi command-line options, three views are made and compared:

    cvmlint   `recipe_facts()` (what `cvmlint facts RECIPE --json` prints), reduced to the view below
    mkosi     `mkosi --json summary` run in a tool root (mkosi 25.3 from trixie, 27.1 from sid)
    repart    `systemd-repart` of that tool root run on mkosi's RepartDirectories, in mkosi's order,
              writing a real (small) disk image whose partitions are then identified by their bytes

Paths in the views are relative to a base directory, so a recipe read by cvmlint on the host and by
mkosi inside the tool root (the recipe bind-mounted at the same path, or shipped inside the root)
compare equal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvmlint.facts import dump_facts
from cvmlint.facts.cmdline import parse_cmdline
from cvmlint.facts.provenance import Provenance
from cvmlint.recipe.facts import recipe_facts
from cvmlint.recipe.mkosi import CommandLine
from tests.tools import CACHE, run, run_trixie

View = dict[str, Any]
RESOURCES = Path("usr/lib/python3/dist-packages/mkosi/resources")
"""mkosi's shipped configurations, inside a tool root."""


@dataclass(frozen=True)
class Case:
    """One recipe read with one set of mkosi options."""

    name: str
    directory: Path
    """The recipe, as the host sees it."""
    base: Path
    """Paths in views are relative to this (host side)."""
    inside: Path | None = None
    """The recipe's path inside the tool root when it lives there (mkosi's own configurations)."""
    profiles: tuple[str, ...] = ()
    distribution: str | None = None
    release: str | None = None
    architecture: str | None = None
    host_architecture: str | None = None
    known: dict[str, str] = field(default_factory=dict)
    """mkosi version ("25", "27") -> why that version is documented to disagree (the case is skipped there)."""

    @property
    def command_line(self) -> CommandLine:
        return CommandLine(
            profiles=self.profiles,
            distribution=self.distribution,
            release=self.release,
            architecture=self.architecture,
            host_architecture=self.host_architecture,
        )

    def mkosi_args(self) -> list[str]:
        args = [f"--profile={p}" for p in self.profiles]
        for flag, value in (("-d", self.distribution), ("-r", self.release), ("--architecture", self.architecture)):
            if value:
                args += [flag, value]
        return args


# ---- cvmlint's view ------------------------------------------------------------------------------
def cvmlint_view(case: Case) -> tuple[View, list[str]]:
    """The comparable part of cvmlint's facts for the case, and its warnings."""
    facts, warnings = recipe_facts(case.directory, None, case.command_line, display_base=case.base)
    doc = json.loads(dump_facts(facts))["facts"]
    view: View = {}
    system, build, boot = doc["os"], doc["build"], doc["boot"]
    for key in ("distribution", "release", "architecture"):
        view[key] = _value(system.get(key) if "unknown" not in system else system)
    if "unknown" in build:
        view["format"] = "unknown"
    else:
        view |= {
            "format": build["format"],
            "bootable": build["bootable"],
            "profiles": build["profiles"],
            "remove_packages": build["remove_packages"],
            "extra_trees": build["extra_trees"],
            "skeleton_trees": build["skeleton_trees"],
            "repart_directories": build["repart_directories"],
            "unified_kernel_images": build["unified_kernel_images"],
            "scripts": build["scripts"],
            "image_id": build["image_id"],
        }
    view |= {"bootloader": boot["loader"], "shim": boot["shim"], "secure_boot": boot["secure_boot"]}
    packages = doc["packages"]
    view["packages"] = (
        "unknown"
        if "unknown" in packages
        else sorted(p["name"] for p in packages["items"] if p["origin"] == "declared")
    )
    cmdline = doc["cmdline"]
    view["cmdline"] = (
        "unknown"
        if "unknown" in cmdline
        else [_param(p).replace(" roothash=" + "0" * 64, "") for p in cmdline["items"] if p["name"] != "roothash"]
    )
    return view, warnings


def _value(raw: Any) -> Any:
    return "unknown" if isinstance(raw, dict) and "unknown" in raw else raw


def _param(p: dict[str, Any]) -> str:
    return p["name"] if p.get("value") is None else f"{p['name']}={p['value']}"


# ---- mkosi's view --------------------------------------------------------------------------------
_SUMMARIES: dict[tuple[str, str, str], dict[str, Any]] = {}


def mkosi_summary(root: Path, case: Case) -> dict[str, Any]:
    """`mkosi --json summary` of the case's recipe, run inside the tool root (cached for the session by the
    recipe's bytes)."""
    directory = case.directory  # the host's view of it, also for a case inside the tool root
    key = (str(root), repr(case), _definitions_digest(Path("/"), [str(directory.resolve())]))
    if key not in _SUMMARIES:
        _SUMMARIES[key] = _mkosi_summary(root, case)
    return _SUMMARIES[key]


def _mkosi_summary(root: Path, case: Case) -> dict[str, Any]:
    directory = case.inside or case.directory
    binds = () if case.inside else (case.base,)
    out = run_trixie(root, "mkosi", "-C", str(directory), *case.mkosi_args(), "--json", "summary", binds=binds)
    images = json.loads(out)["Images"]
    main = [i for i in images if i.get("Image") in (None, "main")]
    assert len(main) == 1, [i.get("Image") for i in images]
    summary: dict[str, Any] = main[0]
    return summary


def mkosi_view(summary: dict[str, Any], case: Case, work: Path) -> View:
    """The same view, from mkosi's summary (the command line as the kernel reads the line mkosi writes
    from it and the recipe's trees: tests/recipe/truth.py; unknown when the ways it can reach the kernel
    give different parameters)."""
    base = case.inside.parent if case.inside else case.base

    def rel(path: str) -> str:
        return os.path.relpath(path, base)

    def tree(t: dict[str, Any]) -> str:
        return rel(t["Source"]) + (f":{t['Target']}" if t.get("Target") else "")

    removed = set(summary["RemovePackages"])
    scripts = [
        rel(s)
        for key in (
            "SyncScripts",
            "PrepareScripts",
            "BuildScripts",
            "PostInstallationScripts",
            "FinalizeScripts",
            "PostOutputScripts",
        )
        for s in summary[key]
    ]
    return {
        "distribution": summary["Distribution"],
        "release": summary["Release"],
        "architecture": summary["Architecture"],
        "format": summary["Format"],
        "bootable": _feature(summary["Bootable"]),
        "profiles": list(dict.fromkeys(summary["Profiles"])),
        "remove_packages": summary["RemovePackages"],
        "extra_trees": [tree(t) for t in summary["ExtraTrees"]],
        "skeleton_trees": [tree(t) for t in summary["SkeletonTrees"]],
        "repart_directories": [rel(d) for d in summary["RepartDirectories"]],
        "unified_kernel_images": _uki(summary["UnifiedKernelImages"]),
        "scripts": scripts,
        "image_id": summary["ImageId"] or "",
        "bootloader": summary["Bootloader"].removesuffix("-signed"),
        "shim": summary["ShimBootloader"] in ("signed", "unsigned"),
        "secure_boot": summary["SecureBoot"],
        "packages": sorted(
            _apt_name(p)
            for p in summary["Packages"] + summary["VolatilePackages"]
            if p not in removed and not (p.endswith("-") and not p.startswith(("?", "~")))
        ),
        "cmdline": _kernel_view(summary, work, _verity_root(case)),
    }


def _verity_root(case: Case) -> bool:
    """Whether the root has a verity pair, so mkosi adds roothash= (cvmlint's reading of the layout, which
    test_partition_layout_agrees_with_systemd_repart checks against systemd-repart)."""
    root = cvmlint_layout(case)["root"]
    return isinstance(root, dict) and bool(root.get("verity"))


def _kernel_view(summary: dict[str, Any], work: Path, roothash: bool) -> Any:
    from tests.recipe.truth import ROOTHASH, image_tree, mkosi_lines

    lines = mkosi_lines(summary, image_tree(summary, work), roothash=roothash)
    if isinstance(lines, str):
        return "unknown"
    readings = [
        [_param({"name": p.name, "value": p.value}) for p in parse_cmdline(line.decode(), Provenance())]
        for way, line in lines.items()
    ]
    # the root hash (mkosi adds it with a verity root, which this view does not know) is left out, also
    # where an open quote swallowed it into another parameter's value
    readings = [
        [p.replace(" " + ROOTHASH, "") for p in r if not p.startswith(("roothash=", "BOOT_IMAGE="))] for r in readings
    ]
    return readings[0] if all(r == readings[0] for r in readings) else "unknown"


def _apt_name(item: str) -> str:
    """The package an item names as apt reads it: openssh-server:amd64 (=version, /release) is
    openssh-server, ?exact-name(x) is x (x- removes x: kept as written, cvmlint leaves it out)."""
    exact = re.fullmatch(r"\?exact-name\((.*)\)", item)
    return exact.group(1) if exact else item if item.startswith(("?", "~")) else re.split(r"[:=/]", item)[0]


def _feature(value: Any) -> str:
    return str({"enabled": "yes", "disabled": "no", True: "yes", False: "no"}.get(value, value))


def _uki(value: str) -> str:
    """mkosi 25's feature values in mkosi 26's terms (`enabled` differs: see the uki-yes case)."""
    return {"disabled": "none"}.get(value, value)


# ---- systemd-repart's view -----------------------------------------------------------------------
@dataclass
class Layout:
    """What systemd-repart built from the definitions: each partition's definition file, type and content."""

    partitions: list[dict[str, Any]]
    error: str = ""


_LAYOUTS: dict[tuple[str, tuple[str, ...], str], Layout | Future[Layout]] = {}
_POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="repart")


def repart_layout(root: Path, directories: list[str], work: Path) -> Layout:
    """Run systemd-repart (in the tool root) on the definition directories, in order, and identify each
    partition it wrote by its bytes (blkid on the host). Cached for the session by the definitions' bytes."""
    found = _LAYOUTS.get(_layout_key(root, directories))
    if found is None:
        found = _LAYOUTS[_layout_key(root, directories)] = _repart_layout(root, directories, work)
    return found.result() if isinstance(found, Future) else found


def prefetch_layouts(root: Path, directory_lists: list[list[str]], work: Path) -> None:
    """Start systemd-repart on each set of definition directories in the background, one per core (each
    run waits on its own processes), so that the tests that need the layouts find them made."""
    for directories in directory_lists:
        key = _layout_key(root, directories)
        if key not in _LAYOUTS:
            _LAYOUTS[key] = _POOL.submit(_repart_layout, root, directories, fresh_work(work))


def _layout_key(root: Path, directories: list[str]) -> tuple[str, tuple[str, ...], str]:
    return (str(root), tuple(directories), _definitions_digest(root, directories))


def _definitions_digest(root: Path, directories: list[str]) -> str:
    import hashlib

    h = hashlib.sha256()
    for d in directories:
        base = root / d.lstrip("/") if _inside(root, d) else Path(d)
        for path in sorted(base.rglob("*")) if base.is_dir() else []:
            h.update(str(path.relative_to(base)).encode() + b"\0")
            h.update(path.read_bytes() if path.is_file() else os.readlink(path).encode() if path.is_symlink() else b"")
    return h.hexdigest()


LAYOUT_CACHE = CACHE / "repart-layouts"
"""Layouts kept across sessions, keyed by the tool root (its name carries its packages) and the
definitions' paths and bytes: systemd-repart encrypting a 1 GiB data partition takes 20 s a case."""


def _repart_layout(root: Path, directories: list[str], work: Path) -> Layout:
    import hashlib

    name = hashlib.sha256(repr(_layout_key(root, directories)).encode()).hexdigest()[:24]
    kept = LAYOUT_CACHE / f"{name}.json"
    if kept.is_file():
        return Layout(**json.loads(kept.read_text()))
    layout = _run_repart(root, directories, work)
    LAYOUT_CACHE.mkdir(parents=True, exist_ok=True)
    partial = kept.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps({"partitions": layout.partitions, "error": layout.error}))
    partial.rename(kept)
    return layout


def _run_repart(root: Path, directories: list[str], work: Path) -> Layout:
    tree = work / "copy-source"
    for sub in ("usr/bin", "etc", "boot", "efi", "var", "home", "srv"):
        (tree / sub).mkdir(parents=True, exist_ok=True)
    (tree / "usr/bin/true").write_text("#!/bin/sh\n")
    (work / "key").write_bytes(b"cvmlint-test-key")
    image = work / "disk.raw"
    image.unlink(missing_ok=True)
    argv = [
        "systemd-repart",
        "--empty=create",
        "--size=auto",
        "--offline=yes",
        "--dry-run=no",
        "--sector-size=512",
        f"--copy-source={tree}",
        f"--key-file={work / 'key'}",
        f"--seed={uuid.UUID(int=7)}",
        "--json=short",
        *[f"--definitions={d}" for d in directories],
        str(image),
    ]
    try:
        out = run_trixie(root, *argv, binds=(work, *{Path(d) for d in directories if not _inside(root, d)}))
    except AssertionError as err:
        return Layout([], error=str(err).splitlines()[-1])
    parts = []
    for p in json.loads(out):
        content = _blkid(image, p["offset"])
        parts.append(
            {
                "file": p["file"],
                "type": p["type"],
                "content": content,
                "verity": bool(p.get("roothash")) and not p["type"].endswith("-verity"),
                "read_only": _gpt_read_only(image, p["partno"] + 1),
            }
        )
    return Layout(parts)


def _inside(root: Path, path: str) -> bool:
    return (root / path.lstrip("/")).exists() and not Path(path).exists()


def _blkid(image: Path, offset: int) -> str:
    result = subprocess.run(
        ["blkid", "-p", "-O", str(offset), "-o", "value", "-s", "TYPE", str(image)],
        capture_output=True,
        text=True,
        check=False,
    )
    kind = result.stdout.strip()
    return {"DM_verity_hash": "verity", "crypto_LUKS": "luks"}.get(kind, kind or "none")


def _gpt_read_only(image: Path, number: int) -> bool:
    out = run("sfdisk", "--part-attrs", image, str(number))
    return "60" in out.replace(",", " ").split() or "GUID:60" in out


def cvmlint_layout(case: Case) -> View:
    """cvmlint's partitions and root facts, in the terms of the repart view."""
    facts, _ = recipe_facts(case.directory, None, case.command_line, display_base=case.base)
    doc = json.loads(dump_facts(facts))["facts"]
    parts = doc["partitions"]
    rootfs = doc["rootfs"]
    return {
        "partitions": "unknown"
        if "unknown" in parts
        else [
            {"file": p["where"]["file"], "content": "luks" if p["encrypted"] else p["fs"] or "none"}
            for p in parts["items"]
        ],
        "root": "unknown"
        if "unknown" in rootfs
        else {"format": _value(rootfs["format"]), "verity": rootfs["verity"], "read_only": rootfs["read_only"]},
    }


def repart_view(layout: Layout, case: Case, root: Path) -> View:
    """The repart layout in the terms of cvmlint_layout (definition files relative to the case's base)."""
    base = case.inside.parent if case.inside else case.base
    parts = [{"file": os.path.relpath(p["file"], base), "content": p["content"]} for p in layout.partitions]
    roots = [p for p in layout.partitions if p["type"].startswith("root") and "-verity" not in p["type"]]
    root_view: Any = "none"
    if roots:
        r = roots[0]  # read-only by its file system (erofs, squashfs cannot be written) or by its GPT flag
        read_only = r["read_only"] or r["content"] in ("erofs", "squashfs")
        root_view = {"format": r["content"], "verity": r["verity"], "read_only": read_only}
    return {"partitions": parts, "root": root_view}


def fresh_work(base: Path) -> Path:
    work = base / uuid.uuid4().hex[:8]
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work
