"""`cvmlint policy diff`: each kind of weakening is caught at its line on the new side, on a small git
repository made here; a change that only tightens passes."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cvmlint.cli import main
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

POLICY = """policy "site" version "1"
use list "allow.txt" as allowed
let forbidden = ["openssh-server", "telnetd"]

rule SITE-001 "Only allowed packages" {
  severity high
  require all p in packages: p.name in allowed else "{p.name} is not allowed"
}

rule SITE-002 "No SSH server" {
  severity critical
  require none p in packages: p.name in forbidden else "{p.name} is forbidden"
}

rule SITE-003 "Read-only erofs root" {
  severity critical
  targets recipe, image
  require rootfs.format == "erofs"
}

profile dev "Development" {
  severity SITE-001 low
}
"""
ALLOW = "bash\nsystemd (>= 252), (<< 260)\nlibc6 (>= 2.36)\n"
WAIVERS = """[[waiver]]
rule = "SITE-001"
subject = "strace"
target = "recipes/base"
reason = "incident 4711"
approver = "alice@example.com"
expires = 2027-01-31
"""
TOML = """policy = "policy/site.cvmp"
waivers = "waivers.toml"

[[recipe]]
path = "recipes/base"
profiles = []

[[recipe]]
path = "recipes/other"
profiles = []

