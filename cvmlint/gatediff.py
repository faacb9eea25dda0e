"""`cvmlint policy diff BASE [HEAD]`: what a change does to the gate.

The gate is the policy (with its includes, profiles and allowlists), the waivers and cvmlint.toml, as
each side of the change has them. Every change that can weaken it is a finding at its file and line on
the new side: a rule removed, disabled by a profile or applying to fewer targets; a severity lowered; a
rule's requirements changed (its effect is not decided statically: it needs a reviewer); a constant or
a profile's override changed; an allowlist entry added or a version range widened; a waiver added,
extended or widened; an mkosi profile implying more policy profiles; `fail-on` or `unknown` relaxed, or
what cvmlint.toml judges changed. A change that only tightens is a note and does not fail.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvmlint.facts.model import Target
from cvmlint.facts.provenance import Provenance
from cvmlint.policy import ast
from cvmlint.policy.allowlist import Allowlist, version_compare
from cvmlint.policy.results import Finding, Report, RuleInfo, RuleResult, Status
from cvmlint.project import NAME, Project, load_project
from cvmlint.severity import SEVERITY_RANK

REVIEW = (
    "A deliberate change to the gate needs a reviewer who owns it (CODEOWNERS for policies/, cvmlint.toml and "
    "the waivers): approve the pull request, and the next base branch judges with it."
)


def _kind(rule_id: str, title: str, severity: str, why: str) -> RuleInfo:
    return RuleInfo(rule_id, title, severity, why, REVIEW)


KINDS = {
    k.id: k
    for k in (
        _kind("GATE-RULE-REMOVED", "A rule is removed", "critical", "What the rule checked is no longer checked."),
        _kind(
            "GATE-RULE-DISABLED",
            "A profile disables a rule",
            "critical",
            "Every target judged with the profile skips the rule.",
        ),
        _kind(
            "GATE-RULE-NARROWED",
            "A rule applies to fewer targets",
            "critical",
            "The rule no longer judges recipes, or images: the gate is open there.",
        ),
        _kind(
            "GATE-SEVERITY-LOWERED",
            "A rule's severity is lowered",
            "high",
            "A lower severity can fall below --fail-on: the failure then no longer fails the gate.",
        ),
        _kind(
            "GATE-RULE-CHANGED",
            "A rule's requirements changed",
            "medium",
            "Whether a changed requirement passes more targets than before is not decided statically.",
        ),
        _kind(
            "GATE-CONSTANT-CHANGED",
            "A constant or a profile's override changed",
            "medium",
            "Rules read constants (allowed packages, forbidden programs, required parameters): a changed one can "
            "let through what was refused.",
        ),
        _kind(
            "GATE-ALLOWLIST-WIDENED",
            "An allowlist admits more",
            "high",
            "A package added to an allowlist, or a version range widened, passes images that failed before.",
        ),
        _kind(
            "GATE-WAIVER-ADDED",
            "A waiver is added",
            "high",
            "A waiver turns a failing rule into a pass until it expires.",
        ),
        _kind(
            "GATE-WAIVER-EXTENDED",
            "A waiver is extended in time",
            "high",
            "An exception that was to end keeps applying.",
        ),
        _kind(
            "GATE-WAIVER-WIDENED",
            "A waiver covers more",
            "high",
            "A waiver without a subject or target covers every finding of its rule, on every target.",
        ),
        _kind(
            "GATE-PROFILE-IMPLIED",
            "An mkosi profile implies more policy profiles",
            "high",
            "A policy profile can disable rules and widen allowlists for every recipe that selects the mkosi profile.",
        ),
        _kind(
            "GATE-CONFIG-RELAXED",
            "cvmlint.toml relaxes fail-on or unknown",
            "high",
            "A higher fail-on lets lower-severity failures pass; unknown = warn lets what cannot be established pass.",
        ),
        _kind(
            "GATE-CONFIG-CHANGED",
            "cvmlint.toml changes what is judged, or how",
            "medium",
            "A recipe no longer listed is no longer linted; other profiles, mkosi profiles, patches or kernel "
            "configs change its verdict in ways not decided statically.",
        ),
    )
}


@dataclass(frozen=True)
class Change:
    """One change to the gate: a weakening (a finding) or, with `weakens` False, a tightening (a note)."""

    kind: str
    message: str
    file: str = ""
    """The file on the new side, relative to the repository's top."""
    line: int | None = None
    weakens: bool = True
    subject: str = ""


