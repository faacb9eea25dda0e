"""An mkosi recipe as facts: what it declares, each with its file and line; what only the built
image can show is unknown with the reason "checked at scan time"."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import posixpath
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

from cvmlint import limits
from cvmlint.errors import InputError
from cvmlint.facts.layout import AUTO_MOUNTS, UNIT_DIRS
from cvmlint.facts.model import (
    Boot,
    Build,
    ConfigOption,
    DebVersion,
    Facts,
    File,
    Kernel,
    KernelStrings,
    Mount,
    Package,
    Param,
    Partition,
    Patch,
    ProfileChoice,
    RootFs,
    System,
    Target,
)
from cvmlint.facts.mounts import crypttab_names, fstab_mounts, unit_installed, unit_mount
from cvmlint.facts.provenance import Items, Provenance, Unknown
from cvmlint.files import present, read_bounded
from cvmlint.project import RecipeEntry
from cvmlint.recipe.aptspec import AptSpec, parse_spec
from cvmlint.recipe.mkosi import SCRIPTS, CommandLine, MkosiConfig, Value, read_recipe
from cvmlint.recipe.repart import PartitionDef, read_definitions, verity_pairs
from cvmlint.recipe.settings import feature, is_true
from cvmlint.recipe.trees import Trees

BUILD = "decided at build time: checked at scan time"
ARCHES = {
    "x86-64": "amd64",
    "arm64": "arm64",
    "x86": "i386",
    "riscv64": "riscv64",
    "s390x": "s390x",
    "ppc64-le": "ppc64el",
}
SCRIPT_SETTINGS = ("PrepareScripts", "BuildScripts", "PostInstallationScripts", "FinalizeScripts")
TREES = ("ExtraTrees", "SkeletonTrees", "RemoveFiles")
READS = {
    "packages": ("Packages", "VolatilePackages", "RemovePackages", "Architecture", *SCRIPT_SETTINGS),
    "files": TREES,
    "layout": ("RepartDirectories", "Format", "Distribution"),
    "cmdline": ("KernelCommandLine", "RepartDirectories", "Format", *TREES),
    "boot": ("Bootloader", "ShimBootloader", "SecureBoot", "UnifiedKernelImages", "Bootable"),
    "kernel": ("Packages",),
    "mounts": ("RepartDirectories", "Format", *TREES),
    "os": ("Distribution", "Release", "Architecture"),
    "build": (
        "Format",
        "Bootable",
        "ImageId",
        "Profiles",
        "RemovePackages",
        "UnifiedKernelImages",
        "ExtraTrees",
        "SkeletonTrees",
        "RepartDirectories",
        *SCRIPTS.values(),
    ),
}
"""The settings each fact is made from: a setting the build host decides makes the fact unknown."""
T = TypeVar("T")


class Recipe:
    """A read recipe and where its parts are on disk."""

    def __init__(
        self,
        directory: Path,
        entry: RecipeEntry | None,
        cli: CommandLine,
        display_base: Path,
        implies: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.directory = directory
        self.entry = entry
        self.implies = implies or {}
        """cvmlint.toml's [mkosi-profile-implies]: mkosi profile -> policy profiles."""
        self.display_base = display_base
        self.cli = cli
        self.config: MkosiConfig = read_recipe(directory, cli, display_base)
        self.warnings = self.config.warnings
        dirs = [self.config.path(v) for v in self.config.items("RepartDirectories")]
        self.repart = read_definitions(dirs, display_base, self.warnings)
        self.pairs = verity_pairs(self.repart, self.warnings)
        self.trees = list(self._trees())
        removed = [v.text for v in self.config.items("RemoveFiles")]
        self.files = Trees([(p, t, v.text) for p, t, v in self.trees], removed, self.display)
        """What the trees put into the image (after RemoveFiles=)."""

    def display(self, path: Path) -> str:
        return os.path.relpath(path, self.display_base)

    def _trees(self) -> Iterator[tuple[Path, str, Value]]:
        """(source directory, target prefix, the value naming it) of skeleton and extra trees."""
        for setting in ("SkeletonTrees", "ExtraTrees"):
            for v in self.config.items(setting):
                source, _, target = v.text.partition(":")
                path = self.config.path(Value(source, v.where, v.base))
                if not path.exists():
                    self.warnings.append(
                        f"{v.where}: warning: {setting}={v.text}: {self.display(path)} does not "
                        "exist (mkosi fails the build)"
                    )
                    continue
                yield path, target or "/", v


