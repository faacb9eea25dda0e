"""systemd-repart partition definitions (`mkosi.repart/*.conf`), and verity pairing.

    [Partition]             the only section; files are taken in name order
    Type=root               required (repart refuses a file without it)
    Format=erofs            implied vfat for esp/xbootldr, ext4 with CopyFiles=/MakeDirectories=/Encrypt=
    Verity=data|hash|signature, VerityMatchKey=root
                            per match key: one data and one hash partition (a pair), maybe a signature
    Encrypt=off|key-file|tpm2|key-file+tpm2 (yes = key-file)     LUKS2
    MountPoint=/var[:opts]  (fstab at build)      ReadOnly=, CopyFiles=

systemd syntax: `#` and `;` start comment lines, a trailing backslash continues a line. Unknown
keys are warnings (as repart itself warns), with their file and line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cvmlint.errors import InputError
from cvmlint.facts.provenance import Provenance
from cvmlint.recipe.ini import read_text

KEYS = {"Type", "Label", "UUID", "Priority", "Weight", "PaddingWeight", "SizeMinBytes", "SizeMaxBytes",
        "PaddingMinBytes", "PaddingMaxBytes", "CopyBlocks", "Format", "CopyFiles", "ExcludeFiles",
        "ExcludeFilesTarget", "MakeDirectories", "MakeSymlinks", "Subvolumes", "DefaultSubvolume", "Encrypt",
        "EncryptedVolume", "Verity", "VerityMatchKey", "VerityDataBlockSizeBytes", "VerityHashBlockSizeBytes",
        "FactoryReset", "Flags", "ReadOnly", "NoAuto", "GrowFileSystem", "SplitName", "Minimize", "MountPoint",
        "Compression", "CompressionLevel", "SupplementFor", "Integrity", "KeyFile", "TPM2PCRs", "AddValidateFS",
        "FileSystemSectorSize"}
TRUE = {"1", "yes", "true", "on", "y", "t"}


@dataclass
class PartitionDef:
    """One definition file: its settings with their lines."""

    name: str
    path: Path
    values: dict[str, tuple[str, int]] = field(default_factory=dict)
    lists: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    display: str = ""

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, (default, 0))[0]

    def where(self, key: str = "Type") -> Provenance:
        return Provenance(file=self.display, line=self.values.get(key, ("", 0))[1] or None)

    @property
    def type(self) -> str:
        return self.get("Type")

    @property
    def verity(self) -> str:
        return self.get("Verity", "off")

    @property
    def encrypt(self) -> str:
        value = self.get("Encrypt", "off")
        return "key-file" if value in TRUE else value

    @property
    def format(self) -> str:
        fmt = self.get("Format")
        if fmt:
            return fmt
        if self.type in ("esp", "xbootldr"):
            return "vfat"
        if self.lists.get("CopyFiles") or self.lists.get("MakeDirectories") or self.encrypt != "off":
            return "ext4"
        return ""

    @property
    def read_only(self) -> bool:
        value = self.get("ReadOnly")
        if value:
            return value in TRUE
        return self.verity in ("data", "hash", "signature") or self.type.endswith(("-verity", "-verity-sig")) \
            or self.format in ("erofs", "squashfs")


def read_definitions(directories: list[Path], display_base: Path, warnings: list[str]) -> list[PartitionDef]:
    """Every `*.conf` of the directories, by file name (a later directory's file of the same name wins)."""
    files: dict[str, Path] = {}
    for directory in directories:
        if directory.is_dir():
            for path in directory.glob("*.conf"):
                files[path.name] = path
    return [_read(files[name], display_base, warnings) for name in sorted(files)]


def _read(path: Path, display_base: Path, warnings: list[str]) -> PartitionDef:
    display = os.path.relpath(path, display_base)
    part = PartitionDef(path.stem, path, display=display)
    section = ""
    lines = read_text(path, "repart definition", display).splitlines()
    number, pending, start = 0, "", 0
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line, pending = (pending + line).strip(), ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise InputError(f"{display}:{start}: {line!r} is not a valid section header")
            section = line[1:-1]
            if section != "Partition":
                warnings.append(f"{display}:{start}: warning: unknown section [{section}]: systemd-repart ignores it")
            continue
        key, eq, value = line.partition("=")
        if not eq:
            raise InputError(f"{display}:{start}: {line!r} is not a `Key=value` setting")
        key, value = key.strip(), value.strip()
        if section != "Partition":
            if not section:
                raise InputError(f"{display}:{start}: setting {key}= is outside of any section")
            continue
        if key not in KEYS:
            warnings.append(f"{display}:{start}: warning: unknown repart setting {key}=: systemd-repart ignores it")
            continue
        part.values[key] = (value, start)
        part.lists.setdefault(key, []).append((value, start))
    if "Type" not in part.values:
        raise InputError(f"{display}:{max(number, 1)}: no Type= (systemd-repart refuses the file)")
    return part


def verity_pairs(parts: list[PartitionDef], warnings: list[str]) -> dict[str, tuple[PartitionDef, PartitionDef]]:
    """VerityMatchKey -> (data, hash) definitions; an incomplete or doubled pair is a warning."""
    groups: dict[str, dict[str, list[PartitionDef]]] = {}
    for p in parts:
        if p.verity == "off":
            continue
        key = p.get("VerityMatchKey")
        if not key:
            warnings.append(f"{p.display}:{p.values['Verity'][1]}: warning: Verity={p.verity} without "
                            "VerityMatchKey=: systemd-repart refuses it")
            continue
        groups.setdefault(key, {}).setdefault(p.verity, []).append(p)
    pairs = {}
    for key, roles in groups.items():
        data, hashes = roles.get("data", []), roles.get("hash", [])
        if len(data) == 1 and len(hashes) == 1:
            pairs[key] = (data[0], hashes[0])
            continue
        first = next(p for ps in roles.values() for p in ps)
        warnings.append(f"{first.display}:{first.values['Verity'][1]}: warning: VerityMatchKey={key} has "
                        f"{len(data)} Verity=data and {len(hashes)} Verity=hash partitions (needs one each)")
    return pairs
