"""systemd-repart partition definitions (`mkosi.repart/*.conf`), and verity pairing.

Which files count, as systemd-repart decides (mkosi passes RepartDirectories= in order):

    * every `*.conf` of the directories, taken in file-name order; for a name found in several
      directories, the one in the **first** directory wins (an image's own mkosi.repart/ beats an
      included one's);
    * a file that is a symlink to /dev/null, or empty, **masks** that name: no partition;
    * drop-ins `<name>.conf.d/*.conf` from every directory (first directory wins per drop-in name,
      masked ones skipped) are read after the file, in name order, and override it.

    [Partition]             the only section
    Type=root               required (repart refuses a file without it)
    Format=erofs            implied vfat for esp/xbootldr, ext4 with CopyFiles=/MakeDirectories=/Encrypt=
    Verity=data|hash|signature, VerityMatchKey=root
                            per match key: one data and one hash partition (a pair), maybe a signature
    Encrypt=off|key-file|tpm2|key-file+tpm2 (yes = key-file)     LUKS2
    MountPoint=/var[:opts]  (fstab at build)      ReadOnly=, CopyFiles=

systemd syntax (`logical_lines`): lines end at \n or \r only; `#` and `;` start comment lines, which
never continue; an unescaped trailing backslash continues a line; only space, tab, CR and LF are
blanks. Unknown keys are warnings (as repart itself warns), with their file and line.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cvmlint.errors import InputError
from cvmlint.facts.provenance import Provenance
from cvmlint.recipe.ini import read_text

KEYS = {
    "Type",
    "Label",
    "UUID",
    "Priority",
    "Weight",
    "PaddingWeight",
    "SizeMinBytes",
    "SizeMaxBytes",
    "PaddingMinBytes",
    "PaddingMaxBytes",
    "CopyBlocks",
    "Format",
    "CopyFiles",
    "ExcludeFiles",
    "ExcludeFilesTarget",
    "MakeDirectories",
    "MakeSymlinks",
    "Subvolumes",
    "DefaultSubvolume",
    "Encrypt",
    "EncryptedVolume",
    "Verity",
    "VerityMatchKey",
    "VerityDataBlockSizeBytes",
    "VerityHashBlockSizeBytes",
    "FactoryReset",
    "Flags",
    "ReadOnly",
    "NoAuto",
    "GrowFileSystem",
    "SplitName",
    "Minimize",
    "MountPoint",
    "Compression",
    "CompressionLevel",
    "SupplementFor",
    "Integrity",
    "KeyFile",
    "TPM2PCRs",
    "AddValidateFS",
    "FileSystemSectorSize",
}
TRUE = {"1", "yes", "true", "on", "y", "t"}
"""systemd's `parse_boolean` (any case): unlike mkosi's vocabulary (settings.BOOLEANS), no `always` or
`enabled`."""


@dataclass
class PartitionDef:
    """One definition file: its settings with their lines."""

    name: str
    path: Path
    values: dict[str, tuple[str, int]] = field(default_factory=dict)
    lists: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)
    """Every assignment of a repeatable setting: (value, line, file)."""
    display: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    """Setting -> the file (the definition or a drop-in) its value comes from."""

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, (default, 0))[0]

    def where(self, key: str = "Type") -> Provenance:
        return Provenance(file=self.sources.get(key, self.display), line=self.values.get(key, ("", 0))[1] or None)

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
        """Read-only by its file system (erofs and squashfs cannot be written, whatever the GPT flag says),
        by ReadOnly=, or by systemd-repart's default for verity partitions."""
        if self.format in ("erofs", "squashfs"):
            return True
        value = self.get("ReadOnly")
        if value:
            return value.lower() in TRUE
        return (
            self.verity in ("data", "hash", "signature")
            or self.type.endswith(("-verity", "-verity-sig"))
            or self.format in ("erofs", "squashfs")
        )


def read_definitions(directories: list[Path], display_base: Path, warnings: list[str]) -> list[PartitionDef]:
    """The definitions systemd-repart uses, in name order (see the module docstring)."""
    chosen = _first_by_name(directories, "*.conf")
    parts = []
    for name in sorted(chosen):
        path = chosen[name]
        if masked(path):
            continue
        part = PartitionDef(path.stem, path, display=os.path.relpath(path, display_base))
        last_line = _read(part, path, display_base, warnings)
        dropins = _first_by_name([d / f"{name}.d" for d in directories], "*.conf")
        for dropin in (dropins[n] for n in sorted(dropins)):
            if not masked(dropin):
                _read(part, dropin, display_base, warnings)
        if "Type" not in part.values:
            raise InputError(f"{part.display}:{last_line}: no Type= (systemd-repart refuses the file)")
        parts.append(part)
    return parts


def _first_by_name(directories: list[Path], pattern: str) -> dict[str, Path]:
    """File name -> its path in the first directory that has it."""
    found: dict[str, Path] = {}
    for directory in directories:
        if directory.is_dir():
            for path in directory.glob(pattern):
                found.setdefault(path.name, path)
    return found


