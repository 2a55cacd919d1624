"""Why each failing bundle fails: the exit code and the words of the reason, per fixture.

A denial test must assert the reason, not only the exit code: a bundle that fails for
another reason than the one its name promises (say, a parse error before the check
the fixture was made for) would otherwise go unnoticed. The reasons are sigstore-python's
or ours, as ``bundle verify --json`` reports them (``reason`` of a denial, exit 1;
``error.message`` of malformed input, exit 3).
"""

from __future__ import annotations

from typing import Any

from ..cli.conftest import CliResult

CHAIN = "failed to build timestamp certificate chain"
NOT_VALID_THEN = "cert is not valid at validation time"
INCONSISTENT = "transparency log entry is inconsistent with other materials"
NO_TIME = "not enough sources of verified time"
NO_CHECKPOINT = "entry must contain inclusion proof, with checkpoint"
DIGEST_MISMATCH = "Bundle message digest mismatch"
BAD_CHECKPOINT_SIG = "checkpoint: invalid signature"
SHORT_CHECKPOINT = "malformed LogCheckpoint: too few items in header"

# sigstore-conformance bundle-verify vectors ending in _fail: (exit code, reason).
CONFORMANCE_FAIL: dict[str, tuple[int, str]] = {
    "bundle-empty-certificate-chain_fail": (3, "expected non-empty certificate chain"),
    "bundle-from-wrong-instance_fail": (1, CHAIN),
    "bundle-invalid-base64-signature_fail": (3, "Invalid base64-encoded string"),
    "bundle-malformed-json_fail": (3, "not valid JSON"),
    "bundle-negative-log-index_fail": (3, "tlogEntries.0.logIndex"),
    "bundle-unknown-version_fail": (3, "mediaType"),
    # refused when parsed (a v0.1 entry without checkpoint), before its chain is looked at
    "bundle-with-root-cert_fail": (3, NO_CHECKPOINT),
    "checkpoint-bad-keyhint_fail": (1, "checkpoint: Signature not found for log ID"),
    "checkpoint-wrong-roothash_fail": (1, "Inclusion proof contains invalid root hash signature"),
    "dsse-invalid-sig_fail": (1, "DSSE: invalid signature"),
    "dsse-mismatch-envelope_fail": (1, "log entry payload hash does not match bundle"),
    "dsse-mismatch-sig_fail": (1, "log entry signatures do not match bundle"),
    "inclusion-proof-corrupted-hash_fail": (1, "inclusion proof contains invalid root hash"),
    # the altered key changes the entry's leaf hash: its inclusion proof no longer holds
    "incorrect-public-key_fail": (1, "inclusion proof contains invalid root hash"),
    # the certificate had expired by the (future) integrated time
    "integrated-time-in-future_fail": (1, NOT_VALID_THEN),
    "intoto-expired-certificate_fail": (1, NOT_VALID_THEN),
    "intoto-log-entry-mismatch_fail": (1, "intoto entry: signature mismatch"),
    "intoto-missing-inclusion-proof_fail": (3, "inclusionProof"),
    "intoto-set-outside-signing-cert-validity_fail": (1, NOT_VALID_THEN),
    "intoto-tsa-timestamp-outside-cert-validity_fail": (1, NOT_VALID_THEN),
    "invalid-checkpoint-signature_fail": (1, BAD_CHECKPOINT_SIG),
    "invalid-ct-key_fail": (1, "failed to verify SCT on signing certificate"),
    "invalid-inclusion-proof_fail": (3, NO_CHECKPOINT),
    "managed-key-no-key_fail": (1, "signed with a public key (not a Sigstore certificate)"),
    # the vector's key.pub is deliberately corrupt PEM
    "managed-key-wrong-key_fail": (3, "not a PEM public key"),
    "message-digest-mismatch_fail": (1, DIGEST_MISMATCH),
    "rekor2-checkpoint-missing-log-signature_fail": (1, "must contain at least one signature"),
    "rekor2-checkpoint-missing-origin_fail": (1, SHORT_CHECKPOINT),
    "rekor2-checkpoint-missing-root-hash_fail": (1, SHORT_CHECKPOINT),
    "rekor2-checkpoint-missing-size_fail": (1, SHORT_CHECKPOINT),
    "rekor2-checkpoint-no-matching-signature_fail": (1, BAD_CHECKPOINT_SIG),
    "rekor2-dsse-invalid-sig_fail": (1, "DSSE: invalid signature"),
    "rekor2-dsse-mismatch-envelope_fail": (1, INCONSISTENT),
    "rekor2-dsse-mismatch-sig_fail": (1, INCONSISTENT),
    "rekor2-no-inclusion-proof_fail": (3, "inclusionProof"),
    "rekor2-no-timestamp_fail": (3, "must contain an inclusion promise or signed timestamp"),
    "rekor2-timestamp-outside-trust-root-tsa-validity_fail": (1, NO_TIME),
    "rekor2-timestamp-outside-tsa-cert-validity_fail": (1, NO_TIME),
    "rekor2-timestamp-payload-mismatch_fail": (1, NO_TIME),
    "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail": (3, "Invalid Timestamp Response"),
    "rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail": (1, NO_TIME),
    "rekor2-timestamp-with-incorrect-time_fail": (1, NOT_VALID_THEN),
    "set-invalid-signature_fail": (1, "SET: invalid inclusion promise"),
    "signature-mismatch_fail": (1, "Signature is invalid for input"),
    "trust-root-tlog-missing-validity-start_fail": (3, "validFor.start"),
    "wrong-hashedrekord-artifact_fail": (1, INCONSISTENT),
    "wrong-hashedrekord-cert-and-sig_fail": (1, INCONSISTENT),
    "wrong-hashedrekord-entry_fail": (1, INCONSISTENT),
    "wrong-material_fail": (1, DIGEST_MISMATCH),
}

