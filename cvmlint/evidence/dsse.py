"""DSSE envelopes (secure-systems-lab/dsse v1) signed with a local Ed25519 or ECDSA P-256 key.

    envelope = {"payloadType": "application/vnd.in-toto+json", "payload": base64(statement),
                "signatures": [{"keyid": "<sha256 of the public key, SubjectPublicKeyInfo DER>", "sig": base64}]}

The signature covers PAE(payloadType, payload) = b"DSSEv1 <len(type)> <type> <len(body)> <body>",
never the JSON around it. `cryptography` does the signing; nothing here parses ASN.1 by hand.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvmlint.errors import CvmlintError

PAYLOAD_TYPE = "application/vnd.in-toto+json"


class SignatureError(CvmlintError):
    """A key cannot be used, or an envelope does not verify."""


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


@dataclass(frozen=True)
class SigningKey:
    """A private key read from a PEM file, and what identifies it."""

    key: Any
    keyid: str
    algorithm: str


def keyid_of(public_key: Any) -> str:
    """The hex SHA-256 of the public key's SubjectPublicKeyInfo (DER)."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _algorithm(key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        return "ecdsa-p256"
    raise SignatureError(f"unsupported key type {type(key).__name__}: use an Ed25519 or ECDSA P-256 key")


def load_signing_key(path: Path) -> SigningKey:
    """A PEM private key (unencrypted PKCS#8 or traditional)."""
    from cryptography.hazmat.primitives import serialization

    data = _read_key(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise SignatureError(f"{path}: not an unencrypted PEM private key: {err}") from None
    return SigningKey(key, keyid_of(key.public_key()), _algorithm(key))


def load_public_key(path: Path) -> Any:
    """A PEM public key. A private key is refused: a verifier never needs it, and one passed around to
    verify with has left the signer's hands."""
    from cryptography.hazmat.primitives import serialization

    data = _read_key(path)
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as err:
        if b"PRIVATE KEY-----" in data:
            raise SignatureError(
                f"{path} is a private key: --key takes the signer's public key",
                hint=f"use {path}.pub (`cvmlint evidence keygen` writes it beside the private key), and keep the "
                "private key with the signer only",
            ) from None
        raise SignatureError(f"{path}: not a PEM public key: {err}") from None
    _algorithm(key)
    return key


def _read_key(path: Path) -> bytes:
    """A key file: a regular file within the key-bytes limit (never /dev/zero, a FIFO, a sparse giant)."""
    from cvmlint.files import Refused, read_bounded

    try:
        return read_bounded(path, "key-bytes", "key")
    except Refused as err:
        raise SignatureError(str(err)) from None


def sign(statement: bytes, key: SigningKey) -> dict[str, Any]:
    """A DSSE envelope around `statement`, signed with `key`."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    message = pae(PAYLOAD_TYPE, statement)
    ecdsa = key.algorithm != "ed25519"
    sig = key.key.sign(message, ec.ECDSA(hashes.SHA256())) if ecdsa else key.key.sign(message)
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(statement).decode(),
        "signatures": [{"keyid": key.keyid, "sig": base64.b64encode(sig).decode()}],
    }


def unsigned(statement: bytes) -> dict[str, Any]:
    """The envelope without signatures (a bundle made without a key)."""
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(statement).decode(), "signatures": []}


def payload(envelope: Any) -> bytes:
    """The envelope's statement bytes (not verified)."""
    if not isinstance(envelope, dict) or envelope.get("payloadType") != PAYLOAD_TYPE:
        raise SignatureError(f"not a DSSE envelope of {PAYLOAD_TYPE}")
    try:
        return base64.b64decode(envelope["payload"], validate=True)
    except (KeyError, TypeError, ValueError) as err:
        raise SignatureError(f"the envelope's payload is not base64: {err}") from None


def verify(envelope: Any, public_key: Any) -> bytes:
    """The statement bytes, if one signature by `public_key` verifies; else a SignatureError."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    body = payload(envelope)
    keyid = keyid_of(public_key)
    listed = envelope.get("signatures", [])
    if not isinstance(listed, list):
        raise SignatureError("the envelope's signatures are not a list")
    signatures = [s for s in listed if isinstance(s, dict) and s.get("keyid") == keyid]
    if not signatures:
        raise SignatureError(f"no signature by key {keyid[:16]}… in the envelope")
    message = pae(PAYLOAD_TYPE, body)
    for entry in signatures:
        try:
            sig = base64.b64decode(entry["sig"], validate=True)
            if _algorithm(public_key) == "ed25519":
                public_key.verify(sig, message)
            else:
                public_key.verify(sig, message, ec.ECDSA(hashes.SHA256()))
            return body
        except (InvalidSignature, KeyError, TypeError, ValueError):
            continue
    raise SignatureError(f"the signature by key {keyid[:16]}… does not verify: the statement was changed")


def keygen(private_path: Path, algorithm: str = "ed25519") -> Path:
    """Write a new private key (mode 0600) and its public key beside it (`.pub`); the public key's path."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    key: Any = (
        ed25519.Ed25519PrivateKey.generate() if algorithm == "ed25519" else ec.generate_private_key(ec.SECP256R1())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if private_path.exists():
        raise SignatureError(f"{private_path} exists: not overwriting a key")
    private_path.touch(mode=0o600)
    private_path.write_bytes(private)
    public_path = private_path.with_name(private_path.name + ".pub")
    public_path.write_bytes(public)
    return public_path


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no insignificant whitespace: the same value gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
