"""The fact model: typed, immutable records that rules read, from a recipe or an image alike.

Every record carries `where` (its provenance) and, for records whose fields come from different
places (a recipe's `Format=` and `Verity=` lines), `field_where`. Any field, and any top-level fact,
may instead hold an `Unknown` with the reason it could not be established.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NewType, TypeVar, Union

from cvmlint.facts.provenance import Items, Provenance, Unknown

T = TypeVar("T")
Maybe = Union[T, Unknown]  # noqa: UP007  NOTE: a generic alias; `T | Unknown` cannot be subscripted
DebVersion = NewType("DebVersion", str)
"""A Debian package version: compared with dpkg's ordering, not as text."""


def doc(text: str, **kwargs: Any) -> Any:
    """A dataclass field with its description (shown by `cvmlint policy facts` and in docs/facts.md)."""
    return field(metadata={"doc": text}, **kwargs)


@dataclass(frozen=True, kw_only=True)
class Record:
    """Base of every fact record."""

    where: Provenance | None = field(default=None, compare=True, metadata={"hidden": True})
    field_where: Mapping[str, Provenance] = field(default_factory=dict, metadata={"hidden": True})

    KEY: ClassVar[str | None] = None
    """Field that names an item of a collection of these records: `packages["bash"]`."""
    INDEX_YIELDS: ClassVar[str | None] = None
    """What `collection["key"]` gives: the record itself (None) or this field of it."""
    METHODS: ClassVar[Mapping[str, tuple[tuple[str, ...], str]]] = {}
    """Methods a policy may call: name -> (argument types, result type)."""

    def located(self, name: str) -> Provenance | None:
        """Provenance of one field: its own if recorded, else the record's."""
        return self.field_where.get(name, self.where)


@dataclass(frozen=True, kw_only=True)
class Target(Record):
    """What the facts describe."""

    kind: str = doc("`recipe` or `image`.")
    name: str = doc("Recipe directory or image file name.")
    digest: Maybe[str] = doc("SHA-256 of the image file, or of the recipe's files in order.", default="")


@dataclass(frozen=True, kw_only=True)
class Package(Record):
    """A software package declared by a recipe or installed in an image."""

    KEY = "name"
    name: str = doc("Binary package name.")
    version: Maybe[DebVersion] = doc("Version (Debian ordering); unknown for a recipe that pins none.")
    arch: Maybe[str] = doc("Architecture, e.g. `amd64`, `all`.", default="")
    source: Maybe[str] = doc("Source package name.", default="")
    origin: str = doc(
        "How it is known: `dpkg`, `rpm`, `declared` (Packages=), `script` (a build script).", default="declared"
    )
    regex: str = doc(
        "A recipe's name that apt may read as a regular expression (RE2 syntax, case-insensitive, matched "
        "anywhere in a package name: `openssh.server` installs openssh-server when no package has that exact "
        "name); empty for a plain name and in images.",
        default="",
    )


@dataclass(frozen=True, kw_only=True)
class File(Record):
    """A file in the image root, or in a recipe's extra trees."""

    KEY = "path"
    path: str = doc("Absolute path inside the root file system.")
    name: str = doc("Last path component.")
    type: str = doc("`file`, `dir`, `symlink`, `char`, `block`, `fifo` or `socket`.")
    mode: int = doc("Permission bits, e.g. 0o755 (493).", default=0)
    perms: str = doc("The permission bits in octal as chmod writes them, e.g. `4755`; derived from mode.", default="")
    uid: int = doc("Owner user id.", default=0)
    gid: int = doc("Owner group id.", default=0)
    size: int = doc("Size in bytes.", default=0)
    target: str = doc("Symlink target; empty for other types.", default="")
    executable: bool = doc("Any execute bit set on a regular file.", default=False)
    setuid: bool = doc("Set-user-id or set-group-id bit set.", default=False)
    is_elf: Maybe[bool] = doc("Regular file starting with the ELF magic.", default=False)
    elf_machine: Maybe[str] = doc("ELF machine, e.g. `x86-64`; empty when not ELF.", default="")
    elf_interpreter: Maybe[str] = doc("ELF program interpreter (PT_INTERP); empty when none.", default="")

    def __post_init__(self) -> None:
        if not self.perms:
            object.__setattr__(self, "perms", f"{self.mode:04o}")