def masked(path: Path) -> bool:
    """A symlink to /dev/null, or an empty file: systemd's way to switch a configuration file off."""
    try:
        st = path.stat()
    except OSError:
        return False  # a dangling symlink: read_text reports it
    return (stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)) or (
        stat.S_ISREG(st.st_mode) and st.st_size == 0
    )


WHITESPACE = " \t\n\r"
"""systemd's WHITESPACE: what its parser strips (not a form feed or a vertical tab, as Python's strip() does)."""
EOL = re.compile(r"\r\n|\n\r|\n|\r")
"""systemd's read_line(): a line ends at \n or \r, a pair of different ones being one end."""


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each line systemd's configuration parser reads from `text`: a line
    whose first non-blank character is `#` or `;` is a comment, skipped even inside a continuation (so
    it never continues); a line ending in an unescaped backslash continues on the next, the backslash
    read as a space."""
    pending, start = "", 0
    for number, line in enumerate(EOL.split(text.removeprefix("\ufeff")), start=1):
        stripped = line.lstrip(WHITESPACE)
        if stripped and stripped[0] in "#;":
            continue
        if not pending:
            start = number
        joined = pending + line
        escaped = False
        for ch in joined:
            escaped = not escaped if ch == "\\" else False
        if escaped:
            pending = joined[:-1] + " "
            continue
        pending = ""
        yield start, joined
    if pending:
        yield start, pending


def _read(part: PartitionDef, path: Path, display_base: Path, warnings: list[str]) -> int:
    """Read one definition or drop-in file into `part` as systemd's parser reads it; the number of its
    last line."""
    display = os.path.relpath(path, display_base)
    section = ""
    text = read_text(path, "repart definition", display)
    last = 1
    for start, raw in logical_lines(text):
        line = raw.strip(WHITESPACE)
        if not line or line[0] in "#;":
            continue
        last = start
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
        key, value = key.strip(WHITESPACE), value.strip(WHITESPACE)
        if section != "Partition":
            if not section:
                raise InputError(f"{display}:{start}: setting {key}= is outside of any section")
            continue
        if key not in KEYS:
            shown = f"{key}=" if key.isprintable() else repr(key)
            warnings.append(f"{display}:{start}: warning: unknown repart setting {shown}: systemd-repart ignores it")
            continue
        if not value:  # an empty assignment resets the setting (and a list of CopyFiles=, MountPoint=, …)
            part.values.pop(key, None)
            part.lists.pop(key, None)
            continue
        part.values[key] = (value, start)
        part.sources[key] = display
        part.lists.setdefault(key, []).append((value, start, display))
    return last


def verity_pairs(parts: list[PartitionDef], warnings: list[str]) -> dict[str, tuple[PartitionDef, PartitionDef]]:
    """VerityMatchKey -> (data, hash) definitions; an incomplete or doubled pair is a warning."""
    groups: dict[str, dict[str, list[PartitionDef]]] = {}
    for p in parts:
        if p.verity == "off":
            if p.get("VerityMatchKey"):
                warnings.append(
                    f"{p.where('VerityMatchKey')}: warning: VerityMatchKey= with Verity=off: systemd-repart "
                    "refuses the layout"
                )
            continue
        key = p.get("VerityMatchKey")
        if not key:
            warnings.append(
                f"{p.where('Verity')}: warning: Verity={p.verity} without VerityMatchKey=: "
                "systemd-repart refuses the layout"
            )
            continue
        groups.setdefault(key, {}).setdefault(p.verity, []).append(p)
    for p in parts:
        minimize = p.get("Minimize", "off").lower()
        if minimize in ("best", *TRUE) and p.format not in ("erofs", "squashfs") and p.verity != "hash":
            warnings.append(
                f"{p.where('Minimize')}: warning: Minimize={p.get('Minimize')} on a {p.format or 'unformatted'} "
                "partition: systemd-repart refuses the layout (only read-only file systems or verity hash "
                "partitions can be minimized best)"
            )
    pairs = {}
    for key, roles in groups.items():
        data, hashes = roles.get("data", []), roles.get("hash", [])
        if len(data) == 1 and len(hashes) == 1:
            pairs[key] = (data[0], hashes[0])
            data_min, hash_min = (
                p.get("Minimize", "off") not in ("off", "no", "0", "false") for p in (data[0], hashes[0])
            )
            if hash_min and not data_min and not data[0].get("CopyBlocks"):
                warnings.append(
                    f"{hashes[0].where('Minimize')}: warning: Minimize= on a verity hash partition "
                    "whose data partition sets neither Minimize= nor CopyBlocks=: systemd-repart "
                    "refuses the layout"
                )
            continue
        first = next(p for ps in roles.values() for p in ps)
        warnings.append(
            f"{first.where('Verity')}: warning: VerityMatchKey={key} has {len(data)} Verity=data and "
            f"{len(hashes)} Verity=hash partitions: systemd-repart refuses the layout (it needs one each)"
        )
    return pairs
