"""Key-signed bundles logged in a real (loopback) Rekor: every entry kind the key path accepts.

The conformance vectors cover managed-key ``hashedrekord`` bundles; here the loopback
instance logs ``hashedrekord`` 0.0.1, ``dsse`` 0.0.1 and ``intoto`` 0.0.2 entries for a
local ECDSA key, and ``bundle verify --key K --trust-config TC`` must accept each, and
deny it under another key, another artifact, another instance, or with an entry that
records something else than the bundle.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, pae
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key, write_key_pair

from .conftest import Cli, CliResult
from .instance import SigstoreInstance
from .reasons import assert_fails_for

BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def log(instance: SigstoreInstance, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` to the instance's Rekor; the response as a bundle ``tlogEntries`` item."""
    import requests

    response = requests.post(f"{instance.url}/api/v1/log/entries", json=body, timeout=30)
    assert response.status_code == 201, response.text
    [(_, entry)] = response.json().items()
    logged = json.loads(base64.b64decode(entry["body"]))
    proof = entry["verification"]["inclusionProof"]
    return {
        "logIndex": str(entry["logIndex"]),
        "logId": {"keyId": b64(bytes.fromhex(entry["logID"]))},
        "kindVersion": {"kind": logged["kind"], "version": logged["apiVersion"]},
        "integratedTime": str(entry["integratedTime"]),
        "inclusionPromise": {"signedEntryTimestamp": entry["verification"]["signedEntryTimestamp"]},
        "inclusionProof": {
            "logIndex": str(proof["logIndex"]),
            "rootHash": b64(bytes.fromhex(proof["rootHash"])),
            "treeSize": str(proof["treeSize"]),
            "hashes": [b64(bytes.fromhex(h)) for h in proof["hashes"]],
            "checkpoint": {"envelope": proof["checkpoint"]},
        },
        "canonicalizedBody": entry["body"],
    }


def statement(digest: str) -> bytes:
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "model.bin", "digest": {"sha256": digest}}],
            "predicateType": "https://in-toto.io/attestation/link/v0.3",
            "predicate": {"name": "train"},
        }
    ).encode()


def hashedrekord(
    instance: SigstoreInstance, key: LocalKeySigner, artifact: bytes
) -> dict[str, Any]:
    private = key.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    digest = hashlib.sha256(artifact).digest()
    sig = private.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    entry = log(
        instance,
        {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
                "signature": {
                    "content": b64(sig),
                    "publicKey": {"content": b64(key.public_key.pem().encode())},
                },
            },
        },
    )
    return {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {
            "publicKey": {"hint": key.public_key.keyid},
            "tlogEntries": [entry],
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64(digest)},
            "signature": b64(sig),
        },
    }


def dsse_envelope(key: LocalKeySigner, artifact: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    payload = statement(hashlib.sha256(artifact).hexdigest())
    sig = key.sign(pae(INTOTO_PAYLOAD_TYPE, payload))
    envelope = {
        "payload": b64(payload),
        "payloadType": INTOTO_PAYLOAD_TYPE,
        "signatures": [{"sig": b64(sig)}],
    }
    return envelope, payload, sig


def dsse(instance: SigstoreInstance, key: LocalKeySigner, artifact: bytes) -> dict[str, Any]:
    envelope, _, _ = dsse_envelope(key, artifact)
    # The proposed form, as clients send it; the server stores what Rekor persists.
    entry = log(
        instance,
        {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "proposedContent": {
                    "envelope": json.dumps(envelope),
                    "verifiers": [b64(key.public_key.pem().encode())],
                }
            },
        },
    )
    return {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {
            "publicKey": {"hint": key.public_key.keyid},
            "tlogEntries": [entry],
        },
        "dsseEnvelope": envelope,
    }


