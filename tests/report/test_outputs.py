"""How reports reach their readers: each --output bound to the --format before it, a GitHub notice when
all passes, one HTML page for several targets, each SARIF run with the rules it was judged by, the table
as wide as $COLUMNS without splitting a path, help summaries whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_cli

cli = run_cli


@pytest.fixture
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_each_output_takes_the_format_before_it(
    at_root: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sarif, as_json = tmp_path / "x.sarif", tmp_path / "y.json"
    code, out, _ = cli(
        capsys, "lint", "recipes/tdx-base", "-f", "sarif", "-o", str(sarif), "-f", "json", "-o", str(as_json)
    )
    assert code == 0 and out == ""
    assert json.loads(sarif.read_text())["version"] == "2.1.0"
    assert json.loads(as_json.read_text())["schema"] == "cvmlint.results/1"
    # -f sarif -f json -o y.json: the file is the JSON, the SARIF goes to standard output
    code, out, _ = cli(capsys, "lint", "recipes/tdx-base", "-f", "sarif", "-f", "json", "-o", str(as_json))
    assert json.loads(out)["version"] == "2.1.0" and json.loads(as_json.read_text())["schema"] == "cvmlint.results/1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-o", "a.txt", "-f", "json"],
            "--output a.txt comes before any --format: put each --output after the --format",
        ),
        (["-f", "json", "-o", "a.json", "-o", "b.json"], "--output b.json: -f json already writes to a.json"),
        (["-o", "a.txt", "-o", "b.txt"], "--output b.txt: the default format already writes to a.txt"),
    ],
)
def test_an_ambiguous_output_is_refused_with_the_right_form(
    at_root: None, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = cli(capsys, "lint", "recipes/tdx-base", *args)
    assert code == 2 and message in err
    assert "-f sarif -o cvmlint.sarif" in err or "(-f json -o a.txt)" in err


def test_github_says_so_when_everything_passes(
    at_root: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, _ = cli(capsys, "lint", "recipes/tdx-base", "recipes/tdx-gpu", "-f", "github")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 and all(line.startswith("::notice title=cvmlint PASS::recipe recipes/") for line in lines)
    assert "22 pass, 6 skipped; exit 0" in lines[0]
    assert "* recipe `recipes/tdx-base`: 22 pass, 6 skipped; exit 0" in summary.read_text()


def test_one_html_page_for_several_recipes(at_root: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "report.html"
    code, _, _ = cli(capsys, "lint", "-f", "html", "-o", str(page))
    html = page.read_text()
    assert code == 0 and html.count("<!DOCTYPE html>") == 1 and html.count("</html>") == 1
    assert "cvmlint report: 4 targets" in html
    for name in ("tdx-base", "tdx-gpu", "sev-snp-base", "sev-snp-gpu"):
        assert f"<h1 id='recipes/{name}'>recipe <code>recipes/{name}</code></h1>" in html


def test_each_sarif_run_carries_the_rules_it_was_judged_by(at_root: None, capsys: pytest.CaptureFixture[str]) -> None:
    """Two recipes linted at once, one with the dev profile (which lowers CVM-PKG-003 to low): each run's
    descriptor has its own severity, not the last recipe's."""
    code, out, _ = cli(capsys, "lint", "recipes/tdx-base", "recipes/tdx-gpu", "--mkosi-profile", "dev", "-f", "sarif")
    assert code == 0
    runs = json.loads(out)["runs"]
    code, out, _ = cli(capsys, "lint", "recipes/tdx-base", "-f", "sarif")
    runs.append(json.loads(out)["runs"][0])

    def pkg003(run: Any) -> Any:
        return next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "CVM-PKG-003")

    assert [pkg003(r)["properties"]["security-severity"] for r in runs] == ["3.0", "3.0", "8.0"]
    assert runs[0]["properties"]["policy"]["profile_sources"] == {
        "tdx-base": "cvmlint.toml",
        "dev": "--mkosi-profile dev",
    }


def table(columns: str | None, *args: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns:
        env["COLUMNS"] = columns
    proc = subprocess.run(
        [sys.executable, "-m", "cvmlint", "lint", "-f", "table", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    return proc.stdout.splitlines()


def test_the_table_is_as_wide_as_columns_says_and_never_splits_a_path(tmp_path: Path) -> None:
    assert max(len(line) for line in table(None, "examples/weak-recipe")) == 160  # piped, no $COLUMNS
    assert max(len(line) for line in table("200", "examples/weak-recipe")) == 200
    narrow = table("90", "examples/weak-recipe")
    assert max(len(line) for line in narrow[:-1]) <= 90
    cells = [line.split("│")[-2].strip() for line in narrow if line.startswith("│")]
    broken = [c for c in cells if c and not c.endswith("/")]  # a line of a path ends after a `/`, or ends it
    assert set(broken) <= {
        "mkosi.conf:9",
        "mkosi.conf:16",
        "mkosi.conf:17",
        "mkosi.conf:18",
        "mkosi.conf:19",
        "mkosi.conf:20",
        "10-root.conf:3",
        "10-root.conf:4",
        "examples/weak-recipe",
        "mkosi.conf: mkosi's",
        "default",
    }, broken
    assert "10-root.conf:4" in broken and "mkosi.conf:17" in broken


def test_a_passing_rule_shows_its_title_not_an_expression() -> None:
    rows = [line for line in table("200", "--verbose", "recipes/tdx-base") if "CVM-VER-002" in line]
    assert rows and "The kernel command line carries the verity root hash" in rows[0]
    assert "passes via" not in "\n".join(table("200", "recipes/tdx-base"))


def test_help_summaries_are_whole_sentences(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "evidence", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "exit 0 when the results are exactly the bundled ones, 1 naming each rule that differs." in text


def test_policy_explain_finds_a_rule_whatever_its_case(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "policy", "explain", "cvm-pkg-004")
    assert code == 0 and out.startswith("CVM-PKG-004: No SSH server in production images")
    code, _, err = cli(capsys, "policy", "explain", "cvm-pkg-04")
    assert code == 2 and "Tip: did you mean CVM-PKG-004?" in err


def test_a_huge_integer_literal_is_a_policy_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "big.cvmp"
    policy.write_text('policy "t" version "1"\nlet x = ' + "9" * 5000 + "\n")
    code, _, err = cli(capsys, "policy", "check", str(policy))
    assert code == 2 and "internal error" not in err
    assert "big.cvmp:2:9: error: integer literal too large (5000 characters" in err
    assert max(len(line) for line in err.splitlines()) < 200  # the line is shown as a window, not whole