@dataclass
class Side:
    """One side of the change: a tree (a ref written out, or the working tree) and the gate it holds."""

    root: Path
    label: str
    project: Project | None = None
    toml_text: str = ""
    policy_file: Path | None = None
    """The policy, in this tree (None: the shipped one)."""
    waivers_file: Path | None = None
    waiver_lines: list[int] = field(default_factory=list)

    def rel(self, shown: str | Path) -> str:
        """A path the loader showed (relative to the working directory, or absolute) as repository-relative."""
        path = Path(shown)
        real = (path if path.is_absolute() else Path.cwd() / path).resolve()
        try:
            return real.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(shown)


def load_side(root: Path, label: str, policy: str | None, waivers: str | None) -> Side:
    """The gate as the tree at `root` has it; `policy` and `waivers` (repository-relative) beat cvmlint.toml's."""
    side = Side(root, label)
    toml = root / NAME
    if toml.is_file():
        side.toml_text = toml.read_text(encoding="utf-8", errors="replace")
        side.project = load_project(toml)
    if policy is not None:
        side.policy_file = root / policy
    elif side.project is not None and side.project.policy is not None:
        side.policy_file = side.project.policy
    if waivers is not None:
        side.waivers_file = root / waivers
    elif side.project is not None and side.project.waivers is not None:
        side.waivers_file = side.project.waivers
    if side.waivers_file is not None and side.waivers_file.is_file():
        text = side.waivers_file.read_text(encoding="utf-8", errors="replace")
        side.waiver_lines = [n for n, line in enumerate(text.splitlines(), 1) if line.strip() == "[[waiver]]"]
    return side


def diff_gate(base: Side, head: Side) -> list[Change]:
    """Every change from `base` to `head` that weakens or tightens the gate."""
    changes = [*_policy_changes(base, head), *_waiver_changes(base, head), *_config_changes(base, head)]
    return changes


# ---- the policy ----------------------------------------------------------------------------


@dataclass
class _Loaded:
    side: Side
    rules: dict[str, ast.Rule]
    lets: dict[str, ast.Let]
    profiles: dict[str, ast.Profile]
    uses: dict[str, Allowlist]
    main: str
    """The main policy file, repository-relative (or the shipped one's name)."""


def _load(side: Side) -> _Loaded:
    from cvmlint._resources import default_policy_path
    from cvmlint.policy import load_policy
    from cvmlint.policy.loader import parsed_files

    path = side.policy_file or default_policy_path()
    policy = load_policy(path)
    files = [pf for _, pf in parsed_files(path)]
    main = side.rel(path) if side.policy_file else f"(shipped) {path.name}"
    return _Loaded(
        side,
        {r.id: r for pf in files for r in pf.rules},
        {x.name: x for pf in files for x in pf.lets},
        {p.name: p for pf in files for p in pf.profiles},
        dict(policy.uses),
        main,
    )


def _policy_changes(base_side: Side, head_side: Side) -> Iterator[Change]:
    base, head = _load(base_side), _load(head_side)
    rel = head_side.rel
    for rule_id, old in base.rules.items():
        new = head.rules.get(rule_id)
        if new is None:
            yield Change(
                "GATE-RULE-REMOVED",
                f"rule {rule_id} ({old.title}, {old.severity}) is removed",
                head.main,
                None,
                True,
                rule_id,
            )
            continue
        yield from _rule_changes(old, new, rel)
    for rule_id, new in head.rules.items():
        if rule_id not in base.rules:
            yield Change("", f"rule {rule_id} is added", rel(new.pos.path), new.pos.line, False, rule_id)
    for name, let in head.lets.items():
        old_let = base.lets.get(name)
        if old_let is not None and _shape(old_let.expr) != _shape(let.expr):
            yield Change(
                "GATE-CONSTANT-CHANGED",
                f"constant {name} changed: `{ast.describe(old_let.expr)[:120]}` -> `{ast.describe(let.expr)[:120]}`",
                rel(let.pos.path),
                let.pos.line,
                True,
                name,
            )
    for name in base.lets.keys() - head.lets.keys():
        yield Change("GATE-CONSTANT-CHANGED", f"constant {name} is removed", head.main, None, True, name)
    for name, profile in head.profiles.items():
        yield from _profile_changes(base, head, base.profiles.get(name), profile)
    for name, allowlist in head.uses.items():
        yield from _allowlist_changes(base.uses.get(name), allowlist, name, rel)
    for name, profile in head.profiles.items():
        if profile.uses:
            yield from _profile_allowlists(base_side, head_side, base.profiles.get(name), profile)