@dataclass(frozen=True, kw_only=True)
class RootFs(Record):
    """The root file system."""

    format: Maybe[str] = doc("File system: `erofs`, `squashfs`, `ext4`, `btrfs`, `xfs`, … (by magic or Format=).")
    read_only: Maybe[bool] = doc("Read-only by nature (erofs, squashfs) or by configuration.")
    partition: str = doc("Partition (or repart definition) holding it.", default="")
    partition_type: str = doc("Partition type name per the Discoverable Partitions Spec.", default="")
    verity: Maybe[bool] = doc("A dm-verity hash partition is paired with it.", default=False)
    found_by: str = doc("How it was found: `dps-type`, `cmdline root=`, `os-release`, `repart`.", default="")


@dataclass(frozen=True, kw_only=True)
class Verity(Record):
    """dm-verity protection of the root file system."""

    root_hash: Maybe[str] = doc(
        "Root hash (lower-case hex) of the stored hash tree: what the kernel checks roothash= against."
    )
    data_root_hash: Maybe[str] = doc(
        "Root hash recomputed from the data partition; differs from root_hash when "
        "data blocks no longer match the tree.",
        default="",
    )
    algorithm: Maybe[str] = doc("Hash algorithm, e.g. `sha256`.", default="")
    data_block_size: Maybe[int] = doc("Data block size in bytes.", default=0)
    hash_block_size: Maybe[int] = doc("Hash block size in bytes.", default=0)
    hash_type: Maybe[int] = doc("Format: 1 (normal) or 0 (Chrome OS).", default=1)
    tree_valid: Maybe[bool] = doc("The stored hash tree matches the data, level by level.", default=False)
    first_bad_block: Maybe[int | None] = doc("First data block whose hash does not match, or none.", default=None)
    uuids_match: Maybe[bool] = doc("Partition UUIDs are the two halves of the root hash (DPS rule).", default=False)
    signed: Maybe[bool] = doc("A root-verity-sig partition signs the root hash.", default=False)


@dataclass(frozen=True, kw_only=True)
class Param(Record):
    """One kernel command-line parameter, in order; duplicates are kept."""

    KEY = "name"
    INDEX_YIELDS = "value"
    name: str = doc("Parameter name, e.g. `lockdown`, `module.sig_enforce`.")
    value: Maybe[str | None] = doc("Value after `=`; none for a flag such as `ro`.", default=None)


@dataclass(frozen=True, kw_only=True)
class BootBinary(Record):
    """An EFI binary on the boot path."""

    KEY = "path"
    path: str = doc("Path on the ESP.")
    kind: str = doc("`shim`, `grub`, `systemd-boot`, `uki`, `kernel`, `mokmanager` or `other`.")
    signed: Maybe[bool] = doc("Carries an Authenticode signature.", default=False)
    signer: Maybe[str] = doc("Subject of the signer certificate; empty when unsigned.", default="")
    sha256: Maybe[str] = doc("SHA-256 of the file, hex; empty when it was not read.", default="")


@dataclass(frozen=True, kw_only=True)
class BootEntry(Record):
    """One way the system boots: a GRUB menuentry, a BLS entry or a UKI."""

    KEY = "title"
    title: str = doc("Entry title or UKI file name.")
    kind: str = doc("`grub`, `bls` or `uki`.")
    default: bool = doc("The entry that boots without user input.", default=False)
    kernel: Maybe[str] = doc("Kernel path.", default="")
    initrds: tuple[str, ...] = doc("Initrd paths, in order.", default=())
    initrd_files: Maybe[tuple[str, ...]] = doc(
        "Paths inside its initrds (every cpio segment), e.g. `kernel/firmware/acpi/dsdt.aml`.", default=()
    )
    cmdline: Maybe[Items[Param]] = doc("Its kernel command line.", default_factory=Items)


@dataclass(frozen=True, kw_only=True)
class Boot(Record):
    """The boot chain."""

    loader: Maybe[str] = doc("Second stage: `grub`, `systemd-boot`, `uki` or `none`.")
    shim: Maybe[bool] = doc("Shim is the first stage.", default=False)
    secure_boot: Maybe[bool] = doc(
        "Every binary on the boot path is signed (image) / SecureBoot= (recipe).", default=False
    )
    uki: Maybe[bool] = doc("Boots a unified kernel image.", default=False)
    binaries: Maybe[Items[BootBinary]] = doc("EFI binaries on the ESP.", default_factory=Items)
    entries: Maybe[Items[BootEntry]] = doc("Boot entries, the default first.", default_factory=Items)


