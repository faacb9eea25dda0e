"""The pull-request gate: nothing inside a pull request bends its own verdict. A recipe that selects a
development profile is judged as production (and fails at the line that selects it); cvmlint.toml comes
from the recipe's repository, never from the recipe; with --trusted-ref the policy, the waivers and
cvmlint.toml are the base branch's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}


def lint(*args: str, cwd: Path = ROOT) -> tuple[int, Any, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "cvmlint", "lint", "--format", "json", *args], cwd=cwd, capture_output=True, text=True
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None, proc.stderr


def failing(report: dict[str, Any]) -> dict[str, list[str]]:
    return {
        r["rule"]: [f"{f['message']} @ {f['location']}" for f in r["findings"]]
        for r in report["results"]
        if r["status"] == "fail"
    }


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A git repository holding this one's recipes, policies, patches and cvmlint.toml (committed)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    for rel in ("recipes/common", "recipes/tdx-base", "policies", "patches"):
        shutil.copytree(ROOT / rel, tmp_path / rel, symlinks=True, ignore=shutil.ignore_patterns("upstream", "*.sh"))
    shutil.copy(ROOT / "cvmlint.toml", tmp_path / "cvmlint.toml")
    text = (tmp_path / "cvmlint.toml").read_text()
    start = text.index('[[recipe]]\npath = "recipes/tdx-gpu"')
    (tmp_path / "cvmlint.toml").write_text(text[:start] + text[text.index("# Selecting the mkosi profile") :])
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-qm", "base")):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True, env=GIT_ENV)
    return tmp_path


def append(path: Path, text: str) -> int:
    """Append text; the number of the first line appended."""
    old = path.read_text()
    path.write_text(old + text)
    return old.count("\n") + 1


def test_a_recipe_selecting_the_dev_profile_itself_is_judged_as_production(clone: Path) -> None:
    """The exploit: `Profiles=dev` and an SSH server appended to the production recipe."""
    first = append(
        clone / "recipes/tdx-base/mkosi.conf", "\n[Config]\nProfiles=dev\n\n[Content]\nPackages=openssh-server\n"
    )
    code, report, _ = lint("recipes/tdx-base", cwd=clone)
    assert code == 1
    assert report["policy"]["profiles"] == ["tdx-base"]  # dev is not applied
    found = failing(report)
    assert found["CVM-BUILD-004"] == [
        "the recipe selects mkosi profile dev itself, which cvmlint.toml maps to policy profile(s) dev: a recipe "
        "does not choose its own judge, and every mkosi build of it would be a development image "
        f"@ recipes/tdx-base/mkosi.conf:{first + 2}"
    ]
    assert found["CVM-PKG-004"] == [
        f"SSH server package openssh-server is installed @ recipes/tdx-base/mkosi.conf:{first + 5}"
    ]


def test_the_operator_still_chooses_the_dev_image(clone: Path) -> None:
    code, report, err = lint("--mkosi-profile", "dev", "recipes/tdx-base", cwd=clone)
    assert code == 0, err
    assert report["policy"]["profiles"] == ["tdx-base", "dev"]
    assert report["policy"]["profile_sources"] == {"tdx-base": "cvmlint.toml", "dev": "--mkosi-profile dev"}
    assert report["config"] == "cvmlint.toml"


def test_text_header_names_each_profile_and_why(clone: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cvmlint", "lint", "--mkosi-profile", "dev", "--profile", "tdx-gpu", "recipes/tdx-base"],
        cwd=clone,
        capture_output=True,
        text=True,
    )
    assert proc.stdout.startswith(
        "recipe recipes/tdx-base: PASS  (policy cvm-baseline 1.0, profiles: tdx-base (cvmlint.toml), "
        "dev (--mkosi-profile dev), tdx-gpu (--profile); config cvmlint.toml)"
    ), proc.stdout


def test_the_configuration_is_the_recipes_repositorys_from_anywhere(clone: Path, tmp_path_factory: Any) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    at_home = lint("recipes/tdx-base", cwd=clone)
    away = lint(str(clone / "recipes/tdx-base"), cwd=elsewhere)
    assert at_home[0] == away[0] == 0
    assert [r["status"] for r in at_home[1]["results"]] == [r["status"] for r in away[1]["results"]]
    assert (elsewhere / away[1]["config"]).resolve() == clone / "cvmlint.toml"


def test_a_cvmlint_toml_inside_the_recipe_is_ignored_with_a_warning(clone: Path) -> None:
    (clone / "recipes/tdx-base/cvmlint.toml").write_text(
        '[[recipe]]\npath = "."\nprofiles = ["dev"]\n\n[mkosi-profile-implies]\n'
    )
    code, report, err = lint("recipes/tdx-base", cwd=clone)
    assert code == 0 and report["policy"]["profiles"] == ["tdx-base"]
    assert "recipes/tdx-base/cvmlint.toml: warning: ignored: a cvmlint.toml inside the recipe being judged" in err


def test_no_configuration_is_said_plainly(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    shutil.copytree(ROOT / "recipes/common", tmp_path / "common", symlinks=True)
    shutil.copytree(ROOT / "recipes/tdx-base", tmp_path / "tdx-base", symlinks=True)
    _, report, _ = lint("tdx-base", cwd=tmp_path)
    assert report["config"] == "none (no cvmlint.toml above the recipe)"
    assert report["policy"]["profiles"] == []


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=GIT_ENV)


def test_trusted_ref_judges_with_the_base_branchs_gate(clone: Path) -> None:
    """The pull request weakens cvmlint.toml (dev for the recipe), the policy (PKG-004 removed) and adds a
    waiver; with --trusted-ref main none of it counts, while its recipe change does."""
    append(clone / "recipes/tdx-base/mkosi.conf", "\n[Content]\nPackages=openssh-server\n")
    toml = clone / "cvmlint.toml"
    toml.write_text(toml.read_text().replace('profiles = ["tdx-base"]', 'profiles = ["tdx-base", "dev"]'))
    policy = clone / "policies/cvm-baseline.cvmp"
    policy.write_text(
        policy.read_text().replace("  disable CVM-PKG-004", '  disable CVM-PKG-001 "x"\n  disable CVM-PKG-004')
    )
    (clone / "waivers.toml").write_text(
        '[[waiver]]\nrule = "CVM-PKG-004"\nreason = "r"\napprover = "a@b"\nexpires = 2099-01-01\n'
    )
    git(clone, "checkout", "-q", "-b", "pr")
    git(clone, "commit", "-qam", "pr")
    code, report, _ = lint("recipes/tdx-base", cwd=clone)  # the pull request judges itself: it passes
    assert code == 0
    code, report, err = lint("--trusted-ref", "main", "--waivers", "waivers.toml", "recipes/tdx-base", cwd=clone)
    assert code == 2 and "waivers.toml: no such waivers file at main" in err  # a waivers file the base lacks
    code, report, err = lint("--trusted-ref", "main", "recipes/tdx-base", cwd=clone)
    assert code == 1, err
    assert report["policy"]["profiles"] == ["tdx-base"]
    assert report["config"].startswith("cvmlint.toml at main (")
    assert set(failing(report)) == {"CVM-PKG-001", "CVM-PKG-004"}


def test_trusted_ref_lints_a_recipe_only_change_as_before(clone: Path) -> None:
    conf = clone / "recipes/tdx-base/mkosi.conf"
    conf.write_text(conf.read_text().replace("ImageId=", "# a comment\nImageId=", 1))
    plain = lint("recipes/tdx-base", cwd=clone)
    trusted = lint("--trusted-ref", "HEAD", "recipes/tdx-base", cwd=clone)
    assert plain[0] == trusted[0] == 0
    assert [r["status"] for r in plain[1]["results"]] == [r["status"] for r in trusted[1]["results"]]
    assert lint("--trusted-ref", "HEAD", cwd=clone)[0] == 0  # the recipes the base's cvmlint.toml lists


def test_trusted_ref_errors_name_the_fix(clone: Path, tmp_path_factory: Any) -> None:
    code, _, err = lint("--trusted-ref", "origin/main", "recipes/tdx-base", cwd=clone)
    assert code == 2 and "origin/main: no such commit" in err and "Tip: fetch the base branch first" in err
    bare = tmp_path_factory.mktemp("bare")
    shutil.copytree(clone / "recipes", bare / "recipes", symlinks=True)
    code, _, err = lint("--trusted-ref", "main", "recipes/tdx-base", cwd=bare)
    assert code == 2 and "is not inside a git repository" in err


def test_a_build_with_the_dev_mkosi_profile_is_judged_with_tdx_base_and_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cvmlint build --mkosi-profile dev recipes/tdx-base` lints (its gate) exactly as `lint` does."""
    from cvmlint.build import BuildPlan, lint_recipe
    from cvmlint.pipeline import command_line
    from cvmlint.project import find_project

    monkeypatch.chdir(ROOT)
    project = find_project(ROOT, ROOT / "recipes/tdx-base")
    entry = project.entry_for(ROOT / "recipes/tdx-base")
    plan = BuildPlan(Path("recipes/tdx-base"), entry, command_line(entry, ["dev"], "debian"))
    report, _, _ = lint_recipe(plan, project, [])
    assert report.profiles == ("tdx-base", "dev")
    assert report.profile_sources == {"tdx-base": "cvmlint.toml", "dev": "--mkosi-profile dev"}
    assert report.exit_code() == 0