# tests/assets/sigstore/bundles/tsa: signed timestamps that must not count.
TSA_FAIL: dict[str, tuple[int, str]] = {
    "tsa/bundle.duplicate.sigstore": (1, "duplicate timestamp found"),
    "tsa/bundle.many_timestamp.sigstore": (1, "too many signed timestamp: 33 > 32"),
    "tsa/bundle.txt.late_timestamp.sigstore": (1, CHAIN),
}

# tests/assets/sigstore/bundles/invalid, per trust root ("production", "staging").
INVALID: dict[tuple[str, str], tuple[int, str]] = {
    ("invalid/Python-3.12.5.tgz.sigstore", "production"): (3, NO_CHECKPOINT),
    ("invalid/Python-3.12.5.tgz.sigstore", "staging"): (3, NO_CHECKPOINT),
    # a certificate and signature grafted onto another log entry (CVE-2022-36056): the
    # production chain is not this root's; under staging the entry does not match
    ("invalid/bundle_cve_2022_36056.txt.sigstore", "production"): (1, CHAIN),
    ("invalid/bundle_cve_2022_36056.txt.sigstore", "staging"): (1, INCONSISTENT),
    ("invalid/bundle_invalid_version.txt.sigstore", "production"): (3, "mediaType"),
    ("invalid/bundle_invalid_version.txt.sigstore", "staging"): (3, "mediaType"),
    ("invalid/bundle_no_cert_v1.txt.sigstore", "production"): (3, "expected non-empty certificate chain"),
    ("invalid/bundle_no_cert_v1.txt.sigstore", "staging"): (3, "expected non-empty certificate chain"),
    ("invalid/bundle_no_checkpoint.txt.sigstore", "production"): (3, NO_CHECKPOINT),
    ("invalid/bundle_no_checkpoint.txt.sigstore", "staging"): (3, NO_CHECKPOINT),
    ("invalid/bundle_no_log_entry.txt.sigstore", "production"): (3, "expected exactly one log entry"),
    ("invalid/bundle_no_log_entry.txt.sigstore", "staging"): (3, "expected exactly one log entry"),
    ("invalid/bundle_v3_no_signed_time.txt.sigstore.json", "production"): (3, "must contain an inclusion promise or signed timestamp"),
    ("invalid/bundle_v3_no_signed_time.txt.sigstore.json", "staging"): (3, "must contain an inclusion promise or signed timestamp"),
}  # fmt: skip

IDENTITY_MISMATCH = "which no identity rule allows"


def reason_of(result: CliResult) -> str:
    """The reason ``bundle verify --json`` gives for a denial (1) or malformed input (3)."""
    doc: dict[str, Any] = result.json()
    if "error" in doc:
        return str(doc["error"]["message"])
    assert doc["result"] == "FAILED", doc
    return str(doc["reason"])


def assert_fails_for(result: CliResult, expected: tuple[int, str], what: object) -> None:
    """``result`` failed with ``expected`` = (exit code, words of the reason)."""
    code, words = expected
    reason = reason_of(result)
    assert (result.code, words in reason) == (code, True), (what, result.code, reason)
