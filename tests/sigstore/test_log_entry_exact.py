"""The key-bundle log-entry body check, exactly: what mutation testing found unpinned.

``verify_bundle`` refuses an entry of a kind outside hashedrekord, dsse and intoto
before its body is read (its integrated time is not supported: pinned by
tests/sigstore/test_log_entry_checks.py); :func:`check_key_entry_body` refuses one
too, by name, whoever calls it. The entry here is genuinely logged by the loopback
Rekor (instance.py) and parsed as sigstore-python parses a bundle's entries.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from sigstore import errors as sigstore_errors
from sigstore_models.rekor.v1 import TransparencyLogEntry

from mlspec_attest.signing.keys import KeyType, generate_key
from mlspec_attest.signing.sigstore.log_entry import check_key_entry_body

from .instance import SigstoreInstance
from .test_key_transparency import log

ARTIFACT = b"weights v1"
DIGEST = hashlib.sha256(ARTIFACT).digest()


def test_a_key_entry_of_another_kind_is_refused_by_name(
    sigstore_instance: SigstoreInstance,
) -> None:
    signer = generate_key(KeyType.ECDSA_P256)
    assert isinstance(signer.private_key, ec.EllipticCurvePrivateKey)
    signature = signer.private_key.sign(DIGEST, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    body = {
        "apiVersion": "0.0.1",
        "kind": "rekord",
        "spec": {"data": {"hash": {"algorithm": "sha256", "value": DIGEST.hex()}}},
    }
    entry = TransparencyLogEntry.from_json(json.dumps(log(sigstore_instance, body)))
    with pytest.raises(sigstore_errors.VerificationError) as info:
        check_key_entry_body(None, entry, signer.public_key, signature, DIGEST)
    assert str(info.value) == "log entry type rekord/0.0.1 is not supported for key bundles"
