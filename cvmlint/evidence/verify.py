"""`cvmlint evidence verify` and `replay`: is the bundle what was signed, and does its verdict follow
from its facts?"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from cvmlint.errors import InputError
from cvmlint.evidence.bundle import PREDICATE_TYPE, STATEMENT_TYPE, member_name, read_bundle
from cvmlint.evidence.dsse import SignatureError, payload, verify
from cvmlint.jsonin import expect, get, items, load_json


@dataclass
class Check:
    """What verify or replay found: problems (each names the file or rule) and what it could not check."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def statement_of(files: dict[str, bytes], public_key: Any | None, check: Check) -> dict[str, Any] | None:
    """The bundle's statement, its shape checked; its signature verified when a key is given."""
    raw = files.get("statement.json")
    if raw is None:
        check.problems.append("statement.json is missing")
        return None
    envelope = load_json(raw, "statement.json")
    try:
        body = verify(envelope, public_key) if public_key is not None else payload(envelope)
    except SignatureError as err:
        check.problems.append(f"statement.json: {err}")
        return None
    statement = load_json(body, "statement.json (its payload)")
    signatures = envelope.get("signatures") or []
    if not isinstance(signatures, list):
        check.problems.append("statement.json: $.signatures: expected a list")
        return None
    if public_key is None:
        if signatures:
            first = signatures[0] if isinstance(signatures[0], dict) else {}
            check.problems.append(
                f"statement.json is signed by key {str(first.get('keyid', '?'))[:16]}…, "
                "and no key was given to check it (--key PUBLIC.pem)"
            )
        else:
            check.notes.append("the bundle is UNSIGNED: its digests are consistent, but anyone could have written them")
    if (
        not isinstance(statement, dict)
        or statement.get("_type") != STATEMENT_TYPE
        or statement.get("predicateType") != PREDICATE_TYPE
    ):
        check.problems.append(f"statement.json: not an in-toto Statement with predicate {PREDICATE_TYPE}")
        return None
    _statement_shape(statement)
    return statement


def _statement_shape(statement: dict[str, Any]) -> None:
    """What verify reads from a statement, checked before it is used (the file and JSON path named)."""
    name = "statement.json (its payload)"
    subjects = items(get(statement, "subject", list, name), dict, name, "$.subject")
    if not subjects:
        raise InputError(f"{name}: $.subject: empty (a statement is about at least one subject)")
    digest = get(subjects[0], "digest", dict, name, "$.subject[0]")
    get(digest, "sha256", str, name, "$.subject[0].digest")
    listed = get(get(statement, "predicate", dict, name), "files", dict, name, "$.predicate")
    for key, value in listed.items():
        member_name(expect(key, str, name, "$.predicate.files"), Path("statement.json"))
        expect(value, str, name, f"$.predicate.files[{key!r}]")


def verify_bundle(
    path: Path, public_key: Any | None = None, image: Path | None = None, allow_unsigned: bool = False
) -> Check:
    """Signature, every file's digest, and (with `image`) the image against the subject."""
    check = Check()
    files = read_bundle(path)
    statement = statement_of(files, public_key, check)
    if statement is None:
        return check
    listed: dict[str, str] = statement["predicate"]["files"]
    for name, digest in sorted(listed.items()):
        data = files.get(name)
        if data is None:
            check.problems.append(f"{name}: listed in the statement, missing from the bundle")
        elif hashlib.sha256(data).hexdigest() != digest:
            check.problems.append(
                f"{name}: sha256 {hashlib.sha256(data).hexdigest()} differs from the statement's "
                f"{digest}: the file was changed"
            )
    for name in sorted(set(files) - set(listed) - {"statement.json"}):
        check.problems.append(f"{name}: in the bundle but not covered by the statement")
    subject = statement["subject"][0]["digest"]["sha256"]
    if image is not None:
        from cvmlint.evidence.inputs import file_sha256

        actual = file_sha256(image)
        if actual != subject:
            check.problems.append(f"{image}: sha256 {actual} is not the statement's subject {subject}")
        else:
            check.notes.append(f"{image.name} is the subject (sha256 {subject})")
    if not allow_unsigned and public_key is None and not any("signed by key" in p for p in check.problems):
        check.problems.append("the bundle is unsigned (--allow-unsigned to accept consistent digests alone)")
    return check