[mkosi-profile-implies]
dev = ["dev"]
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@x",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@x",
        },
    )
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose first commit (tagged `base`) holds a policy, an allowlist, waivers and cvmlint.toml."""
    files = {"policy/site.cvmp": POLICY, "policy/allow.txt": ALLOW, "waivers.toml": WAIVERS, "cvmlint.toml": TOML}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base")
    git(tmp_path, "tag", "base")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def edit(repo: Path, name: str, old: str, new: str) -> int:
    """Replace text in a file of the working tree; the line where the new text starts."""
    path = repo / name
    text = path.read_text()
    assert old in text, (name, old)
    text = text.replace(old, new, 1)
    path.write_text(text)
    return text[: text.index(new)].count("\n") + 1 if new else 0


def diff(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    with pytest.raises(SystemExit) as info:
        main(["policy", "diff", "base", *args, "-f", "json"])
    out = capsys.readouterr().out
    code = info.value.code
    return (code if isinstance(code, int) else 0), json.loads(out)


def findings(report: dict[str, Any]) -> dict[str, list[str]]:
    """Failing kind -> its findings as `message @ location`."""
    return {
        r["rule"]: [f"{f['message']} @ {f['location']}" for f in r["findings"]]
        for r in report["results"]
        if r["status"] == "fail"
    }


def test_no_change_passes(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = diff(capsys)
    assert code == 0 and findings(report) == {} and report["notes"] == []


CASES: list[tuple[str, Callable[[Path], int], str, str]] = [
    (
        "rule removed",
        lambda r: edit(
            r, "policy/site.cvmp", POLICY[POLICY.index("rule SITE-002") : POLICY.index("rule SITE-003")], ""
        ),
        "GATE-RULE-REMOVED",
        "rule SITE-002 (No SSH server, critical) is removed @ policy/site.cvmp",
    ),
    (
        "rule disabled by a profile",
        lambda r: (
            edit(
                r, "policy/site.cvmp", "  severity SITE-001 low\n", '  severity SITE-001 low\n  disable SITE-003 "x"\n'
            )
            + 1
        ),
        "GATE-RULE-DISABLED",
        "profile dev disables SITE-003: x @ policy/site.cvmp:{line}",
    ),
    (
        "rule made conditional on the target",
        lambda r: edit(r, "policy/site.cvmp", "  targets recipe, image\n", "  targets image\n"),
        "GATE-RULE-NARROWED",
        "rule SITE-003 no longer applies to recipes @ policy/site.cvmp:{line}",
    ),
    (
        "severity lowered",
        lambda r: edit(r, "policy/site.cvmp", "  severity critical\n  require none", "  severity low\n  require none"),
        "GATE-SEVERITY-LOWERED",
        "rule SITE-002: severity critical -> low @ policy/site.cvmp:{line}",
    ),
    (
        "severity lowered by a profile",
        lambda r: (
            edit(
                r,
                "policy/site.cvmp",
                "  severity SITE-001 low\n",
                "  severity SITE-001 low\n  severity SITE-002 medium\n",
            )
            + 1
        ),
        "GATE-SEVERITY-LOWERED",
        "profile dev sets SITE-002's severity critical -> medium @ policy/site.cvmp:{line}",
    ),
    (
        "rule body changed",
        lambda r: edit(r, "policy/site.cvmp", 'require rootfs.format == "erofs"', 'require rootfs.format != "ext4"'),
        "GATE-RULE-CHANGED",
        'rule SITE-003: its requirements on recipes and images changed (`rootfs.format == "erofs"` is gone, '
        '`rootfs.format != "ext4"` is new): whether it passes more is not decided statically; it needs review '
        "@ policy/site.cvmp:{line}",
    ),
    (
        "requirement made conditional on images",
        lambda r: edit(
            r, "policy/site.cvmp", "  require none p", "  on recipe: require true\n  on image: require none p"
        ),
        "GATE-RULE-CHANGED",
        "rule SITE-002: its requirements on recipes changed (`none p in packages: p.name in forbidden` is gone, "
        "`true` is new): whether it passes more is not decided statically; it needs review @ policy/site.cvmp:{line}",
    ),
    (
        "constant changed",
        lambda r: edit(
            r, "policy/site.cvmp", 'let forbidden = ["openssh-server", "telnetd"]', 'let forbidden = ["telnetd"]'
        ),
        "GATE-CONSTANT-CHANGED",
        'constant forbidden changed: `["openssh-server", "telnetd"]` -> `["telnetd"]` @ policy/site.cvmp:{line}',
    ),
    (
        "allowlist entry added",
        lambda r: edit(r, "policy/allow.txt", "bash\n", "bash\nopenssh-server\n") + 1,
        "GATE-ALLOWLIST-WIDENED",
        "allowlist allowed: package openssh-server is added @ policy/allow.txt:{line}",
    ),
    (
        "version range widened",
        lambda r: edit(r, "policy/allow.txt", "systemd (>= 252), (<< 260)", "systemd (>= 250), (<< 260)"),
        "GATE-ALLOWLIST-WIDENED",
        "allowlist allowed: systemd (>= 252), (<< 260) -> (>= 250), (<< 260) (widened) @ policy/allow.txt:{line}",
    ),
    (
        "waiver added",
        lambda r: edit(r, "waivers.toml", WAIVERS, WAIVERS + "\n" + WAIVERS.replace("strace", "gdb")) + 8,
        "GATE-WAIVER-ADDED",
        "waiver of SITE-001 (subject gdb and target recipes/base) added, until 2027-01-31, approved by "
        "alice@example.com: incident 4711 @ waivers.toml:{line}",
    ),
    (
        "waiver extended",
        lambda r: (edit(r, "waivers.toml", "expires = 2027-01-31", "expires = 2028-01-31"), 1)[1],
        "GATE-WAIVER-EXTENDED",
        "waiver of SITE-001 (subject strace and target recipes/base) now expires 2028-01-31 (was 2027-01-31) "
        "@ waivers.toml:{line}",
    ),
    (
        "waiver widened",
        lambda r: (edit(r, "waivers.toml", 'subject = "strace"\n', ""), 1)[1],
        "GATE-WAIVER-WIDENED",
        "waiver of SITE-001 widened to (target recipes/base) (was (subject strace and target recipes/base)), "
        "until 2027-01-31 @ waivers.toml:{line}",
    ),
    (
        "implied profile added",
        lambda r: edit(r, "cvmlint.toml", 'dev = ["dev"]', 'dev = ["dev"]\ndebug = ["dev"]') + 1,
        "GATE-PROFILE-IMPLIED",
        "mkosi profile debug now implies policy profile(s) dev @ cvmlint.toml:{line}",
    ),
    (
        "fail-on relaxed",
        lambda r: (
            edit(r, "cvmlint.toml", 'waivers = "waivers.toml"\n', 'waivers = "waivers.toml"\nfail-on = "critical"\n')
            + 1
        ),
        "GATE-CONFIG-RELAXED",
        "fail-on low -> critical @ cvmlint.toml:{line}",
    ),
    (
        "unknown relaxed",
        lambda r: (
            edit(r, "cvmlint.toml", 'waivers = "waivers.toml"\n', 'waivers = "waivers.toml"\nunknown = "warn"\n') + 1
        ),
        "GATE-CONFIG-RELAXED",
        "unknown fail -> warn @ cvmlint.toml:{line}",
    ),
    (
        "a recipe gains a policy profile",
        lambda r: (
            edit(r, "cvmlint.toml", 'path = "recipes/base"\nprofiles = []', 'path = "recipes/base"\nprofiles = ["dev"]')
            + 1
        ),
        "GATE-CONFIG-CHANGED",
        "recipe recipes/base: profiles [] -> [dev]; it needs review @ cvmlint.toml:{line}",
    ),
]


@pytest.mark.parametrize(("change", "kind", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_weakening_is_a_finding_at_its_line(
    repo: Path, capsys: pytest.CaptureFixture[str], change: Callable[[Path], int], kind: str, expected: str
) -> None:
    line = change(repo)
    code, report = diff(capsys)
    assert code == 1
    found = findings(report)
    assert list(found) == [kind], found
    assert found[kind] == [expected.format(line=line)]
    assert any("needs a reviewer" in n for n in report["notes"])


def test_a_removed_recipe_is_no_longer_judged(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(repo, "cvmlint.toml", '[[recipe]]\npath = "recipes/other"\nprofiles = []\n', "")
    code, report = diff(capsys)
    assert code == 1
    assert findings(report) == {
        "GATE-CONFIG-CHANGED": [
            "recipe recipes/other is no longer listed: `cvmlint lint` no longer judges it @ cvmlint.toml"
        ]
    }


def test_tightening_passes_and_is_reported_as_such(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(repo, "policy/site.cvmp", "  severity high\n", "  severity critical\n")
    edit(repo, "policy/site.cvmp", "  severity SITE-001 low\n", "")
    edit(repo, "policy/allow.txt", "libc6 (>= 2.36)", "libc6 (>= 2.38)")
    edit(repo, "policy/allow.txt", "bash\n", "")
    edit(repo, "waivers.toml", "expires = 2027-01-31", "expires = 2026-12-31")
    (repo / "policy/site.cvmp").write_text(
        (repo / "policy/site.cvmp").read_text()
        + '\nrule SITE-004 "No telnet" {\n  severity high\n  require none p in packages: p.name == "telnetd"\n}\n'
    )
    code, report = diff(capsys)
    assert code == 0 and findings(report) == {}
    notes = "\n".join(report["notes"])
    for expected in (
        "rule SITE-001: severity high -> critical",
        "rule SITE-004 is added",
        "allowlist allowed: libc6 (>= 2.36) -> (>= 2.38) (narrowed)",
        "allowlist allowed: bash is removed",
        "waiver of SITE-001 (subject strace and target recipes/base) now expires 2026-12-31 (was 2027-01-31)",
    ):
        assert f"tightens: {expected}" in notes, notes


def test_a_committed_head_is_compared_too(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(repo, "policy/allow.txt", "bash\n", "bash\ngcc\n")
    git(repo, "commit", "-qam", "widen")
    edit(repo, "policy/allow.txt", "gcc\n", "")  # the working tree is not what is compared
    code, report = diff(capsys, "HEAD")
    assert code == 1
    assert findings(report) == {
        "GATE-ALLOWLIST-WIDENED": ["allowlist allowed: package gcc is added @ policy/allow.txt:2"]
    }


def test_sarif_puts_each_finding_on_the_changed_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(repo, "policy/allow.txt", "bash\n", "bash\nopenssh-server\n")
    with pytest.raises(SystemExit) as info:
        main(["policy", "diff", "base", "-f", "sarif"])
    assert info.value.code == 1
    run = json.loads(capsys.readouterr().out)["runs"][0]
    [result] = run["results"]
    assert result["ruleId"] == "GATE-ALLOWLIST-WIDENED" and result["level"] == "error"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "policy/allow.txt" and location["region"]["startLine"] == 2
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} >= {"GATE-ALLOWLIST-WIDENED", "GATE-RULE-REMOVED"}


def test_a_missing_ref_or_no_repository_is_an_error_with_the_fix(
    repo: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["policy", "diff", "origin/nope"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "origin/nope: no such commit" in err and "Tip: fetch the base branch first" in err
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    with pytest.raises(SystemExit) as info:
        main(["policy", "diff", "base"])
    assert info.value.code == 2
    assert "is not inside a git repository" in capsys.readouterr().err


def test_the_shipped_gate_against_itself(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """This repository's own gate, from HEAD to the working tree: whatever the diff says, it says it
    without an error (the real policy with includes, profiles and four allowlists)."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as info:
        main(["policy", "diff", "HEAD", "HEAD", "-f", "json"])
    assert info.value.code == 0
    assert findings(json.loads(capsys.readouterr().out)) == {}
