"""mkosi's specifiers: `%d`, `%a`, `%C` … in setting and [Match] values, expanded as mkosi does.

Example line:   Packages=linux-image-%a        with Architecture=arm64  ->  linux-image-arm64

A specifier takes the value its setting has at that point of the reading (a later assignment does
not change it). Where mkosi would use the build host's value (an unset Distribution=, Release= or
Architecture=), the expansion is unknown, with the reason, never the literal `%a`. Where mkosi warns
and drops the specifier (an unset ImageId=), so does cvmlint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SETTING_SPECIFIERS = {
    "d": "Distribution",
    "r": "Release",
    "a": "Architecture",
    "t": "Format",
    "o": "Output",
    "O": "OutputDirectory",
    "i": "ImageId",
    "v": "ImageVersion",
}
DISTRO_FS = {
    "fedora": "btrfs",
    "opensuse": "btrfs",
    "centos": "xfs",
    "rhel": "xfs",
    "rhel-ubi": "xfs",
    "rocky": "xfs",
    "alma": "xfs",
}
"""The root file system mkosi's default layout gives each distribution (ext4 for the others)."""


class HostValue(str):
    """A setting whose value is the build host's (unknown here); the text says why."""


Lookup = Callable[[str], "str | HostValue | None"]
"""The value a setting has now: text, a HostValue (unknown before the build), or None (unset)."""


@dataclass(frozen=True)
class Place:
    """Where a value is being read: for %C, %P, %D and %I."""

    file: Path
    workdir: Path
    invocation: Path
    image: str = ""


@dataclass(frozen=True)
class Expansion:
    """A value with its specifiers expanded."""

    text: str
    unknown: str | None = None
    """Why the value is not known before the build (a host-dependent specifier), or None."""
    warnings: tuple[str, ...] = ()


def expand(text: str, lookup: Lookup, place: Place) -> Expansion:
    """`text` with every `%x` replaced as mkosi replaces it."""
    if "%" not in text:
        return Expansion(text)
    out: list[str] = []
    unknown: str | None = None
    warnings: list[str] = []
    chars = iter(text)
    for ch in chars:
        if ch != "%":
            out.append(ch)
            continue
        spec = next(chars, None)
        if spec is None:
            out.append("%")
            break
        value = _specifier(spec, lookup, place)
        if isinstance(value, HostValue):
            unknown = unknown or f"%{spec} in {text!r}: {value}"
        elif value is None:
            warnings.append(f"%{spec} in {text!r} has no value here: mkosi drops it")
        else:
            out.append(value)
    return Expansion("".join(out), unknown, tuple(warnings))


def _specifier(spec: str, lookup: Lookup, place: Place) -> str | HostValue | None:
    if spec == "%":
        return "%"
    if spec in SETTING_SPECIFIERS:
        return lookup(SETTING_SPECIFIERS[spec])
    if spec == "C":
        return str(place.file.resolve().parent)
    if spec == "P":
        return str(place.workdir)
    if spec == "D":
        return str(place.invocation)
    if spec == "I":
        return place.image
    if spec == "F":
        distribution = lookup("Distribution")
        if distribution is None or isinstance(distribution, HostValue):
            return HostValue(
                "the default file system depends on Distribution=, which the recipe leaves to the build host"
            )
        return DISTRO_FS.get(distribution, "ext4")
    return None
