"""Running mkosi: the host's when it is new enough, else one in a tool root (Debian trixie, mkosi 25.3).

mkosi prints each step it starts as a line beginning with `‣`; those lines drive the progress
display, and everything mkosi prints goes to a log file. The Debian mirror mkosi uses comes from
this machine's apt configuration, through a sandbox tree (mkosi's own defaults add repositories,
such as Debian's -debug archive, that a local mirror may not serve).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cvmlint import dpkg
from cvmlint.cache import default_cache
from cvmlint.errors import CvmlintError
from cvmlint.recipe.mkosi import CommandLine
from cvmlint.toolroot import CLEAN_ENV, ToolRoot

MINIMUM_VERSION = (25, 0)
BUILD_ROOT = ToolRoot(
    "trixie",
    (
        "mkosi",
        "systemd-repart",
        "systemd-ukify",
        "systemd-boot-efi",
        "systemd-container",
        "udev",
        "erofs-utils",
        "cryptsetup-bin",
        "sbsigntool",
        "mtools",
        "dosfstools",
        "fdisk",
        "zstd",
        "kmod",
        "cpio",
        "openssl",
        "python3-pefile",
        "reprepro",
        "debian-archive-keyring",
        "ubuntu-keyring",
    ),
)
"""What a build needs besides mkosi: repart and its mkfs tools, ukify, signing, keyrings."""
LAST_LINES = 30
Progress = Callable[[str], None]
"""Called with each step mkosi starts."""


class BuildError(CvmlintError):
    """mkosi could not be run, or failed (the message has its last lines and the log's path)."""


@dataclass(frozen=True)
class Mkosi:
    """How to run mkosi: on the host, or chrooted into a tool root (paths bound at the same place)."""

    version: str
    root: Path | None = None

    def argv(self, args: Sequence[str], binds: Sequence[Path]) -> tuple[list[str], dict[str, str]]:
        if self.root is None:
            return ["mkosi", *args], dict(os.environ)
        from cvmlint.toolroot import mount_script

        script = (
            mount_script(self.root, binds)
            + " && exec chroot "
            + shlex.quote(str(self.root))
            + " mkosi "
            + " ".join(shlex.quote(a) for a in args)
        )
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script], dict(CLEAN_ENV)


BUILD_TOOLS = (
    "mkosi",
    "systemd-repart",
    "systemd-ukify",
    "erofs-utils",
    "cryptsetup-bin",
    "dosfstools",
    "mtools",
    "fdisk",
    "cpio",
    "zstd",
    "kmod",
    "sbsigntool",
    "apt",
    "dpkg",
    "reprepro",
)
"""The packages whose versions decide an image's bytes besides its own packages: recorded with each build."""


UNKNOWN_TOOL = "unknown"
"""A recorded tool version that could not be read starts with this word."""


def tool_versions(mkosi: Mkosi) -> dict[str, str]:
    """The installed version of each of BUILD_TOOLS where mkosi runs (its tool root, else this host).
    Where no status database can be read (a host that is not Debian), each is recorded as unknown
    with the reason, so that a rebuild cannot report the tools as unchanged."""
    status = (mkosi.root or Path("/")) / "var/lib/dpkg/status"
    try:
        text = status.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        return {name: f"{UNKNOWN_TOOL} ({status}: {err.strerror})" for name in BUILD_TOOLS}
    return dpkg.installed_versions(text, BUILD_TOOLS)


def find_mkosi(cache: Path | None = None) -> Mkosi:
    """The host's mkosi if it is 25 or newer, else the build tool root (made by `cvmlint build --setup`)."""
    host = shutil.which("mkosi")
    if host:
        result = subprocess.run([host, "--version"], capture_output=True, text=True, check=False)
        version = _version(result.stdout)
        if result.returncode == 0 and version >= MINIMUM_VERSION:
            return Mkosi(".".join(map(str, version)))
    if BUILD_ROOT.exists(cache):
        root = BUILD_ROOT.path(cache)
        return Mkosi(_root_version(root), root)
    found = f"the host has mkosi {result.stdout.strip()}" if host else "the host has no mkosi"
    raise BuildError(
        f"no usable mkosi: {found} (25 or newer is needed) and the build tool root "
        f"{BUILD_ROOT.path(cache)} does not exist",
        hint="run `cvmlint build --setup` once, as root: it makes a Debian trixie root with mkosi 25 "
        "(debootstrap from this machine's apt mirror)",
    )


