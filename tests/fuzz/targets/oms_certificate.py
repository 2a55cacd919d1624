"""interop.oms certificate path: a DER signing certificate carried in the bundle.

Input: DER bytes, placed as the leaf of ``x509CertificateChain`` in a bundle
whose envelope is really signed; checked against a real root. Checks: only
bad-input errors; a malformed or odd certificate is a problem in the
report, never an exception from cryptography.
"""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives.serialization import Encoding

from mlspec_attest.interop.oms.signature import check_model

from ._harness import input_file, main, parse_or_none
from ._oms import certificate_trust, certificates, model_dir, signed_bundle

PAYLOAD = json.dumps(
    {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model", "digest": {"sha256": "00" * 32}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False},
            "resources": [],
        },
    }
).encode()


def TestOneInput(data: bytes) -> None:
    doc = signed_bundle(PAYLOAD).to_json()
    root = certificates()[0].public_bytes(Encoding.DER)
    chain = [base64.b64encode(der).decode() for der in (data, root)]
    doc["verificationMaterial"] = {
        "x509CertificateChain": {"certificates": [{"rawBytes": raw} for raw in chain]},
        "tlogEntries": [],
    }
    signature = input_file(json.dumps(doc).encode(), "model.sig")
    report = parse_or_none(check_model, model_dir(), signature, certificate_trust(), workers=1)
    if report is not None:
        report.to_json()


if __name__ == "__main__":
    main(TestOneInput)