def _rule_changes(old: ast.Rule, new: ast.Rule, rel: Any) -> Iterator[Change]:
    at = new.severity_pos or new.pos
    change = SEVERITY_RANK.get(new.severity, 4) - SEVERITY_RANK.get(old.severity, 4)
    if change:
        yield Change(
            "GATE-SEVERITY-LOWERED" if change < 0 else "",
            f"rule {new.id}: severity {old.severity} -> {new.severity}",
            rel(at.path),
            at.line,
            change < 0,
            new.id,
        )
    lost = [t for t in old.targets if t not in new.targets]
    if lost:
        at = new.targets_pos[0] if new.targets_pos else new.pos
        yield Change(
            "GATE-RULE-NARROWED",
            f"rule {new.id} no longer applies to {' or '.join(t + 's' for t in lost)}",
            rel(at.path),
            at.line,
            True,
            new.id,
        )
    for target in (t for t in new.targets if t not in old.targets):
        yield Change("", f"rule {new.id} now applies to {target}s too", rel(new.pos.path), new.pos.line, False, new.id)
    gone: dict[tuple[Any, ...], tuple[ast.Require, list[str]]] = {}
    added: dict[tuple[Any, ...], ast.Require] = {}
    for target in (t for t in old.targets if t in new.targets):
        before = {_shape(r.expr): r for r in old.requirements_for(target)}
        after = {_shape(r.expr): r for r in new.requirements_for(target)}
        for key, req in before.items():
            if key not in after:
                gone.setdefault(key, (req, []))[1].append(target + "s")
        added.update((k, r) for k, r in after.items() if k not in before)
    if gone:
        targets = sorted({t for _, ts in gone.values() for t in ts}, reverse=True)
        at = next(iter(added.values())).pos if added else new.pos
        what = "; ".join(f"`{_text(r)}`" for r, _ in gone.values())
        new_text = "; ".join(f"`{_text(r)}`" for r in added.values())
        yield Change(
            "GATE-RULE-CHANGED",
            f"rule {new.id}: its requirements on {' and '.join(targets)} changed ({what} is gone"
            + (f", {new_text} is new" if added else "")
            + "): whether it passes more is not decided statically; it needs review",
            rel(at.path),
            at.line,
            True,
            new.id,
        )
    elif added:
        first = next(iter(added.values()))
        yield Change("", f"rule {new.id}: a requirement is added", rel(first.pos.path), first.pos.line, False)


def _text(req: ast.Require) -> str:
    return (req.text or ast.describe(req.expr))[:160]


def _profile_changes(base: _Loaded, head: _Loaded, old: ast.Profile | None, new: ast.Profile) -> Iterator[Change]:
    rel = head.side.rel
    was = "" if old is not None else " (a new profile)"
    old_disabled = {d.rule_id for d in old.disables} if old else set()
    for d in new.disables:
        if d.rule_id not in old_disabled:
            yield Change(
                "GATE-RULE-DISABLED",
                f"profile {new.name}{was} disables {d.rule_id}: {d.reason}",
                rel(d.pos.path),
                d.pos.line,
                True,
                f"{new.name}/{d.rule_id}",
            )
    for rule_id in old_disabled - {d.rule_id for d in new.disables}:
        yield Change("", f"profile {new.name} no longer disables {rule_id}", rel(new.pos.path), new.pos.line, False)
    old_sev = {s.rule_id: s.severity for s in old.severities} if old else {}
    for s in new.severities:
        before = old_sev.get(s.rule_id) or (base.rules[s.rule_id].severity if s.rule_id in base.rules else None)
        if before is None or before == s.severity or old_sev.get(s.rule_id) == s.severity:
            continue
        lowered = SEVERITY_RANK.get(s.severity, 4) < SEVERITY_RANK.get(before, 4)
        yield Change(
            "GATE-SEVERITY-LOWERED" if lowered else "",
            f"profile {new.name}{was} sets {s.rule_id}'s severity {before} -> {s.severity}",
            rel(s.pos.path),
            s.pos.line,
            lowered,
            f"{new.name}/{s.rule_id}",
        )
    old_lets = {x.name: x for x in old.lets} if old else {}
    for let in new.lets:
        prior = old_lets.get(let.name)
        if prior is None or _shape(prior.expr) != _shape(let.expr):
            yield Change(
                "GATE-CONSTANT-CHANGED",
                f"profile {new.name}{was} {'overrides' if prior is None else 'changes its override of'} {let.name}: "
                f"`{ast.describe(let.expr)[:160]}`",
                rel(let.pos.path),
                let.pos.line,
                True,
                f"{new.name}/{let.name}",
            )