def setup(cache: Path | None = None, progress: Progress | None = None) -> Path:
    """Make the build tool root (needs root, debootstrap and the network to the apt mirror)."""
    return BUILD_ROOT.ensure(cache or default_cache(), progress=progress)


def _version(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)(?:\.(\d+))?", text)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else (0,)


def _root_version(root: Path) -> str:
    status = root / "var/lib/dpkg/status"
    text = status.read_text(errors="replace") if status.is_file() else ""
    return dpkg.installed_versions(text, ["mkosi"]).get("mkosi", "unknown")


def mkosi_args(
    directory: Path, cli: CommandLine, output_dir: Path, sandbox: Path | None, extra: Sequence[str] = ()
) -> list[str]:
    """mkosi's command line for a build of `directory`, as cvmlint was asked to read it."""
    args = ["-C", str(directory), f"--output-directory={output_dir}", "--force"]
    args += [f"--profile={p}" for p in cli.profiles]
    for flag, value in (
        ("--distribution", cli.distribution),
        ("--release", cli.release),
        ("--architecture", cli.architecture),
    ):
        if value:
            args.append(f"{flag}={value}")
    if sandbox is not None:
        args.append(f"--sandbox-tree={sandbox}")
    return [*args, *extra]


def summary(mkosi: Mkosi, args: Sequence[str], binds: Sequence[Path]) -> dict[str, object]:
    """`mkosi --json summary` of the main image."""
    argv, env = mkosi.argv([*args, "--json", "summary"], binds)
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise BuildError(
            f"mkosi summary failed ({result.returncode}):\n"
            + "\n".join(result.stderr.strip().splitlines()[-LAST_LINES:])
        )
    images: list[dict[str, object]] = json.loads(result.stdout)["Images"]
    main = [i for i in images if i.get("Image") in (None, "main")]
    return main[-1] if main else images[-1]


def build(mkosi: Mkosi, args: Sequence[str], binds: Sequence[Path], log: Path, progress: Progress) -> float:
    """Run `mkosi build`, every line to `log`, each step to `progress`; the seconds it took."""
    argv, env = mkosi.argv([*args, "build"], binds)
    start = time.monotonic()
    tail: deque[str] = deque(maxlen=LAST_LINES)
    with open(log, "w", encoding="utf-8") as out:
        out.write(f"# {' '.join(shlex.quote(a) for a in argv)}\n")
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, errors="replace"
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                tail.append(line.rstrip("\n"))
                if line.startswith("‣"):
                    progress(line[1:].strip())
            code = proc.wait()
    if code != 0:
        raise BuildError(
            f"mkosi build failed (exit {code}); its last lines:\n" + "\n".join(tail) + f"\nThe whole log: {log}"
        )
    return time.monotonic() - start


def debian_sources(release: str) -> list[tuple[str, str]]:
    """(URI, suite) of a Debian release on this machine's mirror: the release, its updates and, when apt
    has a security source, its security suite."""
    from cvmlint.apt import apt_sources, debian_mirror

    mirror = debian_mirror()
    security = next((s.uri for s in apt_sources() if any(x.endswith("-security") for x in s.suites)), None)
    out = [(mirror, release), (mirror, f"{release}-updates")]
    return out + ([(security, f"{release}-security")] if security else [])


def sandbox_tree(directory: Path, distribution: str | None, release: str | None, pinned: bool = False) -> Path | None:
    """apt sources for a Debian build, pointing at this machine's mirror; None for other distributions.
    `pinned`: no source at all, so apt sees only mkosi's local repository (the recipe's package directories
    and the rebuild's pinned packages)."""
    if distribution != "debian" or not release:
        return None
    by_uri: dict[str, list[str]] = {}
    for uri, suite in [] if pinned else debian_sources(release):
        by_uri.setdefault(uri, []).append(suite)
    stanzas = [
        f"Types: deb\nURIs: {uri}\nSuites: {' '.join(suites)}\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        for uri, suites in by_uri.items()
    ]
    target = directory / "etc/apt/sources.list.d"
    target.mkdir(parents=True, exist_ok=True)
    (target / "mkosi.sources").write_text("\n".join(stanzas))
    return directory
