"""`cvmlint evidence verify` and `replay`: is the bundle what was signed, and does its verdict follow
from its facts?"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from cvmlint.errors import InputError
from cvmlint.evidence.bundle import PREDICATE_TYPE, STATEMENT_TYPE, read_bundle
from cvmlint.evidence.dsse import SignatureError, payload, verify


@dataclass
class Check:
    """What verify or replay found: problems (each names the file or rule) and what it could not check."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def statement_of(files: dict[str, bytes], public_key: Any | None, check: Check) -> dict[str, Any] | None:
    """The bundle's statement; its signature verified when a key is given."""
    raw = files.get("statement.json")
    if raw is None:
        check.problems.append("statement.json is missing")
        return None
    try:
        envelope = json.loads(raw)
        body = verify(envelope, public_key) if public_key is not None else payload(envelope)
        statement = json.loads(body)
    except (ValueError, SignatureError) as err:
        check.problems.append(f"statement.json: {err}")
        return None
    signatures = envelope.get("signatures") or []
    if public_key is None:
        if signatures:
            check.problems.append(
                f"statement.json is signed by key {signatures[0].get('keyid', '?')[:16]}…, "
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
    return statement


def verify_bundle(
    path: Path, public_key: Any | None = None, image: Path | None = None, allow_unsigned: bool = False
) -> Check:
    """Signature, every file's digest, and (with `image`) the image against the subject."""
    check = Check()
    files = read_bundle(path)
    statement = statement_of(files, public_key, check)
    if statement is None:
        return check
    listed: dict[str, str] = statement["predicate"].get("files", {})
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
    subject = statement["subject"][0]["digest"].get("sha256", "")
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
    (by `today`, the real date unless given)."""
    from cvmlint.facts.serialize import facts_from_json
    from cvmlint.policy import apply_waivers, evaluate, load_policy, load_waivers
    from cvmlint.report.json import report_to_json

    check = Check()
    files = read_bundle(path)
    for needed in ("facts.json", "results.json", "policy/policy.json"):
        if needed not in files:
            raise InputError(f"{path}: not an evidence bundle ({needed} is missing)")
    meta = json.loads(files["policy/policy.json"])
    recorded = json.loads(files["results.json"])
    with tempfile.TemporaryDirectory(prefix="cvmlint-replay-") as tmp:
        for name, data in files.items():
            if name.startswith("policy/"):
                target = Path(tmp) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        policy = load_policy(Path(tmp) / "policy" / meta["main"], meta.get("profiles", []))
        facts = facts_from_json(json.loads(files["facts.json"]), f"{path}/facts.json")
        report = evaluate(policy, facts)
        waivers = (
            load_waivers(Path(tmp) / "policy" / meta["waivers"], meta.get("waivers_given_as"))
            if meta.get("waivers")
            else []
        )
        made = date.fromisoformat(meta["evaluated_on"])
        apply_waivers(report, waivers, today=made)
        replayed = report_to_json(report, recorded.get("exit_code", 0))
        expired = [w for w in waivers if w.expired(today or date.today()) and not w.expired(made)]
    for w in expired:
        check.notes.append(
            f"waiver for {w.rule} ({w.where}) was in force when the bundle was made ({made}), "
            f"has expired since ({w.expires})"
        )
    if policy.sha256 != recorded["policy"]["sha256"]:
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


def _first_difference(old: list[Any], new: list[Any]) -> str:
    for a, b in zip(old, new, strict=False):
        if a != b:
            return f" (finding {a.get('message')!r} at {a.get('location')} vs {b.get('message')!r})"
    if len(old) != len(new):
        return f" ({len(old)} findings recorded, {len(new)} now)"
    return ""