def _profile_allowlists(
    base_side: Side, head_side: Side, old: ast.Profile | None, new: ast.Profile
) -> Iterator[Change]:
    """The data files a profile swaps in, compared with what the same profile read before (or, for a new
    profile, with the policy's own)."""
    from cvmlint._resources import default_policy_path
    from cvmlint.policy import load_policy

    head = load_policy(head_side.policy_file or default_policy_path(), [new.name]).uses
    base_path = base_side.policy_file or default_policy_path()
    base = load_policy(base_path, [new.name]).uses if old is not None else load_policy(base_path).uses
    for use in new.uses:
        yield from _allowlist_changes(
            base.get(use.name), head[use.name], f"{use.name} (profile {new.name})", head_side.rel
        )


# ---- allowlists ----------------------------------------------------------------------------


def _allowlist_changes(old: Allowlist | None, new: Allowlist, name: str, rel: Any) -> Iterator[Change]:
    before = _by_name(old) if old is not None else {}
    after = _by_name(new)
    file = rel(new.path)
    for package, lines in after.items():
        constraints = sorted(c for c, _ in lines)
        line = lines[0][1]
        if package not in before:
            what = "pattern" if any(ch in package for ch in "*?") else "package"
            yield Change(
                "GATE-ALLOWLIST-WIDENED", f"allowlist {name}: {what} {package} is added", file, line, True, package
            )
            continue
        old_constraints = sorted(c for c, _ in before[package])
        if constraints == old_constraints:
            continue
        verdict = _range_change(old_constraints, constraints)
        text = f"allowlist {name}: {package} {_ranges(old_constraints)} -> {_ranges(constraints)}"
        if verdict == "narrowed":
            yield Change("", text + " (narrowed)", file, line, False)
        else:
            why = (
                "widened" if verdict == "widened" else "changed; whether it admits more is not decided: it needs review"
            )
            yield Change("GATE-ALLOWLIST-WIDENED", f"{text} ({why})", file, line, True, package)
    for package in before.keys() - after.keys():
        yield Change("", f"allowlist {name}: {package} is removed", file, None, False)


Constraints = tuple[tuple[str, str], ...]


def _by_name(allowlist: Allowlist) -> dict[str, list[tuple[Constraints, int]]]:
    out: dict[str, list[tuple[Constraints, int]]] = {}
    for e in allowlist.entries:
        out.setdefault(e.name, []).append((e.constraints, e.line))
    return out


def _ranges(lines: list[Constraints]) -> str:
    return " | ".join(", ".join(f"({op} {v})" for op, v in c) or "(any version)" for c in lines)


def _range_change(old: list[Constraints], new: list[Constraints]) -> str:
    """`widened`, `narrowed` or `changed` for one package's version constraints (one line each side)."""
    if len(old) != 1 or len(new) != 1:
        return "changed"
    scores = [_bound_change(old[0], new[0], ops, lower) for ops, lower in (((">=", ">>"), True), (("<=", "<<"), False))]
    if dict(old[0]).get("=") != dict(new[0]).get("="):
        scores.append(None)
    if None in scores or (1 in scores and -1 in scores):
        return "changed"
    return "widened" if -1 in scores else "narrowed"


def _bound_change(old: Constraints, new: Constraints, ops: tuple[str, str], lower: bool) -> int | None:
    """-1 the new bound admits more, 1 less, 0 the same; None when it cannot be said."""
    a = [(op, v) for op, v in old if op in ops]
    b = [(op, v) for op, v in new if op in ops]
    if len(a) > 1 or len(b) > 1:
        return None
    if not a and not b:
        return 0
    if not b:
        return -1
    if not a:
        return 1
    (op_a, v_a), (op_b, v_b) = a[0], b[0]
    order = version_compare(v_b, v_a)
    if order == 0:
        strict_a, strict_b = op_a in (">>", "<<"), op_b in (">>", "<<")
        return 0 if strict_a == strict_b else (1 if strict_b else -1)
    return (1 if order > 0 else -1) if lower else (-1 if order > 0 else 1)