@dataclass(frozen=True, kw_only=True)
class ConfigOption(Record):
    """One kernel build option; `# CONFIG_X is not set` reads as value `n`."""

    KEY = "name"
    INDEX_YIELDS = "value"
    name: str = doc("Option name with its `CONFIG_` prefix.")
    value: str = doc("`y`, `m`, `n`, a number or a string (quotes removed).")


@dataclass(frozen=True, kw_only=True)
class Module(Record):
    """A kernel module file."""

    KEY = "path"
    path: str = doc("Path of the .ko file.")
    signed: Maybe[bool] = doc("Ends with the `~Module signature appended~` trailer.")


class KernelStrings:
    """Answers `kernel.contains("…")` over the decompressed kernel image.

    `found` holds the strings known to be present; `searched` those known to be looked for
    (None: every string was searchable, as in a live scan or a complete fixture); `search`
    looks a string up live when the kernel image is at hand.
    """

    __slots__ = ("found", "search", "searched")

    def __init__(
        self,
        found: Iterable[str] = (),
        searched: Iterable[str] | None = None,
        search: Callable[[str], bool] | None = None,
    ) -> None:
        self.found = set(found)
        self.searched = None if searched is None else set(searched)
        self.search = search

    def contains(self, needle: str) -> bool | Unknown:
        """Whether the kernel holds `needle`; unknown if it was never searched for."""
        if needle in self.found:
            return True
        if self.searched is not None and needle in self.searched:
            return False
        if self.search is not None:
            hit = self.search(needle)
            (self.found.add(needle) if hit else None)
            if self.searched is not None:
                self.searched.add(needle)
            return hit
        if self.searched is None:
            return False
        return Unknown(f"the string {needle!r} was not searched for when these facts were recorded")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KernelStrings) and self.found == other.found and self.searched == other.searched

    __hash__ = None  # type: ignore[assignment]  # NOTE: mutable memo of live searches


@dataclass(frozen=True, kw_only=True)
class Kernel(Record):
    """The kernel a boot entry starts (the default entry's), or the recipe's kernel package."""

    METHODS: ClassVar[Mapping[str, tuple[tuple[str, ...], str]]] = {"contains": (("str",), "bool")}
    version: Maybe[str] = doc("Kernel release, e.g. `6.1.0-28-cloud-amd64`.")
    compression: Maybe[str] = doc("Payload compression: `gzip`, `xz`, `lz4`, `zstd`, …", default="")
    boot_protocol: Maybe[str] = doc("bzImage boot protocol version, e.g. `2.15`.", default="")
    config: Maybe[Items[ConfigOption]] = doc("Build configuration.", default_factory=Items)
    params: Maybe[tuple[str, ...]] = doc("Command-line parameter names the kernel knows.", default=())
    modules: Maybe[Items[Module]] = doc("Module files.", default_factory=Items)
    strings: KernelStrings = field(default_factory=KernelStrings, metadata={"hidden": True})

    def contains(self, needle: str) -> bool | Unknown:
        """Whether the decompressed kernel image holds `needle`."""
        return self.strings.contains(needle)


@dataclass(frozen=True, kw_only=True)
class Patch(Record):
    """A kernel patch of the series a recipe's kernel is built with."""

    KEY = "file"
    file: str = doc("Patch file path.")
    subject: str = doc("Subject line (without `[PATCH n/m]`).", default="")
    files: tuple[str, ...] = doc("Files the patch changes.", default=())
    functions: tuple[str, ...] = doc("Functions named in its hunk headers.", default=())
    well_formed: bool = doc("Every hunk's line counts add up.", default=True)
    problem: str = doc("What is wrong when not well formed.", default="")


