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


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """What a workflow's checkout step gives: the repository's files, in a git repository."""
    for name in ("recipes", "patches", "policies", "examples"):
        shutil.copytree(ROOT / name, tmp_path / name, symlinks=True, ignore=shutil.ignore_patterns("mkosi.output"))
    shutil.copy(ROOT / "cvmlint.toml", tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


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
    argv = shlex.split(command.replace("$RUNNER_TEMP", "/tmp"))
    argv = argv[1:] if argv[0] == "sudo" else argv
    return [str(CVMLINT), *argv[1:]]


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


def test_the_github_lint_job_runs_here(checkout: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    commands = run_commands(EXAMPLES / "github/cvmlint.yml")
    lint = [c for job, c in commands if job == "lint"]
    assert lint == ["cvmlint lint -f sarif -o cvmlint.sarif -f github"]
    proc = subprocess.run(
        cvmlint_argv(lint[0]),
        cwd=checkout,
        capture_output=True,
        text=True,
        env={**os.environ, "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert proc.returncode == 0, proc.stderr
    validate_sarif(json.loads((checkout / "cvmlint.sarif").read_text()))
    assert "recipe `recipes/tdx-base`" in summary.read_text()


def test_the_gitlab_lint_job_runs_here(checkout: Path) -> None:
    lint = [c for job, c in run_commands(EXAMPLES / "gitlab/.gitlab-ci.yml") if job == "cvmlint-lint"]
    proc = subprocess.run(cvmlint_argv(lint[0]), cwd=checkout, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((checkout / "gl-code-quality-report.json").read_text()) == []
    suites = ET.parse(checkout / "cvmlint-junit.xml").getroot()
    assert len(suites) == 4 and all(s.get("failures") == "0" for s in suites)


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
    assert proc.returncode == 0 and "ok: policy example-site 1.0, 28 rules, 6 profiles" in proc.stdout
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
            "recipes/tdx-base",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    results = {r["rule"]: r for r in json.loads(proc.stdout)["results"]}
    assert results["SITE-001"]["status"] == "pass" and results["CVM-FS-002"]["severity"] == "high"


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
    git = ["git", "-C", str(checkout)]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "recipes"], check=True, env=env)

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
