"""`cvmlint evidence diff A B`: what changed between two builds, and which rule changed because of it.

A and B are evidence bundles (facts.json, results.json, inputs.json) or images (scanned here with the
default policy). The changes are listed per fact, then what judged them (the policy, its profiles and why
each was applied, the waivers that applied) and the digests of the image and its partitions; each rule
whose status changed names what changed that it depends on. A rule whose status got worse (checked to
not checked, passed to unknown or failed) makes the exit code 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvmlint.policy.loader import Policy

MAX_LISTED = 200


RANK = {"pass": 0, "waived": 1, "skipped": 1, "unknown": 2, "fail": 3, "error": 3}
"""How far a status is from a checked pass: a rule that moves up this scale got worse."""


@dataclass
class Side:
    """One build: its facts and results as JSON documents, and its digests (inputs.json) when known."""

    name: str
    facts: dict[str, Any]
    results: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Diff:
    """Changes per fact, what judged them and the digests; rule status changes with their causes."""

    changes: dict[str, list[str]] = field(default_factory=dict)
    judged: dict[str, list[str]] = field(default_factory=dict)
    """Changes of the policy, its profiles and the waivers."""
    digests: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    worse: list[str] = field(default_factory=list)
    """The rules whose status got worse."""

    def render(self) -> str:
        lines = []
        for fact, items in [*self.changes.items(), *self.judged.items()]:
            lines.append(f"{fact}:")
            lines += [f"  {item}" for item in items[:MAX_LISTED]]
            if len(items) > MAX_LISTED:
                lines.append(f"  … {len(items) - MAX_LISTED} more")
        if self.digests:
            lines += ["digests:", *[f"  {d}" for d in self.digests]]
        lines += [f"rule {r}" for r in self.rules] or ["rules: no status changed"]
        if self.worse:
            lines.append(f"worse: {len(self.worse)} rules ({', '.join(self.worse)})")
        return "\n".join(lines) + "\n"


def load_side(path: Path, policy: Policy) -> Side:
    """A bundle as it is, or an image scanned now (root hash recomputed) with `policy`."""
    if path.is_dir() or path.suffix == ".tar":
        from cvmlint.evidence.bundle import read_bundle

        files = read_bundle(path)
        inputs = json.loads(files["inputs.json"]) if "inputs.json" in files else {}
        return Side(path.name, json.loads(files["facts.json"]), json.loads(files["results.json"]), inputs)
    from cvmlint.evidence.inputs import add_verity, image_inputs
    from cvmlint.facts.serialize import facts_to_json
    from cvmlint.pipeline import judge_image
    from cvmlint.report.json import report_to_json
    from cvmlint.scan import ScanOptions

    inputs = image_inputs(path)
    with judge_image(path, policy, ScanOptions(known_digest=inputs["sha256"])) as judged:
        facts = judged.facts(*COMPARED)  # not the measurement prediction: no change is listed from it
        report = report_to_json(judged.report, judged.report.exit_code())
        return Side(path.name, facts_to_json(facts), report, add_verity(inputs, facts))


def diff(a: Side, b: Side, policy: Policy) -> Diff:
    out = Diff()
    fa, fb = a.facts["facts"], b.facts["facts"]
    for name in COMPARED:
        items = COMPARED[name](fa.get(name), fb.get(name))
        if items:
            out.changes[name] = items
    out.judged = _judged(a.results, b.results)
    out.digests = _digests(a.inputs, b.inputs)
    reads = _rule_reads(policy)
    before = {r["rule"]: r for r in a.results["results"]}
    for rule in b.results["results"]:
        old = before.get(rule["rule"])
        if old is None or old["status"] == rule["status"]:
            continue
        causes = [f for f in reads.get(rule["rule"], ()) if f in out.changes]
        causes += [name for name in ("policy", "profiles") if name in out.judged]
        if "waived" in (old["status"], rule["status"]):
            causes.append("waivers")
        finding = (rule["findings"] or old["findings"] or [{}])[0]
        why = f": {finding['message']} at {finding.get('location', '')}" if finding else ""
        shown = ", ".join(causes) or "no fact it reads, no policy, profile or waiver changed"
        out.rules.append(f"{rule['rule']}: {old['status']} -> {rule['status']} (changed: {shown}){why}")
        if RANK.get(rule["status"], 3) > RANK.get(old["status"], 3):
            out.worse.append(rule["rule"])
    return out


def _judged(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[str]]:
    """The policy (name, version, digest), its profiles with why each applied, and the waivers used."""
    out: dict[str, list[str]] = {}
    pa, pb = a.get("policy") or {}, b.get("policy") or {}
    policy = [
        f"{key}: {_show(pa.get(key))} -> {_show(pb.get(key))}"
        for key in ("name", "version", "sha256")
        if pa.get(key) != pb.get(key)
    ]
    if policy:
        out["policy"] = policy
    sa, sb = pa.get("profile_sources") or {}, pb.get("profile_sources") or {}
    profiles = [f"+ {p} ({sb.get(p, 'applied')})" for p in pb.get("profiles", []) if p not in pa.get("profiles", [])]
    profiles += [f"- {p} ({sa.get(p, 'applied')})" for p in pa.get("profiles", []) if p not in pb.get("profiles", [])]
    if profiles:
        out["profiles"] = profiles
    wa, wb = _waivers(a), _waivers(b)
    waivers = [f"+ {w}" for w in sorted(wb - wa)] + [f"- {w}" for w in sorted(wa - wb)]
    if waivers:
        out["waivers"] = waivers
    return out


def _waivers(results: dict[str, Any]) -> set[str]:
    return {
        f"{r['rule']}: {f['waived_by'].get('reason', '')}".strip()
        for r in results.get("results", [])
        for f in r.get("findings") or []
        if isinstance(f.get("waived_by"), dict)
    }


def _digests(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The image's and each partition's SHA-256, and the verity root hash, where either side has them."""
    out = []
    if a.get("sha256") or b.get("sha256"):
        mark = "same" if a.get("sha256") == b.get("sha256") else "changed"
        out.append(f"image: {_digest(a.get('sha256'))} -> {_digest(b.get('sha256'))} ({mark})")
    parts_a = {p["number"]: p for p in a.get("partitions") or []}
    parts_b = {p["number"]: p for p in b.get("partitions") or []}
    for number in sorted(parts_a.keys() | parts_b.keys()):
        pa, pb = parts_a.get(number, {}), parts_b.get(number, {})
        mark = "same" if pa.get("sha256") == pb.get("sha256") else "changed"
        name = pb.get("type") or pa.get("type") or ""
        out.append(f"partition {number} {name}: {_digest(pa.get('sha256'))} -> {_digest(pb.get('sha256'))} ({mark})")
    va, vb = (a.get("verity") or {}).get("root_hash"), (b.get("verity") or {}).get("root_hash")
    if va or vb:
        out.append(f"verity root hash: {_digest(va)} -> {_digest(vb)} ({'same' if va == vb else 'changed'})")
    return out


