"""Keyless verification through sigstore/_compat.py, exactly: what mutation testing found
unpinned.

A log entry's ``kindVersion`` sits outside what its inclusion promise signs (body,
integrated time, log index, log id), so an altered one leaves the promise valid; the
keyless path then refuses to take the entry's integrated time, naming the kind it claims,
and ``ConformingVerifier.verify_dsse`` refuses an entry claiming to be ``intoto`` without
a DSSE envelope. The bundle is a real one (the conformance suite's happy path, production
trust root).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sigstore import errors as sigstore_errors
from sigstore.models import Bundle
from sigstore.verify.policy import Identity

from mlspec_attest.errors import SigstoreVerificationError
from mlspec_attest.signing.sigstore._compat import ConformingVerifier
from mlspec_attest.signing.sigstore.identity import SigstoreIdentity
from mlspec_attest.signing.sigstore.trust_root import TrustRoot
from mlspec_attest.signing.sigstore.verify import sha256_file, verify_bundle

from ..support import asset

CONFORMANCE = asset("sigstore/conformance/bundle-verify")
ISSUER = "https://token.actions.githubusercontent.com"
IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
SIGNER = SigstoreIdentity(ISSUER, identity=IDENTITY)


def _happy_path(kind: str, version: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (CONFORMANCE / "happy-path-v0.2" / "bundle.sigstore.json").read_text()
    )
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    assert entry["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.1"}
    entry["kindVersion"] = {"kind": kind, "version": version}
    return doc


def test_the_unaltered_bundle_verifies() -> None:
    verified = verify_bundle(
        _happy_path("hashedrekord", "0.0.1"),
        trust=TrustRoot.embedded("production"),
        identities=[SIGNER],
        artifact_sha256=sha256_file(CONFORMANCE / "a.txt"),
    )
    doc = verified.to_json()
    assert (doc["method"], doc["content"], doc["transparencyLogEntries"]) == (
        "sigstore",
        "message-signature",
        1,
    )
    assert doc["signedTimes"] == [
        {"source": "transparency-log", "time": "2023-07-12T15:56:36+00:00"}
    ]


@pytest.mark.parametrize(
    ("kind", "version"), [("rekord", "0.0.1"), ("hashedrekord", "0.0.2"), ("dsse", "0.0.2")]
)
def test_a_promised_time_of_an_entry_claiming_another_kind_is_refused(
    kind: str, version: str
) -> None:
    trust = TrustRoot.embedded("production")
    with pytest.raises(SigstoreVerificationError) as info:
        verify_bundle(
            _happy_path(kind, version),
            trust=trust,
            identities=[SIGNER],
            artifact_sha256=sha256_file(CONFORMANCE / "a.txt"),
        )
    assert info.value.message == (
        "bundle: Sigstore verification failed: "
        f"integrated time is not supported for {kind}/{version} entries"
    )
    assert info.value.remedy == (
        "the bundle is altered, or it comes from another Sigstore instance than "
        f"the trust root ({trust.source})"
    )


def test_an_intoto_entry_without_a_dsse_envelope_is_refused_by_the_verifier() -> None:
    # ConformingVerifier.verify_dsse takes over Rekor intoto 0.0.2 entries from
    # sigstore-python; asked to verify a bundle that carries no DSSE envelope (here a
    # message signature whose entry claims that kind), it refuses, as sigstore does for
    # the kinds it keeps.
    verifier = ConformingVerifier(trusted_root=TrustRoot.embedded("production").sigstore())
    policy = Identity(identity=IDENTITY, issuer=ISSUER)
    intoto = Bundle.from_json(json.dumps(_happy_path("intoto", "0.0.2")))
    with pytest.raises(sigstore_errors.VerificationError) as info:
        verifier.verify_dsse(intoto, policy)
    assert str(info.value) == "an intoto entry needs a DSSE envelope"
    hashedrekord = Bundle.from_json(json.dumps(_happy_path("hashedrekord", "0.0.1")))
    with pytest.raises(sigstore_errors.VerificationError) as info:
        verifier.verify_dsse(hashedrekord, policy)
    assert str(info.value) == "cannot perform DSSE verification on a bundle without a DSSE envelope"
