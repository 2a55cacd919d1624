"""The Sigstore side of the model-signing signature check, exactly: what mutation testing
found unpinned.

The sigstore-conformance vectors are checked word for word here (tests/sigstore/
test_conformance_oms.py checks that the reason contains bundle verify's words): the
problem's message, the signing certificate named from either bundle layout, and a
message-signature bundle whose digest is not a sha256 refused before verification.
A keyless DSSE bundle of another payload type is made on the loopback instance
(tests/sigstore/instance.py) as sigstore-python's ``Signer.sign_dsse`` makes one,
with that payload type: a sound Sigstore bundle that is no model signature.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from mlspec_attest.errors import MalformedDocumentError, UsageError
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, pae
from mlspec_attest.interop.oms.signature_check import verify_signature
from mlspec_attest.interop.oms.trust import SigstoreTrust
from mlspec_attest.signing.sigstore.identity import SigstoreIdentity
from mlspec_attest.signing.sigstore.trust_root import TrustRoot
from mlspec_attest.signing.sigstore.verify import verify_bundle

from ..sigstore.instance import OIDC_ISSUER, SigstoreInstance
from ..support import asset

CONFORMANCE = asset("sigstore/conformance/bundle-verify")
ROOT = asset("sigstore/trust/sigstore-4.5.1-embedded/production/trusted_root.json")
IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ISSUER = "https://token.actions.githubusercontent.com"


def _trust(name: str) -> SigstoreTrust:
    own = CONFORMANCE / name / "trusted_root.json"
    return SigstoreTrust(own if own.exists() else ROOT, IDENTITY, ISSUER)


def _bundle(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((CONFORMANCE / name / "bundle.sigstore.json").read_text())
    return doc


def _write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "model.sig"
    path.write_text(json.dumps(doc))
    return path


def _sha256_of_der(raw: str) -> str:
    return x509.load_der_x509_certificate(base64.b64decode(raw)).fingerprint(hashes.SHA256()).hex()


def test_a_denial_gives_bundle_verify_reason_once() -> None:
    name = "dsse-invalid-sig_fail"
    check = verify_signature(CONFORMANCE / name / "bundle.sigstore.json", _trust(name))
    assert not check.verified
    assert [(p.check, p.message) for p in check.problems] == [
        ("sigstore", "Sigstore verification failed: DSSE: invalid signature")
    ]
    # the signing certificate of a v0.3 bundle (verificationMaterial.certificate)
    leaf = _bundle(name)["verificationMaterial"]["certificate"]["rawBytes"]
    assert check.signer["certificate"] == {"sha256": _sha256_of_der(leaf)}


def test_the_signing_certificate_of_a_chain_bundle_is_named() -> None:
    """v0.1/v0.2 bundles carry the leaf first in x509CertificateChain."""
    name = "intoto-expired-certificate_fail"
    chain = _bundle(name)["verificationMaterial"]["x509CertificateChain"]["certificates"]
    check = verify_signature(CONFORMANCE / name / "bundle.sigstore.json", _trust(name))
    assert not check.verified
    assert check.signer["certificate"] == {"sha256": _sha256_of_der(chain[0]["rawBytes"])}
    assert [p.message for p in check.problems] == [
        "Sigstore verification failed: failed to build timestamp certificate chain: "
        "validation failed: cert is not valid at validation time "
        "(encountered processing <Certificate(subject=<Name()>, ...)>)"
    ]


def _b64_32_with(junk: str) -> str:
    text = base64.b64encode(bytes(range(32))).decode()
    return text[:8] + junk + text[8:]


@pytest.mark.parametrize(
    "digest",
    [
        {"algorithm": "SHA2_256", "digest": "%%%"},  # not base64 (binascii.Error)
        {"algorithm": "SHA2_256", "digest": "é" * 4},  # not ASCII (ValueError)
        {"algorithm": "SHA2_256", "digest": _b64_32_with("!")},  # 32 bytes, once junk is dropped
        {"algorithm": "SHA2_256", "digest": _b64_32_with("\n")},
        {"algorithm": "SHA2_256", "digest": base64.b64encode(bytes(31)).decode()},
        {"algorithm": "SHA2_256"},
        {"algorithm": "SHA2_384", "digest": base64.b64encode(bytes(32)).decode()},
    ],
    ids=["not-base64", "not-ascii", "junk", "newline", "31-bytes", "missing", "sha384"],
)
def test_a_message_signature_without_a_sha256_digest_is_refused_before_verification(
    digest: dict[str, str], tmp_path: Path
) -> None:
    doc = _bundle("happy-path-v0.3")
    doc["messageSignature"]["messageDigest"] = digest
    path = _write(tmp_path, doc)
    with pytest.raises(MalformedDocumentError) as caught:
        verify_signature(path, _trust("happy-path-v0.3"))
    assert str(caught.value) == f"signature {path}: bundle carries no DSSE envelope"


def test_a_signature_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, [_bundle("happy-path-intoto-in-dsse-v3")])
    with pytest.raises(MalformedDocumentError) as caught:
        verify_signature(path, _trust("happy-path-intoto-in-dsse-v3"))
    assert str(caught.value) == f"signature {path}: a Sigstore bundle must be a JSON object"


def test_an_identity_rule_without_issuer_is_a_usage_error() -> None:
    name = "happy-path-intoto-in-dsse-v3"
    with pytest.raises(UsageError) as caught:
        verify_signature(
            CONFORMANCE / name / "bundle.sigstore.json", SigstoreTrust(ROOT, IDENTITY, "")
        )
    assert str(caught.value) == "a Sigstore identity needs an issuer"


def _keyless_dsse(instance: SigstoreInstance, payload_type: str, payload: bytes) -> Any:
    """A keyless DSSE bundle of ``payload_type``, made as ``Signer.sign_dsse`` makes one."""
    from sigstore import dsse
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext
    from sigstore_models.intoto import Envelope as EnvelopeModel
    from sigstore_models.intoto import Signature as SignatureModel

    config = ClientTrustConfig.from_json(instance.trust_config_path.read_text())
    context = SigningContext.from_trust_config(config)
    with context.signer(IdentityToken(instance.token("ml@example.com"))) as signer:
        cert = signer._signing_cert()
        sig = signer._private_key.sign(pae(payload_type, payload), ec.ECDSA(hashes.SHA256()))
        envelope = dsse.Envelope(
            EnvelopeModel(
                payload=base64.b64encode(payload),
                payload_type=payload_type,
                signatures=[SignatureModel(sig=base64.b64encode(sig))],
            )
        )
        request = context._rekor._build_dsse_request(envelope=envelope, certificate=cert)
        return json.loads(signer._finalize_sign(cert, envelope, request).to_json())


def test_a_sigstore_bundle_of_another_payload_type_is_no_model_signature(
    sigstore_instance: SigstoreInstance, tmp_path: Path
) -> None:
    payload = json.dumps({"model": "weights"}).encode()
    doc = _keyless_dsse(sigstore_instance, "application/json", payload)
    trust_config = sigstore_instance.trust_config_path
    rule = SigstoreIdentity(OIDC_ISSUER, identity="ml@example.com")
    # a sound bundle: the one Sigstore verifier takes it
    verified = verify_bundle(doc, trust=TrustRoot.from_file(trust_config), identities=[rule])
    assert (verified.payload_type, verified.payload) == ("application/json", payload)
    path = _write(tmp_path, doc)
    with pytest.raises(MalformedDocumentError) as caught:
        verify_signature(path, SigstoreTrust(trust_config, "ml@example.com", OIDC_ISSUER))
    assert str(caught.value) == (
        f"signature {path}: DSSE payloadType 'application/json' is not {INTOTO_PAYLOAD_TYPE}"
    )