def _digest(value: Any) -> str:
    return value if isinstance(value, str) and value else "(none)"


def _rule_reads(policy: Policy) -> dict[str, list[str]]:
    from cvmlint.policy.checker import fact_paths

    reads: dict[str, list[str]] = {}
    for rule in policy.rules:
        paths: set[str] = set()
        for target in rule.targets:
            for req in rule.requirements_for(target):
                paths |= fact_paths(req.expr, policy.scope)
        reads[rule.id] = sorted({p.split(".")[0].split("[")[0] for p in paths})
    return reads


def _items(value: Any, key: str) -> dict[str, Any] | None:
    if not isinstance(value, dict) or "items" not in value:
        return None
    return {item.get(key): item for item in value["items"]}


def _unknown_change(a: Any, b: Any) -> list[str]:
    ua, ub = isinstance(a, dict) and "unknown" in a, isinstance(b, dict) and "unknown" in b
    if ua or ub:
        return [] if a == b else [f"{_show(a)} -> {_show(b)}"]
    return []


def _show(value: Any) -> str:
    if isinstance(value, dict) and "unknown" in value:
        return f"unknown ({value['unknown']})"
    return json.dumps(value, sort_keys=True)[:200]


def _packages(a: Any, b: Any) -> list[str]:
    pa, pb = _items(a, "name"), _items(b, "name")
    if pa is None or pb is None:
        return _unknown_change(a, b)
    from cvmlint.policy.allowlist import version_compare

    out = [f"+ {n} {_version(pb[n])}" for n in sorted(set(pb) - set(pa))]
    out += [f"- {n} {_version(pa[n])}" for n in sorted(set(pa) - set(pb))]
    for n in sorted(set(pa) & set(pb)):
        va, vb = _version(pa[n]), _version(pb[n])
        if va != vb:
            direction = "upgraded" if version_compare(vb, va) > 0 else "downgraded"
            out.append(f"~ {n} {va} -> {vb} ({direction})")
    return out


def _version(item: dict[str, Any]) -> str:
    v = item.get("version")
    return v if isinstance(v, str) else "?"


