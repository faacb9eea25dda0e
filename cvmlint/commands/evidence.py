"""`cvmlint evidence …`: make keys, verify, replay and compare evidence bundles."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from cvmlint.cliargs import GROUPS, Opt, command
from cvmlint.commands.common import POLICY, PROFILE, fail, load_policy

if TYPE_CHECKING:
    from cvmlint.evidence.verify import Check

GROUPS["evidence"] = "Make, verify, replay and compare evidence bundles."


class KeyAlgorithm(enum.StrEnum):
    """Signing key types."""

    ed25519 = "ed25519"
    ecdsa_p256 = "ecdsa-p256"


@command(
    "evidence keygen",
    Opt(
        ("key",),
        "key",
        "Where to write the private key (PEM, mode 0600); the public key goes beside it as KEY.pub.",
        kind=Path,
    ),
    Opt(("--algorithm",), "algorithm", "Key type (default ed25519).", kind=KeyAlgorithm, default=KeyAlgorithm.ed25519),
)
def evidence_keygen(key: Path, algorithm: KeyAlgorithm) -> None:
    """Make a key pair for signing evidence (--sign-key) and verifying it (--key)."""
    from cvmlint.evidence.dsse import keygen, load_signing_key

    public = keygen(key, algorithm.value)
    print(f"private key {key}, public key {public}, key id {load_signing_key(key).keyid}")


def _check_exit(check: Check) -> NoReturn:
    for note in check.notes:
        print(f"note: {note}")
    for problem in check.problems:
        print(f"MISMATCH: {problem}")
    print("verified" if check.ok else f"NOT verified: {len(check.problems)} problem(s)")
    raise SystemExit(0 if check.ok else 1)


@command(
    "evidence verify",
    Opt(("bundle",), "bundle", "Evidence bundle: a directory or a .tar file.", kind=Path),
    Opt(("--key",), "key", "PEM public key the statement must be signed by.", kind=Path),
    Opt(("--image",), "image", "Re-hash this image against the subject.", kind=Path),
    Opt(
        ("--allow-unsigned",), "allow_unsigned", "Accept an unsigned bundle whose digests are consistent.", switch=True
    ),
)
def evidence_verify(bundle: Path, key: Path | None, image: Path | None, allow_unsigned: bool) -> None:
    """Check the signature, every file's digest, and (with --image) the image. Exit 0 verified, 1 mismatch."""
    from cvmlint.evidence.dsse import load_public_key
    from cvmlint.evidence.verify import verify_bundle

    if not bundle.exists():
        fail(f"{bundle}: no such bundle")
    _check_exit(verify_bundle(bundle, load_public_key(key) if key else None, image, allow_unsigned))


@command("evidence replay", Opt(("bundle",), "bundle", "Evidence bundle: a directory or a .tar file.", kind=Path))
def evidence_replay(bundle: Path) -> None:
    """Evaluate the bundled facts with the bundled policy, profiles and waivers; exit 0 when the results are
    exactly the bundled ones, 1 naming each rule that differs."""
    from cvmlint.evidence.verify import replay_bundle

    if not bundle.exists():
        fail(f"{bundle}: no such bundle")
    check, results = replay_bundle(bundle)
    print(f"replayed {len(results)} rules from {bundle}")
    _check_exit(check)


@command(
    "evidence diff",
    Opt(("a",), "a", "The earlier build: a bundle or an image.", kind=Path),
    Opt(("b",), "b", "The later build: a bundle or an image.", kind=Path),
    POLICY,
    PROFILE,
)
def evidence_diff(a: Path, b: Path, policy_path: Path | None, profile: list[str] | None) -> None:
    """What changed between two builds, and each rule whose status changed with what caused it.

    Exit 0: no rule got worse; 1: a rule's status got worse (checked to skipped, pass to unknown or fail)."""
    from cvmlint.evidence.diff import diff, load_side

    policy = load_policy(policy_path, profile)
    for path in (a, b):
        if not path.exists():
            fail(f"{path}: no such bundle or image")
    result = diff(load_side(a, policy), load_side(b, policy), policy)
    print(result.render(), end="")
    if result.worse:
        raise SystemExit(1)
