"""Load a policy: parse, resolve includes and data files, check, apply profiles."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cvmlint import limits
from cvmlint.errors import Diagnostic, InputError, PolicyError
from cvmlint.policy import ast
from cvmlint.policy.allowlist import Allowlist, parse_allowlist
from cvmlint.policy.checker import Binding, Checker, fact_scope
from cvmlint.policy.parser import parse_policy_text
from cvmlint.policy.types import ALLOWLIST, ANY, Ty, comparable

DATA_KINDS = ("list",)


@dataclass(frozen=True)
class Confine:
    """A policy that must be read from one directory only (an evidence bundle's copy): an include or a
    data file outside `root` is an error, and `cvmlint:NAME` is the bundled copy in `shipped`."""

    root: Path
    shipped: Path | None = None


@dataclass
class Policy:
    """A loaded, checked policy with the selected profiles applied."""

    name: str
    version: str
    path: str
    sha256: str
    """Digest of every file the policy is made of (sources and data files), in load order."""
    files: tuple[str, ...]
    rules: tuple[ast.Rule, ...]
    lets: dict[str, Any]
    uses: dict[str, Allowlist]
    scope: dict[str, Binding]
    profiles: tuple[str, ...] = ()
    available_profiles: dict[str, ast.Profile] = field(default_factory=dict)
    disabled: dict[str, str] = field(default_factory=dict)
    """Rule id -> why a profile disabled it."""
    warnings: list[Diagnostic] = field(default_factory=list)

    def rule(self, rule_id: str) -> ast.Rule | None:
        """The rule with that id, if any."""
        return next((r for r in self.rules if r.id == rule_id), None)


def display_path(path: Path) -> str:
    """A path as shown in messages: relative to the working directory when below it."""
    try:
        return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


class _Sources:
    """Reads policy and data files once, keeping their text for diagnostics and the digest."""

    def __init__(self, base: Path, confine: Confine | None = None) -> None:
        self.confine = confine
        self.lines: dict[str, list[str]] = {}
        self.digest = hashlib.sha256()
        self.order: list[str] = []
        self.read_files: list[tuple[Path, bytes]] = []
        self.base = base.resolve()
        """The main policy file's directory: the digest names files relative to it, so the same policy
        has the same digest wherever it is checked out (and inside an evidence bundle)."""

    def read(self, path: Path, shown: str, what: str, at: ast.Pos | None) -> str:
        from cvmlint.files import Refused, read_bounded

        try:
            if self.confine is not None and not path.resolve().is_relative_to(self.confine.root.resolve()):
                raise Refused(shown, what, "it is outside the evidence bundle, whose own copy must be read")
            data = read_bounded(path, "policy-file-bytes", what, shown)
        except Refused as err:
            message = f"cannot read {what} {shown}: {err.reason}"
            if at is None:
                raise InputError(message) from None
            raise PolicyError(
                [Diagnostic(at.path, at.line, at.column, message, self.line(at.path, at.line), at.width)]
            ) from None
        name = os.path.relpath(path.resolve(), self.base)
        self.digest.update(name.encode() + b"\0" + data + b"\0")
        self.order.append(shown)
        self.read_files.append((path.resolve(), data))
        if b"\0" in data:
            raise PolicyError([Diagnostic(shown, 1, 1, f"{what} is a binary file, not text")])
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise PolicyError([Diagnostic(shown, 1, 1, f"{what} is not UTF-8 text (byte {err.start})")]) from None
        self.lines[shown] = text.splitlines()
        return text

    def line(self, path: str, number: int) -> str:
        lines = self.lines.get(path, [])
        return lines[number - 1] if 0 < number <= len(lines) else ""


PARSED_KEPT = 64
_PARSED: dict[tuple[str, str, str], ast.PolicyFile] = {}
"""Parsed files by path and text: one process loading a policy under several profiles parses once; the
oldest are forgotten past PARSED_KEPT (a process that reads many policies, a replay of many bundles,
stays bounded)."""


def _parse_tree(root: Path, sources: _Sources) -> list[tuple[Path, ast.PolicyFile]]:
    """The root file and everything it includes, depth first, each file once, cycles refused."""
    done: dict[Path, ast.PolicyFile] = {}
    order: list[tuple[Path, ast.PolicyFile]] = []

    def visit(path: Path, stack: list[Path], at: ast.Pos | None) -> None:
        real = path.resolve()
        if real in stack:
            assert at is not None
            chain = " -> ".join(display_path(p) for p in [*stack[stack.index(real) :], real])
            raise PolicyError(
                [
                    Diagnostic(
                        at.path, at.line, at.column, f"include cycle: {chain}", sources.line(at.path, at.line), at.width
                    )
                ]
            )
        if real in done:
            return
        if len(stack) >= limits.get("include-depth"):
            assert at is not None
            raise PolicyError([Diagnostic(at.path, at.line, at.column, "includes nest too deeply")])
        shown = display_path(path)
        text = sources.read(path, shown, "policy", at)
        key = (str(real), shown, text)
        parsed = _PARSED.get(key) or _parse_cached(key)
        for inc in parsed.includes:
            visit(_include_path(path, inc.path, sources.confine), [*stack, real], inc.pos)
        done[real] = parsed
        order.append((path, parsed))

    visit(root, [], None)
    return order


def parsed_files(root: Path) -> list[tuple[Path, ast.PolicyFile]]:
    """A policy file and everything it includes, parsed (not checked), each with its path."""
    return _parse_tree(root, _Sources(root.parent))


def _parse_cached(key: tuple[str, str, str]) -> ast.PolicyFile:
    """Parse a file, or take its parse from the user's cache (no grammar, no lark: a lint starts faster)."""
    from cvmlint import cache

    digest = "\0".join(key).encode()
    parsed = cache.load_parsed(digest)
    if not isinstance(parsed, ast.PolicyFile):
        parsed = parse_policy_text(key[2], key[1])
        cache.store_parsed(digest, parsed)
    _PARSED[key] = parsed
    while len(_PARSED) > PARSED_KEPT:
        del _PARSED[next(iter(_PARSED))]
    return parsed


def _include_path(including: Path, name: str, confine: Confine | None = None) -> Path:
    """`include "x.cvmp"` is relative to the including file; `include "cvmlint:cvm-baseline.cvmp"` names
    a policy shipped with cvmlint (a site policy builds on the baseline wherever cvmlint is installed), or
    its copy in an evidence bundle."""
    if name.startswith("cvmlint:"):
        from cvmlint._resources import policies_dir

        shipped = policies_dir() if confine is None else confine.shipped or confine.root / "(no shipped policies)"
        return shipped / name.removeprefix("cvmlint:")
    return including.parent / name


def _duplicates(items: Iterable[tuple[str, ast.Pos]], what: str, sources: _Sources) -> list[Diagnostic]:
    seen: dict[str, ast.Pos] = {}
    out = []
    for key, pos in items:
        if key in seen:
            first = seen[key]
            out.append(
                Diagnostic(
                    pos.path,
                    pos.line,
                    pos.column,
                    f"duplicate {what} '{key}' (first defined at {first})",
                    sources.line(pos.path, pos.line),
                    pos.width,
                )
            )
        else:
            seen[key] = pos
    return out


def const_value(expr: ast.Expr, values: dict[str, Any]) -> Any:
    """The value of a constant expression (literals, lists, `+`, other constants)."""
    if isinstance(expr, ast.Literal):
        return expr.value
    if isinstance(expr, ast.ListExpr):
        return tuple(const_value(x, values) for x in expr.items)
    if isinstance(expr, ast.Name):
        return values[expr.id]
    if isinstance(expr, ast.Concat):
        parts = [const_value(x, values) for x in expr.items]
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        return total
    raise TypeError(f"not a constant: {expr}")  # pragma: no cover - the checker refuses these first


def _check_let(checker: Checker, let: ast.Let, scope: dict[str, Binding]) -> Ty:
    from cvmlint.policy.checker import walk_expr

    nodes = list(walk_expr(let.expr))
    for node in nodes:
        if isinstance(node, ast.Name) and node.id in scope and scope[node.id].kind == "fact":
            return checker.error(
                node.pos,
                f"let values are constants, but '{node.id}' is a fact",
                hint="read facts inside a rule's require",
            )
    for node in nodes:
        if not isinstance(node, ast.Literal | ast.ListExpr | ast.Name | ast.Concat):
            return checker.error(node.pos, "let values are constants: literals, lists, '+' and other let names")
    return checker.expr(let.expr, scope)


def load_policy(path: str | Path, profiles: Sequence[str] = (), confine: Confine | None = None) -> Policy:
    """Load and check a policy file with its includes and data files, then apply `profiles` in order;
    with `confine`, every file must be below its root (see Confine)."""
    root = Path(path)
    if root.is_dir():
        raise InputError(f"{path}: is a directory; give a policy file (*.cvmp)")
    checked = _check(root, confine) if confine is not None else _CHECKED.get(root.resolve())
    if checked is None or not checked.unchanged():
        checked = _CHECKED[root.resolve()] = _cached_check(root)
    base = checked.policy
    policy = replace(base, lets=dict(base.lets), uses=dict(base.uses), disabled={}, warnings=list(base.warnings))
    for name in profiles:
        _apply_profile(policy, name, checked.profile_data)
    return policy


@dataclass
class _Checked:
    """A checked policy before profiles, with the files it was made of (to see that they are unchanged)."""

    policy: Policy
    profile_data: dict[tuple[str, str], Allowlist]
    read: list[tuple[str, bytes]]

    def unchanged(self) -> bool:
        try:
            return all(Path(path).read_bytes() == data for path, data in self.read)
        except OSError:
            return False


def _cached_check(root: Path) -> _Checked:
    """The checked policy from the per-user cache when every file it was made of reads the same (the
    shown paths depend on the working directory, and reading on the limits: both are in the key)."""
    from cvmlint import cache, limits

    key = "\0".join([str(root.resolve()), os.getcwd(), repr(sorted(limits.overrides().items()))]).encode()
    found = cache.load_checked(key)
    if isinstance(found, _Checked) and found.unchanged():
        return found
    checked = _check(root)
    cache.store_checked(key, checked)
    return checked


_CHECKED: dict[Path, _Checked] = {}
"""Checked policies by path: a lint of several recipes checks its policy once and applies each recipe's
profiles to a copy."""


def _check(root: Path, confine: Confine | None = None) -> _Checked:
    sources = _Sources(root.parent, confine)
    tree = _parse_tree(root, sources)
    files = [pf for _, pf in tree]
    main = files[-1]
    lets = [let for pf in files for let in pf.lets]
    uses = [(p.parent, u) for p, pf in tree for u in pf.uses]
    rules = [r for pf in files for r in pf.rules]
    profile_list = [p for pf in files for p in pf.profiles]

    diags = _duplicates(((r.id, r.pos) for r in rules), "rule id", sources)
    diags += _duplicates(((x.name, x.pos) for x in lets), "let", sources)
    diags += _duplicates(((u.name, u.pos) for _, u in uses), "data file name", sources)
    diags += _duplicates(((p.name, p.pos) for p in profile_list), "profile", sources)

    checker = Checker(sources.lines)
    scope = fact_scope()
    values: dict[str, Any] = {}
    allowlists: dict[str, Allowlist] = {}
    for base, use in uses:
        allowlists[use.name] = _load_use(checker, base, use, sources)
        scope[use.name] = Binding("use", ALLOWLIST)
    for let in lets:
        ty = _check_let(checker, let, scope)
        scope[let.name] = Binding("let", ty)
        if ty != ANY and not checker.diagnostics:
            values[let.name] = const_value(let.expr, {**values, **allowlists})
    for rule in rules:
        checker.rule(rule, scope)
    rule_ids = {r.id for r in rules}
    profile_dirs = {id(p): path.parent for path, pf in tree for p in pf.profiles}
    profile_data: dict[tuple[str, str], Allowlist] = {}
    for prof in profile_list:
        _check_profile(checker, prof, scope, rule_ids, profile_dirs[id(prof)], sources, profile_data)
    diags += checker.diagnostics
    if diags:
        raise PolicyError(sorted(diags, key=lambda d: (d.path, d.line, d.column)))

    policy = Policy(
        name=main.name,
        version=main.version,
        path=main.path,
        sha256=sources.digest.hexdigest(),
        files=tuple(sources.order),
        rules=tuple(rules),
        lets=values,
        uses=allowlists,
        scope=scope,
        available_profiles={p.name: p for p in profile_list},
        warnings=checker.warnings,
    )
    return _Checked(policy, profile_data, [(str(path), data) for path, data in sources.read_files])


def _load_use(checker: Checker, base: Path, use: ast.Use, sources: _Sources) -> Allowlist:
    if use.kind not in DATA_KINDS:
        checker.error(
            use.pos,
            f"unknown data file kind '{use.kind}'" + checker.suggest(use.kind, DATA_KINDS),
            hint="data file kinds: " + ", ".join(DATA_KINDS),
        )
        return Allowlist(use.path, ())
    file = base / use.path
    shown = display_path(file)
    return parse_allowlist(sources.read(file, shown, "data file", use.pos), shown)


def _check_profile(
    checker: Checker,
    prof: ast.Profile,
    scope: dict[str, Binding],
    rule_ids: set[str],
    base: Path,
    sources: _Sources,
    data: dict[tuple[str, str], Allowlist],
) -> None:
    from cvmlint.severity import SEVERITIES

    for let in prof.lets:
        if let.name not in scope or scope[let.name].kind != "let":
            lets = [n for n, b in scope.items() if b.kind == "let"]
            checker.error(
                let.pos,
                f"profile {prof.name} overrides '{let.name}', which is not a let of the "
                "policy" + checker.suggest(let.name, lets),
            )
            continue
        ty = _check_let(checker, let, scope)
        if ty != ANY and not comparable(ty, scope[let.name].ty):
            checker.error(
                let.pos, f"profile {prof.name} gives '{let.name}' a {ty}; the policy's is a {scope[let.name].ty}"
            )
    for use in prof.uses:
        if use.name not in scope or scope[use.name].kind != "use":
            checker.error(
                use.pos, f"profile {prof.name} replaces data file '{use.name}', which the policy does not use"
            )
            continue
        data[(prof.name, use.name)] = _load_use(checker, base, use, sources)
    refs: list[ast.Disable | ast.Reseverity] = [*prof.disables, *prof.severities]
    for ref in refs:
        if ref.rule_id not in rule_ids:
            checker.error(
                ref.pos,
                f"profile {prof.name} names unknown rule {ref.rule_id}" + checker.suggest(ref.rule_id, rule_ids),
            )
    for sev in prof.severities:
        if sev.severity not in SEVERITIES:
            checker.error(sev.pos, f"unknown severity '{sev.severity}'" + checker.suggest(sev.severity, SEVERITIES))


def _apply_profile(policy: Policy, name: str, data: dict[tuple[str, str], Allowlist]) -> None:
    prof = policy.available_profiles.get(name)
    if prof is None:
        import difflib

        known = sorted(policy.available_profiles)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise InputError(f"policy {policy.path} has no profile '{name}'{hint} (profiles: {', '.join(known) or 'none'})")
    for let in prof.lets:
        policy.lets[let.name] = const_value(let.expr, {**policy.lets, **policy.uses})
    for use in prof.uses:
        policy.uses[use.name] = data[(name, use.name)]
    for dis in prof.disables:
        policy.disabled[dis.rule_id] = f"disabled by profile {name}: {dis.reason}"
    changes = {s.rule_id: s.severity for s in prof.severities}
    policy.rules = tuple(replace(r, severity=changes[r.id]) if r.id in changes else r for r in policy.rules)
    policy.profiles = (*policy.profiles, name)