# ---- waivers -------------------------------------------------------------------------------


def _waivers(side: Side) -> list[tuple[Any, int | None]]:
    from cvmlint.policy import load_waivers

    if side.waivers_file is None or not side.waivers_file.is_file():
        return []
    found = load_waivers(side.waivers_file)
    return [(w, side.waiver_lines[i] if i < len(side.waiver_lines) else None) for i, w in enumerate(found)]


def _waiver_changes(base_side: Side, head_side: Side) -> Iterator[Change]:
    base, head = _waivers(base_side), _waivers(head_side)
    file = head_side.rel(head_side.waivers_file) if head_side.waivers_file else ""
    before = {(w.rule, w.subject, w.target): w for w, _ in base}
    matched: set[tuple[str, str | None, str | None]] = set()
    for w, line in head:
        key = (w.rule, w.subject, w.target)
        old = before.get(key)
        scope = _scope(w)
        if old is not None:
            matched.add(key)
            if w.expires > old.expires:
                yield Change(
                    "GATE-WAIVER-EXTENDED",
                    f"waiver of {w.rule}{scope} now expires {w.expires} (was {old.expires})",
                    file,
                    line,
                    True,
                    w.rule,
                )
            elif w.expires < old.expires:
                yield Change(
                    "", f"waiver of {w.rule}{scope} now expires {w.expires} (was {old.expires})", file, line, False
                )
            continue
        narrower = [
            b for b, _ in base if b.rule == w.rule and w.subject in (None, b.subject) and w.target in (None, b.target)
        ]
        if narrower:
            matched.update((b.rule, b.subject, b.target) for b in narrower)
            yield Change(
                "GATE-WAIVER-WIDENED",
                f"waiver of {w.rule} widened to{scope or ' the whole rule, on every target'} "
                f"(was{_scope(narrower[0])}), until {w.expires}",
                file,
                line,
                True,
                w.rule,
            )
        else:
            yield Change(
                "GATE-WAIVER-ADDED",
                f"waiver of {w.rule}{scope} added, until {w.expires}, approved by {w.approver}: {w.reason}",
                file,
                line,
                True,
                w.rule,
            )
    for key, w in before.items():
        if key not in matched:
            yield Change("", f"waiver of {w.rule}{_scope(w)} is removed", file, None, False)


def _scope(w: Any) -> str:
    parts = [f"subject {w.subject}" if w.subject else "", f"target {w.target}" if w.target else ""]
    text = " and ".join(p for p in parts if p)
    return f" ({text})" if text else ""


# ---- cvmlint.toml --------------------------------------------------------------------------


def _config_changes(base: Side, head: Side) -> Iterator[Change]:
    old, new = base.project or Project(base.root), head.project or Project(head.root)
    text, file = head.toml_text, NAME
    fail_on = (old.fail_on or "low", new.fail_on or "low")
    if fail_on[0] != fail_on[1]:
        relaxed = SEVERITY_RANK[fail_on[1]] > SEVERITY_RANK[fail_on[0]]
        yield Change(
            "GATE-CONFIG-RELAXED" if relaxed else "",
            f"fail-on {fail_on[0]} -> {fail_on[1]}",
            file,
            _toml_line(text, "fail-on"),
            relaxed,
            "fail-on",
        )
    unknown = (old.unknown or "fail", new.unknown or "fail")
    if unknown[0] != unknown[1]:
        relaxed = unknown[1] == "warn"
        yield Change(
            "GATE-CONFIG-RELAXED" if relaxed else "",
            f"unknown {unknown[0]} -> {unknown[1]}",
            file,
            _toml_line(text, "unknown"),
            relaxed,
            "unknown",
        )
    for mkosi, implied in new.implies.items():
        added = [p for p in implied if p not in old.implies.get(mkosi, ())]
        if added:
            yield Change(
                "GATE-PROFILE-IMPLIED",
                f"mkosi profile {mkosi} now implies policy profile(s) {', '.join(added)}",
                file,
                _toml_line(text, mkosi, "mkosi-profile-implies"),
                True,
                mkosi,
            )
    for mkosi in old.implies.keys() - new.implies.keys():
        yield Change("", f"mkosi profile {mkosi} no longer implies policy profiles", file, None, False)
    yield from _recipe_changes(base, head, old, new)
    for key, was, now in (
        ("policy", old.policy, new.policy),
        ("waivers", old.waivers, new.waivers),
    ):
        a = base.rel(was) if was else "(none)"
        b = head.rel(now) if now else "(none)"
        if a != b:
            yield Change(
                "", f"{key} {a} -> {b} (their contents are compared above)", file, _toml_line(text, key), False
            )


