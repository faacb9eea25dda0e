"""`cvmlint policy test`: fact fixtures with the expected result of each rule.

A fixture file is TOML:

    policy = "../cvm-baseline.cvmp"      # relative to this file
    base = "facts/hardened-image.json"   # facts every case starts from

    [[case]]
    name = "ext4 root"
    profiles = ["tdx-base"]
    set = { "rootfs.format" = "ext4" }                # change a value
    unknown = { "verity" = "no hash partition" }      # make a fact unknown
    add = { "packages" = [{ name = "gcc-12", version = "12.2.0-14" }] }
    remove = { "cmdline" = ["lockdown"] }             # drop items by key
    expect = { "CVM-FS-001" = "fail" }
    expect_rest = ["pass", "skipped"]                 # every rule not in expect (a rule for the
                                                      # other target only is expected skipped)
    findings = { "CVM-FS-001" = ["root file system is ext4"] }   # substrings of the findings

Paths are dotted; `[key]` picks an item of a keyed collection (`cmdline[lockdown]`,
`kernel.config[CONFIG_KEXEC]`, `boot.entries[0].cmdline[roothash]`). `set` on a `[key]` of a
collection whose items yield a value (cmdline, kernel.config) sets that value, adding the item
when it is missing.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
import types
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from cvmlint.errors import CvmlintError, InputError
from cvmlint.facts.model import Facts, Record
from cvmlint.facts.provenance import Items, Unknown
from cvmlint.facts.serialize import facts_from_json
from cvmlint.policy.loader import Policy, load_policy
from cvmlint.policy.results import Report, Status

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[([^\]]*)\]")
_STATUSES = {s.value for s in Status}


@dataclass
class CaseResult:
    """One case: its name and what did not match."""

    file: str
    name: str
    problems: list[str] = field(default_factory=list)


@dataclass
class TestSummary:
    """All cases of a run, and which statuses each rule was shown to reach."""

    cases: list[CaseResult] = field(default_factory=list)
    coverage: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    rules: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Rule id -> its targets, for every policy the fixtures used."""

    @property
    def failed(self) -> list[CaseResult]:
        """Cases with at least one mismatch."""
        return [c for c in self.cases if c.problems]

    def uncovered(self, status: str) -> list[str]:
        """Rules that no case shows reaching `status`."""
        return sorted(r for r in self.rules if status not in self.coverage.get(r, set()))

    def exit_code(self, strict: bool) -> int:
        """1 when a case failed (or, strict, when a rule lacks a pass or fail fixture)."""
        if self.failed:
            return 1
        if strict and (self.uncovered("pass") or self.uncovered("fail")):
            return 1
        return 0

    def render(self) -> str:
        """Per-case lines, then coverage gaps."""
        lines = []
        for case in self.cases:
            mark = "FAIL" if case.problems else "ok  "
            lines.append(f"{mark} {case.file}: {case.name}")
            lines += [f"       {p}" for p in case.problems]
        lines.append("")
        lines.append(f"{len(self.cases) - len(self.failed)} of {len(self.cases)} cases passed; {len(self.rules)} rules")
        for status in ("fail", "pass", "unknown"):
            missing = self.uncovered(status)
            if missing:
                lines.append(f"rules no fixture makes {status}: {', '.join(missing)}")
        return "\n".join(lines)


def _strip(hint: Any) -> Any:
    """The concrete type inside Maybe[...] / Optional[...]."""
    if get_origin(hint) in (Union, types.UnionType):
        members = [m for m in get_args(hint) if m not in (Unknown, type(None))]
        return members[0] if len(members) == 1 else hint
    return hint


def _walk(doc: dict[str, Any], path: str) -> tuple[Any, Any, Any]:
    """Resolve a fixture path to (container, slot, type hint of the slot).

    The slot is a key of a JSON object, or (index or None, key, item class) in a collection.
    """
    segments = [(m.group(1), m.group(2)) for m in _SEGMENT.finditer(path)]
    if not segments or "".join(m.group(0) for m in _SEGMENT.finditer(path)).replace(".", "") != path.replace(".", ""):
        raise InputError(f"bad fixture path {path!r}")
    node: Any = doc
    hint: Any = Facts
    container: Any = None
    slot: Any = None
    for i, (name, key) in enumerate(segments):
        last = i == len(segments) - 1
        if name is not None:
            record = _strip(hint)
            hints = get_type_hints(record)
            if name not in hints:
                raise InputError(f"fixture path {path!r}: {record.__name__} has no field {name!r}")
            container, slot, hint = node, name, hints[name]
            if not last:
                node = node.get(name)
                if not isinstance(node, dict) or "unknown" in node:
                    raise InputError(f"fixture path {path!r}: {name!r} is unknown or missing")
        else:
            coll = _strip(hint)
            if get_origin(coll) is not Items:
                raise InputError(f"fixture path {path!r}: [{key}] needs a collection")
            item_cls = _strip(get_args(coll)[0])
            items = node["items"] if isinstance(node, dict) else node
            index = _find(items, item_cls, key)
            if index is None and not last:
                raise InputError(f"fixture path {path!r}: no item [{key}]")
            container, slot, hint = items, (index, key, item_cls), item_cls
            if not last:
                node = items[index]
    return container, slot, hint


def _find(items: list[Any], cls: type[Record], key: str) -> int | None:
    if cls.KEY is None:
        return int(key) if key.isdigit() and int(key) < len(items) else None
    found = None
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get(cls.KEY) == key:
            found = i
    if found is None and key.isdigit() and int(key) < len(items):
        return int(key)
    return found