def _files(a: Any, b: Any) -> list[str]:
    fa, fb = _items(a, "path"), _items(b, "path")
    if fa is None or fb is None:
        return _unknown_change(a, b)
    out = [f"+ {p}" for p in sorted(set(fb) - set(fa))] + [f"- {p}" for p in sorted(set(fa) - set(fb))]
    for p in sorted(set(fa) & set(fb)):
        changed = [k for k in ("type", "mode", "uid", "gid", "size", "target") if fa[p].get(k) != fb[p].get(k)]
        if changed:
            out.append(f"~ {p}: " + ", ".join(f"{k} {fa[p].get(k)} -> {fb[p].get(k)}" for k in changed))
    return out


def _params(value: Any) -> list[str] | None:
    if not isinstance(value, dict) or "items" not in value:
        return None
    return [
        p["name"] if p.get("value") is None else f"{p['name']}={_show(p['value']).strip(chr(34))}"
        for p in value["items"]
    ]


def _cmdline(a: Any, b: Any) -> list[str]:
    ca, cb = _params(a), _params(b)
    if ca is None or cb is None:
        return _unknown_change(a, b)
    return [] if ca == cb else [f"{' '.join(ca)}", f"-> {' '.join(cb)}"]


def _kernel(a: Any, b: Any) -> list[str]:
    if not isinstance(a, dict) or not isinstance(b, dict) or "unknown" in a or "unknown" in b:
        return _unknown_change(a, b)
    out = [
        f"{k}: {_show(a.get(k))} -> {_show(b.get(k))}"
        for k in ("version", "compression", "boot_protocol")
        if a.get(k) != b.get(k)
    ]
    ca, cb = _items(a.get("config"), "name") or {}, _items(b.get("config"), "name") or {}
    for name in sorted(set(ca) | set(cb)):
        va, vb = (ca.get(name) or {}).get("value", "n"), (cb.get(name) or {}).get("value", "n")
        if va != vb:
            out.append(f"{name}: {va} -> {vb}")
    sa, sb = set((a.get("strings") or {}).get("found") or []), set((b.get("strings") or {}).get("found") or [])
    out += [f"marker now found: {s}" for s in sorted(sb - sa)] + [f"marker gone: {s}" for s in sorted(sa - sb)]
    return out


def _verity(a: Any, b: Any) -> list[str]:
    return _record(a, b, ("root_hash", "data_root_hash", "tree_valid", "signed"))


def _record(a: Any, b: Any, keys: tuple[str, ...] | None = None) -> list[str]:
    if not isinstance(a, dict) or not isinstance(b, dict) or "unknown" in a or "unknown" in b:
        return _unknown_change(a, b)
    names = keys or tuple(k for k in sorted(set(a) | set(b)) if k not in ("where", "field_where"))
    return [f"{k}: {_show(a.get(k))} -> {_show(b.get(k))}" for k in names if a.get(k) != b.get(k)]


def _boot(a: Any, b: Any) -> list[str]:
    out = _record(a, b, ("loader", "shim", "secure_boot", "uki"))
    ba = _items((a or {}).get("binaries"), "path") if isinstance(a, dict) else None
    bb = _items((b or {}).get("binaries"), "path") if isinstance(b, dict) else None
    if ba is not None and bb is not None:
        out += [f"+ {p}" for p in sorted(set(bb) - set(ba))] + [f"- {p}" for p in sorted(set(ba) - set(bb))]
        out += [
            f"~ {p}: signer {ba[p].get('signer')} -> {bb[p].get('signer')}"
            for p in sorted(set(ba) & set(bb))
            if ba[p].get("signer") != bb[p].get("signer")
        ]
    return out


def _mounts(a: Any, b: Any) -> list[str]:
    ma, mb = _items(a, "path"), _items(b, "path")
    if ma is None or mb is None:
        return _unknown_change(a, b)
    out = [f"+ {p} ({mb[p].get('fstype')})" for p in sorted(set(mb) - set(ma))]
    out += [f"- {p} ({ma[p].get('fstype')})" for p in sorted(set(ma) - set(mb))]
    out += [
        f"~ {p}: {ma[p].get('fstype')} -> {mb[p].get('fstype')}"
        for p in sorted(set(ma) & set(mb))
        if ma[p].get("fstype") != mb[p].get("fstype")
    ]
    return out


COMPARED: dict[str, Callable[[Any, Any], list[str]]] = {
    "packages": _packages,
    "files": _files,
    "cmdline": _cmdline,
    "kernel": _kernel,
    "verity": _verity,
    "rootfs": _record,
    "boot": _boot,
    "mounts": _mounts,
    "os": _record,
}
"""The facts compared, each with how its changes are listed."""