def replay_bundle(path: Path, today: date | None = None) -> tuple[Check, list[dict[str, Any]]]:
    """Evaluate the bundled facts with the bundled policy, profiles and waivers (judged on the day the
    bundle was made); the problems name each rule whose result differs. Also: waivers expired since
    (by `today`, the real date unless given). Everything read is a file of the bundle: the policy's
    includes and data files are confined to the bundle's copy."""
    from cvmlint.facts.serialize import facts_from_json
    from cvmlint.policy import apply_waivers, evaluate, load_policy, load_waivers
    from cvmlint.policy.loader import Confine
    from cvmlint.report.json import report_to_json

    check = Check()
    files = read_bundle(path)
    for needed in ("facts.json", "results.json", "policy/policy.json"):
        if needed not in files:
            raise InputError(f"{path}: not an evidence bundle ({needed} is missing)")
    meta = _policy_meta(files)
    recorded = _recorded(files)
    with tempfile.TemporaryDirectory(prefix="cvmlint-replay-") as tmp:
        bundled = Path(tmp) / "policy"
        for name, data in files.items():
            if name.startswith("policy/"):
                target = Path(tmp) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        shipped = bundled / meta["shipped"] if meta["shipped"] else None
        policy = load_policy(bundled / meta["main"], meta["profiles"], Confine(bundled, shipped))
        facts = facts_from_json(load_json(files["facts.json"], "facts.json"), f"{path}/facts.json")
        report = evaluate(policy, facts)
        waivers = load_waivers(bundled / meta["waivers"], meta["waivers_given_as"]) if meta["waivers"] else []
        made = meta["evaluated_on"]
        apply_waivers(report, waivers, today=made)
        replayed = report_to_json(report, recorded["exit_code"])
        expired = [w for w in waivers if w.expired(today or date.today()) and not w.expired(made)]
    for w in expired:
        check.notes.append(
            f"waiver for {w.rule} ({w.where}) was in force when the bundle was made ({made}), "
            f"has expired since ({w.expires})"
        )
    if policy.sha256 != recorded["sha256"]:
        check.problems.append(f"policy/: its digest {policy.sha256} is not the one results.json names")
    before = {r["rule"]: r for r in recorded["results"]}
    for rule in replayed["results"]:
        old = before.pop(rule["rule"], None)
        if old is None:
            check.problems.append(f"{rule['rule']}: not in results.json")
        elif (old["status"], old["findings"]) != (rule["status"], rule["findings"]):
            check.problems.append(
                f"{rule['rule']}: results.json says {old['status']}, the facts give "
                f"{rule['status']}" + _first_difference(old["findings"], rule["findings"])
            )
    check.problems += [f"{rule}: in results.json, not in the policy" for rule in before]
    return check, replayed["results"]


def _policy_meta(files: dict[str, bytes]) -> dict[str, Any]:
    """policy/policy.json, checked: the files it names are the bundle's own, under policy/."""
    name = "policy/policy.json"
    meta = load_json(files[name], name)

    def bundled(key: str, required: bool) -> str | None:
        value = meta.get(key) if isinstance(meta, dict) else None
        if value is None and not required:
            return None
        text = expect(value, str, name, f"$.{key}")
        if not (key == "shipped" and text == "."):
            member_name(text, Path(name))
        if key != "shipped" and f"policy/{text}" not in files:
            raise InputError(f"{name}: $.{key}: policy/{text} is not a file of the bundle")
        return text

    main = bundled("main", True)
    waivers = bundled("waivers", False)
    shipped = bundled("shipped", False)
    profiles = items(get(meta, "profiles", list, name, default=[]), str, name, "$.profiles")
    given = meta.get("waivers_given_as")
    evaluated = get(meta, "evaluated_on", str, name)
    try:
        made = date.fromisoformat(evaluated)
    except ValueError:
        raise InputError(f"{name}: $.evaluated_on: {evaluated[:40]!r} is not a date (YYYY-MM-DD)") from None
    return {
        "main": main,
        "waivers": waivers,
        "shipped": shipped,
        "profiles": profiles,
        "waivers_given_as": given if isinstance(given, str) else None,
        "evaluated_on": made,
    }


def _recorded(files: dict[str, bytes]) -> dict[str, Any]:
    """results.json, checked: the rules with their status and findings, the policy digest, the exit code."""
    name = "results.json"
    doc = load_json(files[name], name)
    results = items(get(doc, "results", list, name), dict, name, "$.results")
    for i, result in enumerate(results):
        for key, kind in (("rule", str), ("status", str), ("findings", list)):
            get(result, key, kind, name, f"$.results[{i}]")
        for j, finding in enumerate(result["findings"]):
            expect(finding, dict, name, f"$.results[{i}].findings[{j}]")
    return {
        "results": results,
        "sha256": get(get(doc, "policy", dict, name), "sha256", str, name, "$.policy"),
        "exit_code": get(doc, "exit_code", int, name, default=0),
    }


def _first_difference(old: list[Any], new: list[Any]) -> str:
    for a, b in zip(old, new, strict=False):
        if a != b:
            return f" (finding {a.get('message')!r} at {a.get('location')} vs {b.get('message')!r})"
    if len(old) != len(new):
        return f" ({len(old)} findings recorded, {len(new)} now)"
    return ""
