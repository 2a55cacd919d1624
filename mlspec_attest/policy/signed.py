"""Signed policies: a DSSE envelope whose payload is the self-contained policy JSON."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from msgspec import Struct

from mlspec_attest.errors import MalformedDocumentError, PolicyError
from mlspec_attest.formats.dsse import Envelope
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.jsonio import canonical, load_file, loads_strict
from mlspec_attest.formats.limits import MAX_BUNDLE_BYTES, MAX_DSSE_PAYLOAD_BYTES
from mlspec_attest.formats.signer import PublicKeyVerifier, Signer
from mlspec_attest.policy.compiler import compile_policy
from mlspec_attest.policy.model import Policy

POLICY_PAYLOAD_TYPE = "application/vnd.mlspec-attest.policy+json"
YAML_SUFFIXES = (".yaml", ".yml")
"""A policy file with one of these suffixes is YAML; any other is a signed policy (JSON)."""


class SignedPolicy(Struct, frozen=True):
    """A parsed (not yet trusted) signed policy."""

    envelope: Envelope
    policy: Policy
    document: dict[str, Any]

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the signed payload bytes: what stages bind to."""
        return "sha256:" + hashlib.sha256(self.envelope.payload).hexdigest()

    def unsigned_by(self, owner_keys: Sequence[PublicKeyVerifier]) -> list[PublicKeyVerifier]:
        """The owner keys for which the envelope carries no valid signature."""
        return [k for k in owner_keys if not self.envelope.verified_by(k)]


def sign_policy(policy: Policy, signers: Sequence[Signer]) -> Envelope:
    """Sign ``policy`` (keys embedded) by every signer in ``signers``."""
    return Envelope.sign(canonical(policy.to_json()), POLICY_PAYLOAD_TYPE, signers)


def parse_signed_policy(doc: Any, *, what: str = "signed policy") -> SignedPolicy:
    """Parse a signed policy envelope; does not check signatures or expiry."""
    if isinstance(doc, dict) and "apiVersion" in doc:
        raise MalformedDocumentError(
            f"{what}: this policy is not signed",
            remedy="sign it first: "
            + named("policy_sign_file", path="POLICY.yaml", out="POLICY.signed.json"),
        )
    envelope = Envelope.from_json(doc, what=what)
    if envelope.payload_type != POLICY_PAYLOAD_TYPE:
        raise MalformedDocumentError(
            f"{what}: payloadType {envelope.payload_type!r} is not a policy ({POLICY_PAYLOAD_TYPE})"
        )
    payload = loads_strict(
        envelope.payload, what=f"{what}: payload", max_bytes=MAX_DSSE_PAYLOAD_BYTES
    )
    policy, problems = compile_policy(payload, base_dir=None)
    errors = [str(p) for p in problems if p.severity == "error"]
    if policy is None:
        raise PolicyError(f"{what}: signed policy payload is invalid", errors)
    return SignedPolicy(envelope, policy, payload)


def load_signed_policy(path: Path) -> SignedPolicy:
    if path.suffix in YAML_SUFFIXES:
        raise MalformedDocumentError(
            f"{path}: expected a signed policy (JSON from `policy sign`), not YAML",
            remedy=named("policy_sign_file", path=path, out=path.with_suffix(".signed.json")),
        )
    return parse_signed_policy(
        load_file(path, what=str(path), max_bytes=MAX_BUNDLE_BYTES, kind="a signed policy"),
        what=str(path),
    )
