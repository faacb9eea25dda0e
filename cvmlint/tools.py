"""External programs cvmlint runs (debootstrap, mkosi, systemd-repart …), through one wrapper.

Each program is declared once with the Debian package that provides it, so a missing program is
reported with what to install. Only the tool-root and build code runs programs; nothing that reads
an image or a recipe ever does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from cvmlint.errors import CvmlintError

PACKAGES: Mapping[str, str] = {
    "debootstrap": "debootstrap",
    "unshare": "util-linux",
    "chroot": "coreutils",
    "mount": "mount",
    "apt-get": "apt",
}
STDERR_LINES = 25


class ToolError(CvmlintError):
    """An external program is missing, or exited with a code it should not have."""


def require(program: str) -> str:
    """The full path of `program`, or a ToolError naming the package that provides it."""
    found = shutil.which(program)
    if found is None:
        package = PACKAGES.get(program)
        hint = f" (Debian package {package})" if package else ""
        raise ToolError(f"{program} is not installed{hint}")
    return found


def last_lines(text: str, count: int = STDERR_LINES) -> str:
    """The last `count` lines of a program's output, for an error message."""
    return "\n".join(text.rstrip().splitlines()[-count:])


def run(
    argv: Sequence[str | Path],
    *,
    ok: Sequence[int] = (0,),
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a program and capture its output; an exit code outside `ok` is a ToolError with its stderr."""
    args = [str(a) for a in argv]
    require(args[0])
    result = subprocess.run(
        args, capture_output=True, text=True, cwd=cwd, input=stdin, env={**os.environ, **(env or {})}, check=False
    )
    if result.returncode not in ok:
        raise ToolError(
            f"{' '.join(args[:6])}{' …' if len(args) > 6 else ''} exited {result.returncode}:\n"
            f"{last_lines(result.stderr or result.stdout)}"
        )
    return result