@dataclass(frozen=True, kw_only=True)
class Mount(Record):
    """Something mounted at boot: a mount unit, an fstab line, or a discoverable partition."""

    KEY = "path"
    path: str = doc("Mount point.")
    fstype: Maybe[str] = doc("File system type, e.g. `tmpfs`, `ext4`.")
    what: Maybe[str] = doc("What is mounted (device, `tmpfs`, …).", default="")
    options: Maybe[str] = doc("Mount options.", default="")
    persistent: Maybe[bool] = doc("Survives a reboot (not tmpfs/ramfs).", default=False)
    encrypted: Maybe[bool] = doc("Backed by LUKS (dm-crypt).", default=False)


@dataclass(frozen=True, kw_only=True)
class Partition(Record):
    """A partition of the disk image, or a repart definition of a recipe."""

    KEY = "name"
    name: str = doc("Partition label, or the repart file name.")
    type: str = doc("Type name per the Discoverable Partitions Spec (`root-x86-64`, `esp`, `var`, …).")
    number: int = doc("Partition number (1-based); 0 for a recipe.", default=0)
    fs: Maybe[str] = doc("Content by magic: `erofs`, `vfat`, `luks2`, `verity`, … or Format=.", default="")
    size: Maybe[int] = doc("Size in bytes.", default=0)
    read_only: Maybe[bool] = doc("GPT read-only attribute (bit 60).", default=False)
    encrypted: Maybe[bool] = doc("LUKS-encrypted (header present, or Encrypt= set).", default=False)
    luks_version: Maybe[int] = doc("1 or 2 for LUKS; 0 otherwise.", default=0)


@dataclass(frozen=True, kw_only=True)
class System(Record):
    """The operating system: what an image's os-release says, or what a recipe installs."""

    distribution: Maybe[str] = doc(
        "Distribution, as mkosi names it: `ubuntu`, `debian`, `fedora`, … (os-release `ID=` / `Distribution=`)."
    )
    release: Maybe[str] = doc(
        "Release: `noble`, `trixie`, `41`, … (os-release `VERSION_CODENAME=`, else `VERSION_ID=` / `Release=`)."
    )
    architecture: Maybe[str] = doc(
        "Architecture, as mkosi and the Discoverable Partitions Spec name it: "
        "`x86-64`, `arm64`, … (the root partition's type / `Architecture=`)."
    )


@dataclass(frozen=True, kw_only=True)
class MeasuredEvent(Record):
    """One extend a boot of the image makes, predicted from the image (`cvmlint measure`)."""

    pcr: int = doc("The PCR it extends (on TDX: RTMR[1] for PCRs 2–6, RTMR[2] for 8–15).")
    type: str = doc("TCG event type: `EV_EFI_BOOT_SERVICES_APPLICATION`, `EV_IPL`, `EV_EFI_ACTION`, …")
    by: str = doc("Who extends it: `firmware`, `shim`, `grub`, `systemd-boot`, `systemd-stub` or `linux`.")
    what: str = doc("What its digest covers: a file, a GRUB command, a UKI section, a command line, …")
    sha256: Maybe[str] = doc("Its SHA-256 digest (hex).")
    sha384: Maybe[str] = doc("Its SHA-384 digest (hex).")


@dataclass(frozen=True, kw_only=True)
class Measurements(Record):
    """What booting the image's default entry extends into the TPM and the TDX RTMRs (`cvmlint measure`)."""

    pcr_sha256: tuple[Maybe[str], ...] = doc(
        "PCRs 0–23 of the SHA-256 bank (hex), by index; unknown where not predicted (0–3, 6, 7: firmware).",
        default=(),
    )
    pcr_sha384: tuple[Maybe[str], ...] = doc("PCRs 0–23 of the SHA-384 bank (hex), by index.", default=())
    rtmr: tuple[Maybe[str], ...] = doc(
        "TDX RTMR[0]–[3] (hex), by index; RTMR[0] (firmware) and RTMR[3] (run time) unknown.", default=()
    )
    rtmr_components: tuple[str, ...] = doc(
        "Components whose events reach the RTMRs (those measuring through TDX's CC protocol).", default=()
    )
    events: Items[MeasuredEvent] = doc("Every predicted event, in order.", default_factory=Items)


@dataclass(frozen=True, kw_only=True)
class ProfileChoice(Record):
    """An mkosi profile selected for the build, and by whom."""

    KEY = "name"
    name: str = doc("The mkosi profile.")
    chosen_by: str = doc(
        "`recipe` (`Profiles=` in one of the recipe's files: mkosi selects it on every build) or "
        "`operator` (cvmlint.toml's `mkosi-profiles`, or `--mkosi-profile`)."
    )
    implies: tuple[str, ...] = doc(
        "The policy profiles cvmlint.toml's [mkosi-profile-implies] maps it to (applied only when the "
        "operator chooses it).",
        default=(),
    )


