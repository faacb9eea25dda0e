"""The security invariant of recipe linting: when lint says a critical rule passes, the real programs
agree. For every corpus recipe (ours with every mkosi profile, and tests/recipe/corpus/), with mkosi 25.3
and 27.1: a pass of CVM-VER-001/002 or CVM-FS-001 is checked against the layout systemd-repart writes, of
CVM-BOOT-001/002 against the kernel's own parse of the line mkosi writes (each way it can reach the
kernel), of CVM-PKG-004 against what apt installs for the names mkosi passes it (tests/recipe/truth.py).
A pass cvmlint cannot back with the real program's reading fails this test."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.recipe.differential import RESOURCES, Case, fresh_work, mkosi_summary, repart_layout
from tests.recipe.test_differential import VERSIONS, corpus_cases, our_cases
from tests.recipe.truth import apt_installs, image_tree, kernel_params, kernel_splitter, last_value, mkosi_lines
from tests.tools import tool_root

pytestmark = pytest.mark.slow
RULES = ("CVM-VER-001", "CVM-VER-002", "CVM-FS-001", "CVM-BOOT-001", "CVM-BOOT-002", "CVM-PKG-004")
SSH_SERVERS = {"openssh-server", "dropbear", "dropbear-bin", "tinysshd"}


@pytest.fixture(scope="module", params=sorted(VERSIONS))
def mkosi_root(request: pytest.FixtureRequest) -> tuple[str, Path]:
    return request.param, tool_root(VERSIONS[request.param])


@pytest.fixture(scope="module")
def splitter() -> Path:
    return kernel_splitter()


def lint_statuses(case: Case) -> tuple[dict[str, str], Any]:
    from cvmlint.pipeline import RecipeJob, lint_recipe
    from cvmlint.project import find_project

    project = find_project(Path.cwd(), case.directory)
    job = RecipeJob(case.directory, project.entry_for(case.directory), case.command_line, project=project)
    report, facts, _ = lint_recipe(job, [])
    return {r.rule_id: r.status.value for r in report.results}, facts


def truth(case: Case, root: Path, tmp: Path, splitter: Path) -> dict[str, str | None]:
    """Rule -> why the real programs say it fails (None: they agree it passes)."""
    try:
        summary = mkosi_summary(root, case)
    except AssertionError:  # this mkosi refuses the recipe: nothing is built, nothing passes into production
        return dict.fromkeys(RULES)
    layout_root: dict[str, Any] = {"content": "ext4", "verity": False, "read_only": False}  # mkosi's default
    if summary["Format"] == "disk" and summary["RepartDirectories"]:
        layout = repart_layout(root, summary["RepartDirectories"], fresh_work(tmp))
        if layout.error:
            return dict.fromkeys(RULES)  # no image is built: nothing passes into production
        roots = [p for p in layout.partitions if p["type"].startswith("root") and "-verity" not in p["type"]]
        layout_root = roots[0] if roots else {"content": "none", "verity": False, "read_only": False}
    out: dict[str, str | None] = {
        "CVM-VER-001": None if layout_root["verity"] else "systemd-repart writes no verity for the root",
        "CVM-FS-001": None
        if layout_root["content"] == "erofs"  # erofs cannot be written, whatever the GPT flag says
        else f"systemd-repart writes a {layout_root['content']} root",
    }
    lines = mkosi_lines(summary, image_tree(summary, tmp), bool(layout_root["verity"]))
    for rule, check in (("CVM-VER-002", _roothash), ("CVM-BOOT-001", _lockdown), ("CVM-BOOT-002", _sig_enforce)):
        if isinstance(lines, str):
            out[rule] = lines
            continue
        wrong = [f"{way}: {why}" for way, line in lines.items() if (why := check(kernel_params(splitter, line)))]
        out[rule] = "; ".join(wrong) or None
    removed = set(summary["RemovePackages"])
    names = [p for p in summary["Packages"] + summary["VolatilePackages"] if p not in removed]
    installed = apt_installs(tool_root(VERSIONS["25"]), names)
    if isinstance(installed, str):
        out["CVM-PKG-004"] = None  # apt refuses: the build fails, nothing reaches production
    else:
        servers = sorted(installed & SSH_SERVERS)
        out["CVM-PKG-004"] = f"apt installs {', '.join(servers)}" if servers else None
    return out


def _roothash(params: list[tuple[bytes, bytes | None]]) -> str | None:
    return None if last_value(params, "roothash") else "the kernel gets no roothash="


def _lockdown(params: list[tuple[bytes, bytes | None]]) -> str | None:
    value = last_value(params, "lockdown")
    return None if value in (b"integrity", b"confidentiality") else f"the kernel takes lockdown={value!r}"


def _sig_enforce(params: list[tuple[bytes, bytes | None]]) -> str | None:
    return None if last_value(params, "module.sig_enforce") in (b"1", b"y", b"Y") else "no module.sig_enforce=1"


@pytest.mark.parametrize("case", our_cases() + corpus_cases(), ids=lambda c: c.name)
def test_every_critical_pass_is_backed_by_the_real_programs(
    case: Case, mkosi_root: tuple[str, Path], splitter: Path, tmp_path: Path
) -> None:
    version, root = mkosi_root
    os.environ["CVMLINT_MKOSI_RESOURCES"] = str(root / RESOURCES)
    statuses, facts = lint_statuses(case)
    passing = [r for r in RULES if statuses.get(r) == "pass"]
    if not passing:
        return
    real = truth(case, root, tmp_path, splitter)
    false_passes = {r: real[r] for r in passing if real.get(r) and not _by_kernel_config(r, facts)}
    assert not false_passes, f"mkosi {version}: lint passes what the real programs fail: {false_passes}"


def _by_kernel_config(rule: str, facts: Any) -> bool:
    """CVM-BOOT-002 also passes on CONFIG_MODULE_SIG_FORCE=y in the kernel config cvmlint.toml names: the
    kernel then enforces signatures whatever its command line says."""
    from cvmlint.facts.provenance import Unknown

    config = getattr(facts.kernel, "config", None)
    if rule != "CVM-BOOT-002" or config is None or isinstance(config, Unknown):
        return False
    return any(o.name == "CONFIG_MODULE_SIG_FORCE" and o.value == "y" for o in config)