NOT_MEASURED = Unknown("a recipe has no image to measure: `cvmlint measure` (or scan) the image it builds")


def recipe_facts(
    directory: Path,
    entry: RecipeEntry | None = None,
    cli: CommandLine | None = None,
    display_base: Path | None = None,
    read_files: list[Path] | None = None,
    implies: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[Facts, list[str]]:
    """The facts of a recipe read as `mkosi` with `cli` reads it, and the warnings reading it produced;
    `read_files` receives every file read (for evidence); `implies` is cvmlint.toml's
    [mkosi-profile-implies] (what each selected mkosi profile would relax)."""
    if cli is None:
        cli = CommandLine(profiles=entry.mkosi_profiles if entry else ())
    recipe = Recipe(directory, entry, cli, display_base or Path.cwd(), implies)
    files, capped = _files(recipe), recipe.files.unknown

    def from_trees(fact: str, make: Callable[[], T]) -> T | Unknown:
        return capped if capped is not None else _decided(recipe, fact, make)

    facts = Facts(
        target=Target(kind="recipe", name=recipe.display(directory), digest=""),
        packages=_decided(recipe, "packages", lambda: _packages(recipe)),
        files=from_trees("files", lambda: Items(files, Provenance(file=recipe.display(directory)))),
        rootfs=_decided(recipe, "layout", lambda: _rootfs(recipe)),
        verity=_decided(recipe, "layout", lambda: _verity(recipe)),
        cmdline=from_trees("cmdline", lambda: _cmdline(recipe, files)),
        boot=_decided(recipe, "boot", lambda: _boot(recipe)),
        kernel=_decided(recipe, "kernel", lambda: _kernel(recipe)),
        patches=_patches(recipe),
        mounts=from_trees("mounts", lambda: _mounts(recipe, files)),
        partitions=_decided(recipe, "layout", lambda: _partitions(recipe)),
        os=_decided(recipe, "os", lambda: _system(recipe)),
        build=_decided(recipe, "build", lambda: _build(recipe)),
        measurements=NOT_MEASURED,
    )
    # the digest covers every file read, scripts and patches included: taken after the facts are made
    facts = dataclasses.replace(
        facts, target=Target(kind="recipe", name=recipe.display(directory), digest=_digest(recipe, files))
    )
    if read_files is not None:
        read_files += _inputs(recipe)
    return facts, list(dict.fromkeys(recipe.warnings))


def _decided(recipe: Recipe, fact: str, make: Callable[[], T]) -> T | Unknown:
    """The fact, or unknown when a setting it reads is left to the build host (an undecided [Match])."""
    reason = recipe.config.why_undecided(*READS[fact])
    if reason is not None:
        return Unknown(f"depends on the build host: {reason}")
    return make()


def _inputs(recipe: Recipe) -> list[Path]:
    """Every file the recipe consists of, whichever facts were made: its configuration, the build scripts
    it names, the kernel-config fragment and the patch series cvmlint.toml gives it; in a fixed order."""
    found = [*recipe.config.files, *_script_paths(recipe)]
    if recipe.entry and recipe.entry.kernel_config is not None and present(recipe.entry.kernel_config):
        found.append(recipe.entry.kernel_config)
    patches = _patch_paths(recipe)
    if not isinstance(patches, Unknown):
        series = recipe.entry.patches / "series" if recipe.entry and recipe.entry.patches else None
        found += [p for p in (series, *patches) if p is not None and p.is_file()]
    return sorted(dict.fromkeys(found), key=recipe.display)


def _script_paths(recipe: Recipe) -> list[Path]:
    """The build scripts the recipe names that exist."""
    return [
        recipe.config.path(v)
        for setting in SCRIPT_SETTINGS
        for v in recipe.config.items(setting)
        if present(recipe.config.path(v))
    ]


def _digest(recipe: Recipe, files: list[File]) -> str:
    h = hashlib.sha256()
    for path in _inputs(recipe):
        h.update(
            recipe.display(path).encode()
            + b"\0"
            + read_bounded(path, "recipe-file-bytes", "file", recipe.display(path))
        )
    for f in files:
        h.update(f"{f.path}\0{f.mode}\0{f.size}\0{f.target}\0".encode("utf-8", "surrogateescape"))
    return "sha256:" + h.hexdigest()


# ---- the operating system and the build -------------------------------------------------------
def _system(recipe: Recipe) -> System:
    values: dict[str, str | Unknown] = {}
    places: dict[str, Provenance] = {}
    for field_name, setting in (
        ("distribution", "Distribution"),
        ("release", "Release"),
        ("architecture", "Architecture"),
    ):
        value = recipe.config.scalars.get(setting)
        if value is None:
            from cvmlint.recipe.mkosi import HOST

            values[field_name] = Unknown(f"{HOST[setting]} (give it with --{field_name})")
        elif value.unknown:
            values[field_name] = Unknown(value.unknown, value.where)
        else:
            values[field_name] = value.text
            places[field_name] = value.where
    where = places.get("distribution") or Provenance(file=recipe.display(recipe.directory / "mkosi.conf"))
    return System(where=where, field_where=places, **values)


def _build(recipe: Recipe) -> Build:
    cfg = recipe.config

    def texts(setting: str) -> tuple[str, ...]:
        return tuple(v.text for v in cfg.items(setting))

    def paths(setting: str) -> tuple[str, ...]:
        return tuple(recipe.display(cfg.path(v)) for v in cfg.items(setting))

    def trees(setting: str) -> tuple[str, ...]:
        out = []
        for v in cfg.items(setting):
            source, colon, target = v.text.partition(":")
            shown = recipe.display(cfg.path(Value(source, v.where, v.base)))
            out.append(f"{shown}:{target}" if colon and target else shown)
        return tuple(out)

    scripts = tuple(p for setting in SCRIPTS.values() for p in paths(setting))
    fmt = cfg.scalars.get("Format")
    return Build(
        format=fmt.text if fmt else "disk",
        bootable=feature(cfg.scalar("Bootable")),
        image_id=cfg.scalar("ImageId") or "",
        profiles=tuple(dict.fromkeys(texts("Profiles"))),
        profile_choices=_profile_choices(recipe),
        remove_packages=texts("RemovePackages"),
        unified_kernel_images=_uki_setting(cfg.scalar("UnifiedKernelImages")),
        extra_trees=trees("ExtraTrees"),
        skeleton_trees=trees("SkeletonTrees"),
        repart_directories=paths("RepartDirectories"),
        scripts=scripts,
        seed=_pinned_seed(cfg.scalar("Seed")),
        source_date_epoch=_source_date_epoch(cfg),
        where=fmt.where if fmt else Provenance(file=recipe.display(recipe.directory / "mkosi.conf")),
        field_where=_places(cfg, {"seed": "Seed", "source_date_epoch": "SourceDateEpoch"}),
    )


def _profile_choices(recipe: Recipe) -> Items[ProfileChoice]:
    """Each `Profiles=` value with its place: the command line's (and cvmlint.toml's) are the operator's,
    every other one the recipe's own."""
    choices = [
        ProfileChoice(
            name=v.text,
            chosen_by="operator" if v.where.file is None else "recipe",
            implies=recipe.implies.get(v.text, ()),
            where=v.where,
        )
        for v in recipe.config.items("Profiles")
    ]
    return Items(choices, Provenance(file=recipe.display(recipe.directory)))


def _pinned_seed(value: str | None) -> str:
    """`Seed=` unless unset or `random` (mkosi then draws a new one per build)."""
    return "" if not value or value.lower() == "random" else value


def _source_date_epoch(cfg: MkosiConfig) -> str:
    """`SourceDateEpoch=`, else `SOURCE_DATE_EPOCH` in `Environment=` (mkosi's own default)."""
    value = cfg.scalar("SourceDateEpoch")
    if value:
        return value
    env = cfg.dicts.get("Environment", {}).get("SOURCE_DATE_EPOCH")
    return env.text if env is not None and env.text else ""


def _places(cfg: MkosiConfig, fields: dict[str, str]) -> dict[str, Provenance]:
    return {name: cfg.scalars[setting].where for name, setting in fields.items() if setting in cfg.scalars}


def _uki_setting(value: str | None) -> str:
    """`UnifiedKernelImages=` as mkosi 26+ reads it: auto, signed (also `yes`: copy a prebuilt UKI), unsigned
    (mkosi builds one) or none (also `no`)."""
    if value is None:
        return "auto"
    lowered = value.lower()
    if lowered in ("auto", "signed", "unsigned", "none"):
        return lowered
    return "signed" if feature(lowered) == "yes" else "none"


# ---- packages ---------------------------------------------------------------------------------
def _arch(recipe: Recipe) -> str | Unknown:
    arch = recipe.config.scalars.get("Architecture")
    if arch is None:
        return Unknown("Architecture= is not set: mkosi builds for the build host's architecture")
    if arch.unknown:
        return Unknown(arch.unknown, arch.where)
    return ARCHES.get(arch.text, arch.text)


def _first_unknown(recipe: Recipe, *settings: str) -> Unknown | None:
    """An unknown for the first value of `settings` whose text depends on the build host."""
    for setting in settings:
        for v in recipe.config.items(setting):
            if v.unknown:
                return Unknown(f"{setting}= value: {v.unknown}", v.where)
    return None


def _packages(recipe: Recipe) -> Items[Package] | Unknown:
    from cvmlint.recipe.ini import read_text
    from cvmlint.recipe.scripts import installed_packages

    if (unknown := _first_unknown(recipe, "Packages", "VolatilePackages", "RemovePackages")) is not None:
        return unknown
    removed = {v.text for v in recipe.config.items("RemovePackages")}
    arch = _arch(recipe)
    apt = recipe.config.scalar("Distribution") in (None, "debian", "ubuntu", "kali")
    out = []
    for setting in ("Packages", "VolatilePackages"):
        for v in recipe.config.items(setting):
            spec = parse_spec(v.text) if apt else AptSpec(name=v.text)
            if spec.unknown:
                return Unknown(spec.unknown, v.where)
            if spec.removed or spec.name in removed:
                continue
            version: DebVersion | Unknown = DebVersion(spec.version) if spec.version else Unknown(BUILD)
            for name in (spec.name, spec.also) if spec.also else (spec.name,):
                out.append(
                    Package(
                        name=name,
                        version=version,
                        arch=spec.arch or arch,
                        origin="declared",
                        regex=spec.regex,
                        where=v.where,
                    )
                )
    for setting in SCRIPT_SETTINGS:
        for v in recipe.config.items(setting):
            script = recipe.config.path(v)
            if not present(script):
                recipe.warnings.append(f"{v.where}: warning: {setting}: {recipe.display(script)} does not exist")
                continue
            for pkg in installed_packages(read_text(script, "build script", recipe.display(script))):
                at = Provenance(file=recipe.display(script), line=pkg.line)
                names, regex = [pkg.name], ""
                if pkg.tool in ("apt-get", "apt", "aptitude", "mkosi-install"):
                    spec = parse_spec(pkg.name)
                    if spec.unknown:
                        return Unknown(spec.unknown.replace("Packages=", f"{pkg.tool} install "), at)
                    names = [] if spec.removed else [n for n in (spec.name, spec.also) if n]
                    regex = spec.regex
                out += [
                    Package(name=n, version=Unknown(BUILD), arch=arch, origin="script", regex=regex, where=at)
                    for n in names
                ]
    where = (
        recipe.config.items("Packages")[0].where
        if recipe.config.items("Packages")
        else Provenance(file=recipe.display(recipe.directory / "mkosi.conf"))
    )
    limits.note("recipe-packages", len(out))
    if len(out) > limits.get("recipe-packages"):
        return Unknown(
            f"{len(out)} packages named: over the limit recipe-packages = {limits.get('recipe-packages')} "
            "(raise it with --limit recipe-packages=N)",
            where,
        )
    return Items(out, where)


# ---- files (skeleton and extra trees) -----------------------------------------------------------
def _files(recipe: Recipe) -> list[File]:
    from cvmlint.facts.elf import elf_info

    out = []
    for entry in recipe.files.entries.values():
        elf: tuple[bool, str, str] = (False, "", "")
        if entry.kind == "file" and entry.size >= 52:
            head = entry.data[:8192] if entry.data is not None else _head(entry.host)
            elf = elf_info(head) if head is not None else (Unknown(f"{entry.shown} was not read"), "", "")  # type: ignore[assignment]
        out.append(
            File(
                path=entry.path,
                name=posixpath.basename(entry.path),
                type=entry.kind,
                mode=entry.mode,
                uid=entry.uid,
                gid=entry.gid,
                size=entry.size,
                target=entry.target,
                executable=entry.kind == "file" and bool(entry.mode & 0o111),
                setuid=entry.kind == "file" and bool(entry.mode & 0o6000),
                is_elf=elf[0],
                elf_machine=elf[1],
                elf_interpreter=elf[2],
                where=Provenance(file=entry.shown),
            )
        )
    return out


def _head(host: Path | None) -> bytes | None:
    """The first bytes of a tree's regular file (None for anything else)."""
    if host is None or not stat.S_ISREG(host.stat().st_mode):
        return None
    try:
        with open(host, "rb") as fh:
            return fh.read(8192)
    except OSError as err:
        raise InputError(f"{host}: cannot be read ({err.strerror or err})") from None


def _tree_file(recipe: Recipe, path: str) -> tuple[str, str] | Unknown | None:
    """The text a tree puts at `path` (the last tree wins, RemoveFiles= applied) and where it is
    written; None when none does; unknown when the build host decides what mkosi reads there."""
    return recipe.files.read(path)


# ---- partitions, root, verity ------------------------------------------------------------------
def _root_def(recipe: Recipe) -> PartitionDef | None:
    return next(
        (
            p
            for p in recipe.repart
            if p.type.startswith("root")
            and not p.type.endswith(("-verity", "-verity-sig"))
            and p.verity not in ("hash", "signature")
        ),
        None,
    )


def _paired(recipe: Recipe, part: PartitionDef) -> PartitionDef | None:
    return next((h for d, h in recipe.pairs.values() if d is part), None)


def _format(recipe: Recipe) -> Value | None:
    return recipe.config.scalars.get("Format")


def _not_disk(recipe: Recipe) -> Unknown | None:
    fmt = _format(recipe)
    if fmt is not None and fmt.text != "disk":
        return Unknown(f"Format={fmt.text}: the recipe builds no disk image", fmt.where)
    return None


def _rootfs(recipe: Recipe) -> RootFs | Unknown:
    if (no_disk := _not_disk(recipe)) is not None:
        return no_disk
    root = _root_def(recipe)
    if root is None:
        if recipe.repart:
            return Unknown(
                "the repart definitions have no root partition",
                Provenance(file=recipe.display(recipe.repart[0].path.parent)),
            )
        from cvmlint.recipe.specifiers import DISTRO_FS

        distro = recipe.config.scalars.get("Distribution")
        if distro is None:
            return Unknown(
                "no mkosi.repart/: mkosi's default root file system depends on the distribution, which "
                "the recipe leaves to the build host"
            )
        fs = DISTRO_FS.get(distro.text, "ext4")
        where = Provenance(
            file=recipe.display(recipe.directory / "mkosi.conf"),
            detail="no mkosi.repart/: mkosi's default layout (a writable root, no verity)",
        )
        return RootFs(
            format=fs,
            read_only=False,
            partition="10-root",
            partition_type="root",
            verity=False,
            found_by="repart",
            where=where,
        )
    pair = _paired(recipe, root)
    fmt: str | Unknown = root.format or Unknown("no Format= in the root definition (repart makes none)")
    return RootFs(
        format=fmt,
        read_only=root.read_only,
        partition=root.name,
        partition_type=root.type,
        verity=pair is not None,
        found_by="repart",
        where=root.where("Format" if "Format" in root.values else "Type"),
        field_where={"verity": root.where("Verity") if pair else root.where("Type")},
    )


def _verity(recipe: Recipe) -> Unknown:
    root = _root_def(recipe)
    pair = _paired(recipe, root) if root is not None else None
    if pair is None:
        return Unknown("the recipe pairs no verity hash partition with the root")
    return Unknown("the root hash is computed at build time: checked at scan time", pair.where("Verity"))


def _partitions(recipe: Recipe) -> Items[Partition] | Unknown:
    if (no_disk := _not_disk(recipe)) is not None:
        return no_disk
    out = [
        Partition(
            name=p.name,
            type=p.type,
            number=0,
            fs=p.format or ("verity" if p.verity == "hash" else ""),
            size=Unknown(BUILD),
            read_only=p.read_only,
            encrypted=p.encrypt != "off",
            luks_version=2 if p.encrypt != "off" else 0,
            where=p.where(),
        )
        for p in recipe.repart
    ]
    base = recipe.repart[0].path.parent if recipe.repart else recipe.directory
    return Items(out, Provenance(file=recipe.display(base)))


# ---- command line, boot, kernel, patches --------------------------------------------------------
GRUB_SPECIAL = set("\"'\\$;|&<>{}#`\n\r")
"""What GRUB's script reader treats otherwise than as plain text in the `linux` line mkosi writes."""
ROOTHASH_TEXT = "roothash=" + "0" * 64
"""The parameter mkosi adds for a verity root (a SHA-256 root hash): its length counts for the kernel."""


GRUB_PREFIX = 128
"""Room for GRUB's `BOOT_IMAGE=/path ` before the line (it counts in the kernel's 2047 bytes)."""


def _cmdline(recipe: Recipe, files: list[File]) -> Items[Param] | Unknown:
    """The parameters the kernel takes from what mkosi writes: /etc/kernel/cmdline (else
    /usr/lib/kernel/cmdline), the root hash, KernelCommandLine= — joined with spaces into one line, then
    split by the kernel (facts/cmdline.py). A UKI carries the whole line; a boot entry written as a line of
    a file (a type-1 `options` line, a GRUB `linux` line) ends at the first line break, and GRUB reads its
    line with its own rules first. When mkosi decides at build time which (UnifiedKernelImages=auto
    builds a UKI when systemd-stub is in the image), both must give the same parameters."""
    content: list[tuple[str, Provenance]] = []
    for path in ("/etc/kernel/cmdline", "/usr/lib/kernel/cmdline"):
        found = _tree_file(recipe, path)
        if isinstance(found, Unknown):
            return Unknown(f"{path}: {found.reason}")
        if found is not None:
            content = _file_lines(*found)
            break
    if (script := _script_writing(recipe, "kernel/cmdline")) is not None:
        return Unknown(f"{script} names kernel/cmdline: what a build script writes there is decided at build time")
    roothash: list[tuple[str, Provenance]] = []
    root = _root_def(recipe)
    if root is not None and _paired(recipe, root) is not None:
        roothash = [(ROOTHASH_TEXT, root.where("Verity"))]
    values = [(v.text, v.where) for v in recipe.config.items("KernelCommandLine")]
    readings = [_entry_params(way, content, roothash, values) for way in _entry_kinds(recipe)]
    for reading in readings:
        if isinstance(reading, Unknown):
            return reading
    first = readings[0]
    assert not isinstance(first, Unknown)
    if any(_shape(r) != _shape(first) for r in readings[1:] if not isinstance(r, Unknown)):
        return Unknown(
            "UnifiedKernelImages=auto: whether mkosi builds a UKI (when systemd-stub is in the image) is decided at "
            "build time, and the kernel takes other parameters from the UKI than from the boot loader's line"
        )
    where = values[-1][1] if values else Provenance(file=recipe.display(recipe.directory / "mkosi.conf"))
    return Items(first, where)


def _entry_kinds(recipe: Recipe) -> list[str]:
    """How the command line reaches the kernel: `uki`, `grub` (a grub.cfg `linux` line) or `bls` (a
    type-1 entry's `options` line); both a UKI and the loader's line when mkosi decides at build time."""
    boot = _boot(recipe)
    line = {"grub": "grub", "systemd-boot": "bls"}.get(str(boot.loader), "uki")
    uki = _uki_setting(recipe.config.scalar("UnifiedKernelImages"))
    if uki in ("signed", "unsigned") or boot.loader == "uki":
        return ["uki"]
    return [line] if uki == "none" else list(dict.fromkeys(["uki", line]))


def _entry_params(
    way: str,
    content: list[tuple[str, Provenance]],
    roothash: list[tuple[str, Provenance]],
    values: list[tuple[str, Provenance]],
) -> list[Param] | Unknown:
    """The kernel's parameters when the line reaches it `way` (see _entry_kinds)."""
    from cvmlint.facts.cmdline import COMMAND_LINE_SIZE, parse_joined

    grub = way == "grub"
    head = roothash if grub else []
    parts = [*head, *content, *roothash, *values]
    glue = [" "] * len(head) + [" "] + ["\n"] * (len(content) - 1)  # a file's lines keep their line breaks
    if way != "uki" and len(content) > 1:  # the file's other lines, the root hash and KernelCommandLine= are lost
        parts = [*head, content[0]]
    if grub:
        odd = sorted({c for text, _ in parts for c in text if c in GRUB_SPECIAL})
        if odd:
            where = next(w for text, w in parts if any(c in GRUB_SPECIAL for c in text))
            return Unknown(
                f"{where}: {' '.join(repr(c) for c in odd)} in the kernel command line: GRUB reads the `linux` line "
                "mkosi writes into grub.cfg with its own quoting and expansion, so what reaches the kernel is "
                "decided there"
            )
        length = sum(len(text.encode()) + 1 for text, _ in parts)
        if length > COMMAND_LINE_SIZE - 1 - GRUB_PREFIX:
            return Unknown(
                f"the kernel command line is {length} bytes: GRUB puts BOOT_IMAGE=<path> before it, and the kernel "
                f"keeps {COMMAND_LINE_SIZE - 1} bytes: which parameters are cut off depends on that path"
            )
    return [
        Param(name=p.name, value=Unknown("computed at build time"), where=p.where)
        if p.name == "roothash" and roothash and p.where == roothash[0][1] and p.value == "0" * 64
        else p
        for p in parse_joined(parts, glue)
    ]


def _shape(params: list[Param]) -> tuple[bool, list[tuple[str, object]]]:
    """What the kernel gets from a reading: whether the root hash is there (GRUB's line has it twice, the
    same value), and every other parameter in order."""
    rest: list[tuple[str, object]] = [(p.name, p.value) for p in params if p.name != "roothash"]
    return any(p.name == "roothash" for p in params), rest


def _file_lines(text: str, shown: str) -> list[tuple[str, Provenance]]:
    """A cmdline file's lines as mkosi takes the file (stripped as a whole), each with its line number."""
    content = text.strip()
    first = text[: text.index(content)].count("\n") + 1 if content else 1
    lines = content.replace("\r\n", "\n").replace("\r", "\n").split("\n") if content else []
    return [(line, Provenance(file=shown, line=first + n)) for n, line in enumerate(lines)]


def _script_writing(recipe: Recipe, needle: str) -> str | None:
    """The first build script whose text names `needle` (a path it may write), as shown."""
    from cvmlint.recipe.ini import read_text

    for path in _script_paths(recipe):
        try:
            text = read_text(path, "build script", recipe.display(path))
        except InputError:
            return recipe.display(path)  # unreadable: it may write anything
        if needle in text:
            return recipe.display(path)
    return None


def _boot(recipe: Recipe) -> Boot:
    cfg = recipe.config
    loader_value = cfg.scalars.get("Bootloader")
    loader_text = loader_value.text if loader_value else "systemd-boot"
    loader = loader_text.removesuffix("-signed")
    uki_setting = _uki_setting(cfg.scalar("UnifiedKernelImages"))
    uki = uki_setting in ("signed", "unsigned") or (uki_setting == "auto" and loader in ("systemd-boot", "uki"))
    shim = cfg.scalars.get("ShimBootloader")
    secure = cfg.scalars.get("SecureBoot")
    default = Provenance(file=recipe.display(recipe.directory / "mkosi.conf"), detail="mkosi's default")
    return Boot(
        loader=loader,
        shim=(shim.text if shim else "none") in ("signed", "unsigned"),
        secure_boot=is_true(secure.text if secure else None),
        uki=uki,
        binaries=Unknown(BUILD),
        entries=Unknown(BUILD),
        where=loader_value.where if loader_value else default,
        field_where={"shim": shim.where if shim else default, "secure_boot": secure.where if secure else default},
    )


def _kernel(recipe: Recipe) -> Kernel:
    from cvmlint.facts.kconfig import parse_config
    from cvmlint.recipe.ini import read_text

    declared = next((v for v in recipe.config.items("Packages") if v.text.startswith(("linux-image", "linux-"))), None)
    where = declared.where if declared else Provenance(file=recipe.display(recipe.directory / "mkosi.conf"))
    config: Items[ConfigOption] | Unknown = Unknown(
        "cvmlint.toml names no kernel-config fragment for this recipe: checked at scan time"
    )
    fragment = recipe.entry.kernel_config if recipe.entry else None
    if fragment is not None:
        values, lines = parse_config(read_text(fragment, "kernel config fragment", recipe.display(fragment)))
        shown = recipe.display(fragment)
        config = Items(
            [ConfigOption(name=k, value=v, where=Provenance(file=shown, line=lines[k])) for k, v in values.items()],
            Provenance(file=shown),
        )
    scan_time = "the kernel is built later: checked at scan time"
    return Kernel(
        version=Unknown(BUILD),
        compression=Unknown(BUILD),
        boot_protocol=Unknown(BUILD),
        config=config,
        params=Unknown(scan_time),
        modules=Unknown(scan_time),
        strings=KernelStrings(searched=[]),
        where=where,
    )


def _patch_paths(recipe: Recipe) -> list[Path] | Unknown:
    """The patch files of the series cvmlint.toml names (its `series` file's order, else by name)."""
    directory = recipe.entry.patches if recipe.entry else None
    if directory is None:
        return Unknown("cvmlint.toml names no kernel patch series for this recipe")
    if not directory.is_dir():
        return Unknown(f"the patch directory {recipe.display(directory)} does not exist")
    series = directory / "series"
    if present(series):
        data = read_bounded(series, "recipe-file-bytes", "patch series", recipe.display(series))
        text = data.decode("utf-8", "replace")
        names = [n.strip() for n in text.splitlines() if n.strip() and not n.startswith("#")]
        return [directory / n for n in names]
    return sorted(directory.glob("*.patch"))


def _patches(recipe: Recipe) -> Items[Patch] | Unknown:
    from cvmlint.recipe.patches import parse_patch

    paths = _patch_paths(recipe)
    if isinstance(paths, Unknown):
        return paths
    entry = recipe.entry
    entry_where = Provenance(
        file=recipe.display(entry.config_file) if entry and entry.config_file else "cvmlint.toml",
        line=entry.line if entry and entry.line else None,
    )
    return Items([parse_patch(p, recipe.display(p)) for p in paths], entry_where)


# ---- mounts --------------------------------------------------------------------------------------
def _mounts(recipe: Recipe, files: list[File]) -> Items[Mount] | Unknown:
    if (no_disk := _not_disk(recipe)) is not None:
        return no_disk
    out: list[Mount] = []
    root = _root_def(recipe)
    if root is not None:
        out.append(
            Mount(
                path="/",
                fstype=root.format,
                what=root.name,
                options="ro" if root.read_only else "",
                persistent=True,
                encrypted=root.encrypt != "off",
                where=root.where(),
            )
        )
    crypt_found = _tree_file(recipe, "/etc/crypttab")
    fstab = _tree_file(recipe, "/etc/fstab")
    for path, found in (("/etc/crypttab", crypt_found), ("/etc/fstab", fstab)):
        if isinstance(found, Unknown):
            return Unknown(f"{path}: {found.reason}")
    assert not isinstance(crypt_found, Unknown) and not isinstance(fstab, Unknown)
    crypt = crypttab_names(crypt_found[0]) if crypt_found else set()
    if fstab is not None:
        out += fstab_mounts(fstab[0], crypt, _locator(fstab[1]))
    names = {f.path for f in files}
    for f in files:
        directory, name = posixpath.split(f.path)
        if not name.endswith(".mount") or directory not in UNIT_DIRS or f.type != "file":
            continue
        found = _tree_file(recipe, f.path)
        if isinstance(found, Unknown):
            return Unknown(f"{f.path}: {found.reason}")
        if found is None:
            continue
        text, shown = found
        enabled = unit_installed(text) or any(p.endswith(f"/{name}") and ".wants/" in p for p in names)
        mount = unit_mount(text, crypt, _locator(shown))
        if enabled and mount is not None:
            out.append(mount)
    for p in recipe.repart:
        for value, line, shown in p.lists.get("MountPoint", []):
            path = value.split(":", 1)[0]
            out.append(
                Mount(
                    path=path,
                    fstype=p.format,
                    what=p.name,
                    persistent=True,
                    encrypted=p.encrypt != "off",
                    where=Provenance(file=shown, line=line),
                )
            )
        auto = AUTO_MOUNTS.get(p.type)
        if auto and not p.lists.get("MountPoint") and not any(m.path == auto for m in out):
            out.append(
                Mount(
                    path=auto,
                    fstype=p.format,
                    what=p.name,
                    persistent=True,
                    encrypted=p.encrypt != "off",
                    where=p.where(),
                )
            )
    base = recipe.trees[-1][2].where if recipe.trees else Provenance(file=recipe.display(recipe.directory))
    return Items(out, base)


def _locator(shown: str) -> Callable[[int], Provenance]:
    return lambda line: Provenance(file=shown, line=line)