def _items_of(container: Any, slot: Any) -> list[Any]:
    value = container[slot]
    if isinstance(value, dict) and "items" in value:
        items: list[Any] = value["items"]
        return items
    if isinstance(value, list):
        return value
    raise InputError(f"fixture: {slot!r} is not a collection")


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    container, slot, _ = _walk(doc, path)
    if isinstance(slot, tuple):
        index, key, cls = slot
        if cls.INDEX_YIELDS and not isinstance(value, dict):
            if index is None:
                container.append({cls.KEY: key, cls.INDEX_YIELDS: value})
            else:
                container[index][cls.INDEX_YIELDS] = value
            return
        if index is None:
            container.append(value)
        else:
            container[index] = value
        return
    container[slot] = value


def _unknown(doc: dict[str, Any], path: str, reason: str) -> None:
    _set(doc, path, {"unknown": reason})


def _add(doc: dict[str, Any], path: str, items: list[Any]) -> None:
    container, slot, _ = _walk(doc, path)
    _items_of(container, slot).extend(items)


def _remove(doc: dict[str, Any], path: str, keys: list[str]) -> None:
    container, slot, hint = _walk(doc, path)
    coll = _strip(hint)
    cls = _strip(get_args(coll)[0])
    items = _items_of(container, slot)
    missing = [k for k in keys if not any(isinstance(i, dict) and i.get(cls.KEY) == k for i in items)]
    if missing:
        raise InputError(f"fixture: cannot remove {', '.join(missing)} from {path}: not there")
    items[:] = [i for i in items if not (isinstance(i, dict) and i.get(cls.KEY) in keys)]


def build_case_facts(base: dict[str, Any], case: dict[str, Any]) -> Facts:
    """The base facts document with one case's changes applied."""
    doc = copy.deepcopy(base)
    body = doc["facts"]
    for path, keys in case.get("remove", {}).items():
        _remove(body, path, keys)
    for path, items in case.get("add", {}).items():
        _add(body, path, items)
    for path, value in case.get("set", {}).items():
        _set(body, path, value)
    for path, reason in case.get("unknown", {}).items():
        _unknown(body, path, reason)
    return facts_from_json(doc, f"case {case.get('name', '?')!r}")


def _check(case: dict[str, Any], report: Report, result: CaseResult, summary: TestSummary) -> None:
    expect: dict[str, str] = case.get("expect", {})
    rest = case.get("expect_rest")
    rest_ok = [rest] if isinstance(rest, str) else rest
    by_id = {r.rule_id: r for r in report.results}
    for rule_id in expect:
        if rule_id not in by_id:
            result.problems.append(f"{rule_id}: no such rule in the policy")
    for r in report.results:
        wanted = expect.get(r.rule_id)
        other_target = r.status.value == "skipped" and any(x.startswith("applies to ") for x in r.reasons)
        allowed = [wanted] if wanted else ([*rest_ok, "skipped"] if rest_ok and other_target else rest_ok)
        if allowed is None:
            continue
        for status in allowed:
            if status not in _STATUSES:
                result.problems.append(f"{r.rule_id}: unknown status {status!r}")
        if r.status.value in allowed:
            summary.coverage[r.rule_id].add(r.status.value)
            continue
        detail = "; ".join([f.message for f in r.findings] + list(r.reasons))[:300]
        result.problems.append(
            f"{r.rule_id}: expected {' or '.join(allowed)}, got {r.status.value}" + (f" ({detail})" if detail else "")
        )
    for rule_id, needles in case.get("findings", {}).items():
        found = by_id.get(rule_id)
        text = "\n".join(f"{f.message} @ {f.location}" for f in found.findings) if found else ""
        for needle in needles:
            if needle not in text:
                result.problems.append(f"{rule_id}: no finding contains {needle!r} (findings: {text[:300]!r})")


def run_fixture_file(path: Path, summary: TestSummary, cache: dict[Any, Policy]) -> None:
    """Run every case of one fixture file into `summary`."""
    from cvmlint.policy.evaluator import evaluate

    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read fixture file: {err}") from None
    policy_path = path.parent / doc.get("policy", "../cvm-baseline.cvmp")
    bases: dict[str, dict[str, Any]] = {}
    for case in doc.get("case", []):
        name = case.get("name", "?")
        result = CaseResult(path.name, name)
        summary.cases.append(result)
        base_name = case.get("base", doc.get("base"))
        try:
            if base_name not in bases:
                bases[base_name] = json.loads((path.parent / base_name).read_text(encoding="utf-8"))
            profiles = tuple(case.get("profiles", ()))
            key = (str(policy_path), profiles)
            if key not in cache:
                cache[key] = load_policy(policy_path, profiles)
            policy = cache[key]
            for rule in policy.rules:
                summary.rules.setdefault(rule.id, rule.targets)
            report = evaluate(policy, build_case_facts(bases[base_name], case))
        except (CvmlintError, OSError, ValueError, KeyError, TypeError) as err:
            text = err.diagnostics() if isinstance(err, CvmlintError) else f"{type(err).__name__}: {err}"
            result.problems.append(f"cannot run case: {text}")
            continue
        _check(case, report, result, summary)


def run_fixture_dir(directory: Path) -> TestSummary:
    """Run every `*.toml` fixture file in a folder (not recursive)."""
    files = sorted(directory.glob("*.toml")) if directory.is_dir() else [directory]
    if not files or not all(f.exists() for f in files):
        raise InputError(f"{directory}: no *.toml fixture files")
    summary = TestSummary()
    cache: dict[Any, Policy] = {}
    for path in files:
        run_fixture_file(path, summary, cache)
    return summary