def intoto(instance: SigstoreInstance, key: LocalKeySigner, artifact: bytes) -> dict[str, Any]:
    envelope, payload, sig = dsse_envelope(key, artifact)
    # What Rekor persists for intoto 0.0.2: payload and signature base64-encoded once more.
    recorded = {
        "payloadType": INTOTO_PAYLOAD_TYPE,
        "payload": b64(envelope["payload"].encode()),
        "signatures": [
            {"sig": b64(b64(sig).encode()), "publicKey": b64(key.public_key.pem().encode())}
        ],
    }
    entry = log(
        instance,
        {
            "apiVersion": "0.0.2",
            "kind": "intoto",
            "spec": {
                "content": {
                    "envelope": recorded,
                    "hash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(json.dumps(envelope).encode()).hexdigest(),
                    },
                    "payloadHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(payload).hexdigest(),
                    },
                }
            },
        },
    )
    return {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {
            "publicKey": {"hint": key.public_key.keyid},
            "tlogEntries": [entry],
        },
        "dsseEnvelope": envelope,
    }


# Why each tampering is denied, per entry kind: the signature (message or DSSE) is checked
# first; a log entry for another signature fails the entry-body check.
SIGNATURE_REASONS = {
    "hashedrekord": "the signature does not verify over sha256",
    "dsse": "the DSSE signature does not verify under key",
    "intoto": "the DSSE signature does not verify under key",
}
ARTIFACT_REASONS = {
    "hashedrekord": "the bundle's message digest is not the artifact's sha256",
    "dsse": "the in-toto statement has no subject with sha256",
    "intoto": "the in-toto statement has no subject with sha256",
}
GRAFT_REASONS = {
    "hashedrekord": "the log entry is inconsistent with the bundle",
    "dsse": "the log entry is inconsistent with the bundle",
    "intoto": "intoto entry: signature mismatch",
}

Maker = Callable[[SigstoreInstance, LocalKeySigner, bytes], dict[str, Any]]
KINDS: dict[str, Maker] = {"hashedrekord": hashedrekord, "dsse": dsse, "intoto": intoto}


@pytest.mark.parametrize("kind", list(KINDS))
def test_logged_key_bundles(
    kind: str,
    cli: Cli,
    tmp_path: Path,
    sigstore_instance: SigstoreInstance,
    sigstore_instance_factory: Callable[[str], SigstoreInstance],
) -> None:
    key = generate_key(KeyType.ECDSA_P256)
    _, pub = write_key_pair(key, tmp_path / "signer")
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights v1")
    bundle = tmp_path / "model.bin.sigstore.json"
    bundle.write_text(json.dumps(KINDS[kind](sigstore_instance, key, artifact.read_bytes())))

    def verify(*extra: str | Path, path: Path = bundle, trust: Path | None = None) -> CliResult:
        tc = trust or sigstore_instance.trust_config_path
        result = cli("bundle", "verify", path, "--trust-config", tc, "--json", *extra)
        assert result.clean, result.err
        return result

    assert verify("--artifact", artifact, "--key", pub).code == 0
    # another key
    _, other_pub = write_key_pair(generate_key(KeyType.ECDSA_P256), tmp_path / "other")
    why = SIGNATURE_REASONS[kind]
    assert_fails_for(verify("--artifact", artifact, "--key", other_pub), (1, why), kind)
    # another artifact
    other = tmp_path / "other.bin"
    other.write_bytes(b"weights v2")
    why = ARTIFACT_REASONS[kind]
    assert_fails_for(verify("--artifact", other, "--key", pub), (1, why), kind)
    # another instance's trust root (its Rekor key is not this log's)
    elsewhere = sigstore_instance_factory("other").trust_config_path
    denied = verify("--artifact", artifact, "--key", pub, trust=elsewhere)
    assert_fails_for(denied, (1, "transparency-log verification failed"), kind)
    # a log entry for another signature, grafted onto this bundle
    graft = json.loads(bundle.read_text())
    donor = KINDS[kind](sigstore_instance, key, b"weights v2")
    graft["verificationMaterial"]["tlogEntries"] = donor["verificationMaterial"]["tlogEntries"]
    grafted = tmp_path / "grafted.sigstore.json"
    grafted.write_text(json.dumps(graft))
    denied = verify("--artifact", artifact, "--key", pub, path=grafted)
    assert_fails_for(denied, (1, GRAFT_REASONS[kind]), kind)