def _recipe_changes(base: Side, head: Side, old: Project, new: Project) -> Iterator[Change]:
    before = {base.rel(e.path): e for e in old.recipes}
    text = head.toml_text
    blocks = [n for n, line in enumerate(text.splitlines(), 1) if line.strip() == "[[recipe]]"]
    for index, entry in enumerate(new.recipes):
        path = head.rel(entry.path)
        line = blocks[index] if index < len(blocks) else None
        prior = before.pop(path, None)
        if prior is None:
            yield Change("", f"recipe {path} is added", NAME, line, False)
            continue
        for key, was, now in (
            ("profiles", prior.profiles, entry.profiles),
            ("mkosi-profiles", prior.mkosi_profiles, entry.mkosi_profiles),
            (
                "patches",
                base.rel(prior.patches) if prior.patches else None,
                head.rel(entry.patches) if entry.patches else None,
            ),
            (
                "kernel-config",
                base.rel(prior.kernel_config) if prior.kernel_config else None,
                head.rel(entry.kernel_config) if entry.kernel_config else None,
            ),
        ):
            if was != now:
                yield Change(
                    "GATE-CONFIG-CHANGED",
                    f"recipe {path}: {key} {_listed(was)} -> {_listed(now)}; it needs review",
                    NAME,
                    _toml_line(text, key, start=line) or line,
                    True,
                    f"{path}/{key}",
                )
    for path in before:
        yield Change(
            "GATE-CONFIG-CHANGED",
            f"recipe {path} is no longer listed: `cvmlint lint` no longer judges it",
            NAME,
            None,
            True,
            path,
        )


def _listed(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(value) + "]"
    return str(value) if value else "(none)"


def _toml_line(text: str, key: str, section: str | None = None, start: int | None = None) -> int | None:
    """The line of `key = …`: at the top (before any table), in `[section]`, or in the `[[recipe]]` block
    whose header is line `start`."""
    lines = text.splitlines()
    first = start if start is not None else 0
    if section is not None:
        header = next((n for n, line in enumerate(lines) if line.strip() == f"[{section}]"), None)
        if header is None:
            return None
        first = header + 1
    pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
    for n in range(first, len(lines)):
        if lines[n].strip().startswith("["):
            break
        if pattern.match(lines[n]):
            return n + 1
    return None


def _shape(node: Any) -> Any:
    """An AST node without its positions, to compare what two versions of a rule mean."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        skip = {"text", "message"}
        return (
            type(node).__name__,
            *(
                _shape(getattr(node, f.name))
                for f in dataclasses.fields(node)
                if not f.name.endswith("pos") and f.name not in skip
            ),
        )
    if isinstance(node, list | tuple):
        return tuple(_shape(x) for x in node)
    if isinstance(node, dict):
        return tuple(sorted((k, _shape(v)) for k, v in node.items()))
    return node


# ---- the report ----------------------------------------------------------------------------


def report_of(changes: list[Change], base: Side, head: Side, top: Path) -> Report:
    """The changes as a report: a failing result per kind of weakening, each change a finding at its place
    on the new side (the file as the working tree at `top` has it); the tightenings as notes."""
    results = []
    for kind, info in KINDS.items():
        mine = [c for c in changes if c.kind == kind and c.weakens]
        findings = tuple(Finding(c.message, _where(c, top), c.subject or None) for c in mine)
        status = Status.FAIL if findings else Status.PASS
        results.append(RuleResult(info.id, info.title, info.severity, status, findings))
    report = Report("gate", "", "", (), Target(kind="change", name=f"{base.label} -> {head.label}"))
    report.results = results
    report.rules = tuple(KINDS.values())
    report.notes = [
        f"tightens: {c.message}" + (f" ({c.file}:{c.line})" if c.line else "") for c in changes if not c.weakens
    ]
    if any(c.weakens for c in changes):
        report.notes.append("the gate is weakened: " + REVIEW)
    return report


def _where(change: Change, top: Path) -> Provenance | None:
    """The change's file as shown from the working directory (a repository-relative path from `top`)."""
    if not change.file or change.file.startswith("("):
        return None
    return Provenance(file=os.path.relpath(top / change.file), line=change.line)