@dataclass(frozen=True, kw_only=True)
class Build(Record):
    """How a recipe has its image built: the mkosi settings no image records."""

    format: str = doc("`Format=`: `disk`, `directory`, `tar`, `uki`, `esp`, `cpio`, `sysext`, …")
    bootable: str = doc("`Bootable=`: `yes`, `no` or `auto`.", default="auto")
    image_id: str = doc("`ImageId=`; empty when unset.", default="")
    profiles: tuple[str, ...] = doc("mkosi profiles selected (`Profiles=` and `--mkosi-profile`).", default=())
    profile_choices: Items[ProfileChoice] = doc(
        "Each selection of an mkosi profile, where it is made and by whom.", default_factory=Items
    )
    remove_packages: tuple[str, ...] = doc("`RemovePackages=`: purged after installation.", default=())
    unified_kernel_images: str = doc(
        "`UnifiedKernelImages=` as mkosi 26+ reads it: `auto`, `signed` (also "
        "`yes`: copy a prebuilt signed UKI), `unsigned` (mkosi builds one) or `none` "
        "(also `no`).",
        default="auto",
    )
    extra_trees: tuple[str, ...] = doc("`ExtraTrees=` (and `mkosi.extra/`): `source[:target]`, in order.", default=())
    skeleton_trees: tuple[str, ...] = doc("`SkeletonTrees=` (and `mkosi.skeleton/`), in order.", default=())
    repart_directories: tuple[str, ...] = doc(
        "`RepartDirectories=` (and `mkosi.repart/`), in the order mkosi "
        "passes them to systemd-repart (the first holding a file name "
        "wins).",
        default=(),
    )
    scripts: tuple[str, ...] = doc(
        "Build scripts (sync, prepare, build, postinst, finalize, postoutput), in the order mkosi runs them.",
        default=(),
    )
    seed: str = doc(
        "`Seed=` (or `mkosi.seed`): what systemd-repart derives UUIDs and the verity salt from; empty when "
        "unset or `random` (a new random seed per build).",
        default="",
    )
    source_date_epoch: str = doc(
        "`SourceDateEpoch=` (or `SOURCE_DATE_EPOCH` in `Environment=`): the time every modification time is "
        "clamped to; empty when unset (the build's clock).",
        default="",
    )


@dataclass(frozen=True, kw_only=True)
class Facts:
    """Everything a policy can read about one target."""

    target: Target = doc("What the facts describe: a recipe or an image.")
    packages: Maybe[Items[Package]] = doc("Installed (image) or declared (recipe) packages.")
    files: Maybe[Items[File]] = doc("Files of the root tree (image) or of the extra trees (recipe).")
    rootfs: Maybe[RootFs] = doc("The root file system.")
    verity: Maybe[Verity] = doc("dm-verity protection of the root.")
    cmdline: Maybe[Items[Param]] = doc("Kernel command line of the default boot entry.")
    boot: Maybe[Boot] = doc("The boot chain.")
    kernel: Maybe[Kernel] = doc("The kernel.")
    patches: Maybe[Items[Patch]] = doc("The kernel patch series (recipes).")
    mounts: Maybe[Items[Mount]] = doc("What is mounted where.")
    partitions: Maybe[Items[Partition]] = doc("Partitions of the disk.")
    os: Maybe[System] = doc("The operating system.", default=Unknown("not recorded"))
    build: Maybe[Build] = doc("How a recipe builds its image (recipes).", default=Unknown("not recorded"))
    measurements: Maybe[Measurements] = doc(
        "What a boot of the image extends into the TPM and TDX RTMRs (images).", default=Unknown("not recorded")
    )


RECORD_TYPES: tuple[type[Record], ...] = (
    Target,
    Package,
    File,
    RootFs,
    Verity,
    Param,
    BootBinary,
    BootEntry,
    Boot,
    ConfigOption,
    Module,
    Kernel,
    Patch,
    Mount,
    Partition,
    System,
    ProfileChoice,
    Build,
    MeasuredEvent,
    Measurements,
)
