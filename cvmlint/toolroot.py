"""Tool roots: Debian roots, made once by debootstrap, that hold newer build tools than the host.

mkosi 25+ and systemd-repart 257+ are not in Debian 12, and installing trixie packages on a
bookworm host drags its libc along. A tool root keeps them apart: a minimal Debian root with the
tools installed, cached under a name derived from what it holds, and entered with `chroot` in a
private mount namespace (the host's mounts never change). Making one needs root (debootstrap,
chroot); the package mirror is the host's own (`cvmlint.apt`).

    ToolRoot("trixie", ("mkosi", "systemd-repart"))             Debian trixie: mkosi 25.3, systemd 257
    ToolRoot("trixie", ("mkosi", "systemd-repart"), "sid")      the same, the tools taken from sid
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cvmlint.cache import default_cache
from cvmlint.tools import ToolError, last_lines, require, run

MARKER = ".cvmlint-toolroot.json"
CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
}


@dataclass(frozen=True)
class ToolRoot:
    """A recipe for a tool root: a debootstrap suite, the packages, and where they come from."""

    suite: str
    packages: tuple[str, ...]
    tools_suite: str | None = None
    """Install the packages from this suite instead (e.g. `sid`), with its Valid-Until not checked:
    the mirror's sid Release file may be past that date."""

    @property
    def key(self) -> str:
        recipe = json.dumps([self.suite, sorted(self.packages), self.tools_suite])
        return hashlib.sha256(recipe.encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        return f"toolroot-{self.tools_suite or self.suite}-{self.key}"

    def path(self, cache: Path | None = None) -> Path:
        return (cache or default_cache()) / self.name

    def exists(self, cache: Path | None = None) -> bool:
        return (self.path(cache) / MARKER).is_file()

    def ensure(
        self, cache: Path | None = None, mirror: str | None = None, progress: Callable[[str], None] | None = None
    ) -> Path:
        """The root, made now if it is not cached yet (needs root and the network to the mirror); each
        step is told to `progress` as it starts."""
        say = progress or (lambda step: None)
        root = self.path(cache)
        if self.exists(cache):
            say(f"the tool root {root} is made already")
            return root
        if os.geteuid() != 0:
            raise ToolError(f"making the tool root {root} needs root (debootstrap, chroot): run it once as root")
        from cvmlint.apt import debian_mirror

        mirror = mirror or debian_mirror()
        tmp = root.with_name(root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        say(f"debootstrap {self.suite} (minbase) from {mirror} into {tmp}")
        run([require("debootstrap"), "--variant=minbase", self.suite, tmp, mirror])
        target = ""
        if self.tools_suite:
            (tmp / "etc/apt/sources.list.d" / f"{self.tools_suite}.list").write_text(
                f"deb [check-valid-until=no] {mirror} {self.tools_suite} main\n"
            )
            target = f"-t {shlex.quote(self.tools_suite)} "
        install = (
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
            f"--no-install-recommends {target}{' '.join(map(shlex.quote, self.packages))} && apt-get clean"
        )
        say(f"installing {', '.join(self.packages)}{' from ' + self.tools_suite if self.tools_suite else ''}")
        run_in_root(tmp, ["sh", "-c", install])
        (tmp / MARKER).write_text(
            json.dumps({"suite": self.suite, "packages": list(self.packages), "tools_suite": self.tools_suite}) + "\n"
        )
        tmp.rename(root)
        say(f"made {root}")
        return root


def run_in_root(
    root: Path,
    argv: Sequence[str | Path],
    *,
    binds: Sequence[Path] = (),
    cwd: Path | None = None,
    ok: Sequence[int] = (0,),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` chrooted into `root`, in a private mount namespace with /proc, /dev and /sys, and each
    of `binds` mounted at the same path inside (so paths on both sides agree)."""
    inner = (f"cd {_q(cwd)} && " if cwd else "") + "exec " + " ".join(_q(a) for a in argv)
    script = mount_script(root, binds) + f" && exec chroot {_q(root)} /bin/sh -c {_q(inner)}"
    result = subprocess.run(
        [require("unshare"), "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        env={**CLEAN_ENV, **(env or {})},
        check=False,
    )
    if result.returncode not in ok:
        raise ToolError(
            f"{' '.join(map(str, argv[:6]))} (in {root.name}) exited {result.returncode}:\n"
            f"{last_lines(result.stderr or result.stdout)}"
        )
    return result


def mount_script(root: Path, binds: Sequence[Path] = ()) -> str:
    """Shell commands (for a private mount namespace) that make `root` ready to chroot into: itself a
    mount point (mkosi's sandbox needs that), /proc, /dev, /sys, and `binds` at their own paths."""
    setup = [
        f"mount --rbind {_q(root)} {_q(root)}",
        f"mount -t proc proc {_q(root / 'proc')}",
        f"mount --rbind /dev {_q(root / 'dev')}",
        f"mount --rbind /sys {_q(root / 'sys')}",
    ]
    for path in binds:
        inside = root / str(path.resolve()).lstrip("/")
        setup += [f"mkdir -p {_q(inside)}", f"mount --bind {_q(path.resolve())} {_q(inside)}"]
    return " && ".join(setup)


def _q(value: str | Path) -> str:
    return shlex.quote(str(value))
