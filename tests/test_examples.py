"""examples/ cannot rot: the workflows validate against GitHub's and GitLab's schemas and the commands
they run work on this repository; the site policy checks and passes its tests; the waivers load; the
pre-commit hooks run through pre-commit itself."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import yaml

from tests.conftest import ROOT
from tests.report.test_formats import validate_sarif

EXAMPLES = ROOT / "examples"
CVMLINT = Path(sys.executable).parent / "cvmlint"


GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """What a workflow's checkout step gives: the repository's files, committed, with the base branch
    fetched as origin/main (a pull request's checkout with fetch-depth 0)."""
    work = tmp_path / "checkout"
    for name in ("recipes", "patches", "policies", "examples"):
        shutil.copytree(ROOT / name, work / name, symlinks=True, ignore=shutil.ignore_patterns("mkosi.output"))
    shutil.copy(ROOT / "cvmlint.toml", work)
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-qm", "base")):
        subprocess.run(["git", *args], cwd=work, check=True, capture_output=True, env={**os.environ, **GIT_ENV})
    subprocess.run(["git", "update-ref", "refs/remotes/origin/main", "HEAD"], cwd=work, check=True)
    return work


RECIPES = ["tdx-base", "tdx-gpu", "sev-snp-base", "sev-snp-gpu"]


def run_commands(workflow: Path) -> list[tuple[str, str]]:
    """(job, command) of every cvmlint command the workflow's steps run."""
    doc = yaml.safe_load(workflow.read_text())
    out = []
    for name, job in doc.items() if "jobs" not in doc else doc["jobs"].items():
        if not isinstance(job, dict):
            continue
        lines = [step["run"] for step in job.get("steps", []) if "run" in step] + job.get("script", [])
        out += [(name, line) for line in lines if "cvmlint " in line and "pip install" not in line]
    return out


def cvmlint_argv(command: str) -> list[str]:
    """The command as the runner runs it: $RUNNER_TEMP, and the base branch of a pull request (main)."""
    for variable, value in (
        ("$RUNNER_TEMP", "/tmp"),
        ("$GITHUB_BASE_REF", "main"),
        ("$CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
    ):
        command = command.replace(variable, value)
    argv = shlex.split(command)
    argv = argv[1:] if argv[0] == "sudo" else argv
    return [str(CVMLINT), *argv[1:]]


def run_job(
    commands: list[str], cwd: Path, env: dict[str, str] | None = None
) -> list[subprocess.CompletedProcess[str]]:
    return [
        subprocess.run(cvmlint_argv(c), cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
        for c in commands
    ]


@pytest.mark.parametrize(
    ("workflow", "schema"),
    [("github/cvmlint.yml", "vendor.github-workflows"), ("gitlab/.gitlab-ci.yml", "vendor.gitlab-ci")],
)
def test_the_workflows_validate(workflow: str, schema: str) -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema", schema, str(EXAMPLES / workflow)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


GITHUB_PR = [
    'cvmlint lint --trusted-ref "origin/$GITHUB_BASE_REF" -f sarif -o cvmlint.sarif -f github',
    'cvmlint policy diff "origin/$GITHUB_BASE_REF" -f sarif -o policy-diff.sarif -f github',
]


def test_the_github_lint_job_runs_here(checkout: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    lint = [c for job, c in run_commands(EXAMPLES / "github/cvmlint.yml") if job == "lint"]
    assert lint == [GITHUB_PR[0], "cvmlint lint -f sarif -o cvmlint.sarif -f github", GITHUB_PR[1]]
    for proc in run_job(lint, checkout, {"GITHUB_STEP_SUMMARY": str(summary)}):
        assert proc.returncode == 0, proc.stderr
        assert "::notice title=cvmlint PASS::" in proc.stdout
    validate_sarif(json.loads((checkout / "cvmlint.sarif").read_text()))
    validate_sarif(json.loads((checkout / "policy-diff.sarif").read_text()))
    assert "recipe `recipes/tdx-base`" in summary.read_text()


def test_a_pull_request_that_weakens_the_gate_fails_both_steps(checkout: Path) -> None:
    """The pull request adds an SSH server to a recipe and, to let it through, applies the dev policy
    profile to the recipe in cvmlint.toml: the lint against main fails on the package, and the gate's
    diff fails on the profile, at its line."""
    conf = checkout / "recipes/tdx-base/mkosi.conf"
    conf.write_text(conf.read_text() + "\n[Content]\nPackages=openssh-server\n")
    toml = checkout / "cvmlint.toml"
    toml.write_text(toml.read_text().replace('profiles = ["tdx-base"]', 'profiles = ["tdx-base", "dev"]', 1))
    lint, diff = run_job(GITHUB_PR, checkout)
    assert lint.returncode == 1, lint.stderr
    assert "::error file=recipes/tdx-base/mkosi.conf,line=" in lint.stdout and "CVM-PKG-004" in lint.stdout
    assert diff.returncode == 1, diff.stderr
    assert (
        "::error file=cvmlint.toml,line=6,title=GATE-CONFIG-CHANGED (medium)::recipe recipes/tdx-base: profiles"
        in diff.stdout
    )
    sarif = json.loads((checkout / "policy-diff.sarif").read_text())
    validate_sarif(sarif)
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["GATE-CONFIG-CHANGED"]


def test_the_gitlab_lint_job_runs_here(checkout: Path) -> None:
    lint = [c for job, c in run_commands(EXAMPLES / "gitlab/.gitlab-ci.yml") if job == "cvmlint-lint"]
    assert len(lint) == 2 and "--trusted-ref" in lint[0] and lint[1].startswith("cvmlint policy diff")
    for proc in run_job(lint, checkout):
        assert proc.returncode == 0, proc.stderr
    assert json.loads((checkout / "gl-code-quality-report.json").read_text()) == []
    assert json.loads((checkout / "gl-policy-diff.json").read_text()) == []
    suites = ET.parse(checkout / "cvmlint-junit.xml").getroot()
    assert len(suites) == 4 and all(s.get("failures") == "0" for s in suites)


def test_codeowners_covers_the_gate() -> None:
    owned = [line.split()[0] for line in (EXAMPLES / "CODEOWNERS").read_text().splitlines() if line.startswith("/")]
    assert {"/policies/", "/cvmlint.toml", "/waivers.toml", "/.github/workflows/"} <= set(owned)


def test_the_build_jobs_commands_are_valid(checkout: Path) -> None:
    """The build jobs need root and a long build (tests/build builds for real): here their command lines
    are parsed by cvmlint itself (an unknown option or command fails before --help answers)."""
    commands = [
        c
        for w in ("github/cvmlint.yml", "gitlab/.gitlab-ci.yml")
        for job, c in run_commands(EXAMPLES / w)
        if "build" in job
    ]
    assert len(commands) == 4
    for command in commands:
        proc = subprocess.run(
            [*cvmlint_argv(command.split(" && ")[-1]), "--help"], cwd=checkout, capture_output=True, text=True
        )
        assert proc.returncode == 0, (command, proc.stderr)


def test_the_site_policy_checks_and_passes_its_tests() -> None:
    proc = subprocess.run(
        [str(CVMLINT), "policy", "check", str(EXAMPLES / "policies/site.cvmp")], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "ok: policy example-site 1.0, 29 rules, 6 profiles" in proc.stdout
    proc = subprocess.run(
        [str(CVMLINT), "policy", "test", str(EXAMPLES / "policies/tests")], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "3 of 3 cases passed" in proc.stdout, proc.stdout
    proc = subprocess.run(
        [
            str(CVMLINT),
            "lint",
            "--policy",
            "examples/policies/site.cvmp",
            "--profile",
            "site-prod",
            "--waivers",
            "examples/waivers.toml",
            "-f",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr  # the documented command, on every shipped recipe
    reports = json.loads(proc.stdout)
    assert [r["target"]["name"] for r in reports] == [f"recipes/{n}" for n in RECIPES]
    for report in reports:
        results = {r["rule"]: r for r in report["results"]}
        assert results["SITE-001"]["status"] == "pass" and results["CVM-FS-002"]["severity"] == "high"
        assert report["policy"]["profiles"][-1] == "site-prod"


def hooks_repository(where: Path, env: dict[str, str]) -> Path:
    """The hooks' repository as pre-commit clones it: what the package needs, committed (the checkout under
    test need not be a git repository)."""
    for name in ("cvmlint", "grammar", "policies"):
        shutil.copytree(ROOT / name, where / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy(ROOT / name, where)
    subprocess.run(["git", "init", "-q"], cwd=where, check=True)
    subprocess.run(["git", "add", "-A"], cwd=where, check=True)
    subprocess.run(["git", "commit", "-qm", "hooks"], cwd=where, check=True, env=env)
    return where


@pytest.mark.slow
def test_the_pre_commit_hook_stops_ssh_in_production(checkout: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    git = ["git", "-C", str(checkout)]  # the checkout is committed already

    hooks = hooks_repository(tmp_path / "hooks", env)

    def hook() -> subprocess.CompletedProcess[str]:
        subprocess.run([*git, "add", "-A"], check=True)
        return subprocess.run(
            [str(Path(sys.executable).parent / "pre-commit"), "try-repo", str(hooks), "cvmlint-lint"],
            cwd=checkout,
            capture_output=True,
            text=True,
            env=env,
        )

    dev = checkout / "recipes/common/mkosi.profiles/dev.conf"
    dev.write_text(dev.read_text() + "        tcpdump\n")
    proc = hook()
    assert proc.returncode == 0, proc.stdout + proc.stderr  # the dev profile is not production
    subprocess.run([*git, "commit", "-qm", "dev tools"], check=True, env=env)
    base = checkout / "recipes/tdx-base/mkosi.conf"
    base.write_text(base.read_text() + "\n[Content]\nPackages=openssh-server\n")
    proc = hook()
    assert proc.returncode == 1, proc.stdout
    assert "CVM-PKG-004" in proc.stdout and "openssh-server" in proc.stdout
