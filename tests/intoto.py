"""Attestations checked with the in-toto project's own libraries (in-toto's DSSE Envelope with a
securesystemslib key, in-toto-attestation's Statement), not with cvmlint's verifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def verified_statement(envelope: bytes, public_key_pem: Path) -> dict[str, Any]:
    """The envelope's statement, after in-toto verified its signature and the Statement's shape."""
    from cryptography.hazmat.primitives import serialization
    from google.protobuf import json_format
    from in_toto.models.metadata import Envelope
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement
    from securesystemslib.signer import SSlibKey

    from cvmlint.evidence.dsse import keyid_of

    public = serialization.load_pem_public_key(public_key_pem.read_bytes())
    key = SSlibKey.from_crypto(public, keyid=keyid_of(public))
    parsed = Envelope.from_dict(json.loads(envelope))
    assert parsed.verify([key], 1) != {}  # raises when the signature does not verify
    message = json_format.Parse(parsed.payload, statement_pb2.Statement())
    Statement.copy_from_pb(message).validate()
    statement: dict[str, Any] = json.loads(parsed.payload)
    return statement
