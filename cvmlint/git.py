"""Git, as cvmlint uses it: where a repository's top is, and the tree of a trusted ref (the base
branch of a pull request), written out so the policy, its data, the waivers and cvmlint.toml are read
as the base has them while the recipes are read from the working tree."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

from cvmlint.errors import InputError

FIX = "fetch the base branch first (`git fetch origin main`) and name it as origin/main"


def toplevel(path: Path) -> Path | None:
    """The top of the git work tree holding `path`, or None (no git, or not in a repository)."""
    if shutil.which("git") is None:
        return None
    found = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=False
    )
    return Path(found.stdout.strip()).resolve() if found.returncode == 0 and found.stdout.strip() else None


def commit_of(top: Path, ref: str) -> str:
    """The commit `ref` names in the repository at `top`; an InputError with the fix when there is none."""
    if ref.startswith("-"):
        raise InputError(f"{ref}: not a git ref", hint=FIX)
    found = subprocess.run(
        ["git", "-C", str(top), "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        raise InputError(f"{ref}: no such commit in the repository {top}", hint=FIX)
    return found.stdout.strip()


def require_repository(path: Path, what: str) -> Path:
    """The repository top above `path`, or an InputError saying that `what` (an option naming a ref)
    needs one."""
    if shutil.which("git") is None:
        raise InputError(f"{what} needs git, which is not installed (Debian package git)")
    top = toplevel(path)
    if top is None:
        raise InputError(
            f"{what}: {path} is not inside a git repository",
            hint="run it in a clone of the repository (the pull request's checkout)",
        )
    return top


def export_tree(top: Path, commit: str, dest: Path) -> None:
    """Write the tree of `commit` into `dest` (`git archive`, unpacked with tarfile's data filter: no
    links out of `dest`, no devices, no setuid bits; a member the filter refuses is left out)."""
    with subprocess.Popen(
        ["git", "-C", str(top), "archive", "--format=tar", commit],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            archive.extractall(dest, filter=_inside)
        error = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise InputError(f"git archive {commit} failed: {error.strip()[:400]}")


def _inside(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's data filter, leaving out what it refuses (a symlink to /dev/null masking a file, a link
    out of the tree) instead of failing: the gate's files are regular files, and one left out is missing."""
    try:
        return tarfile.data_filter(member, dest)
    except tarfile.FilterError:
        return None
