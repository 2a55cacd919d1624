"""The strict reader and the canonical writer agree on numbers, so the verdict never
depends on how many copies of an attestation the run holds.

RFC 8785 writes a double from 2^53 up to 1e21 as plain integer digits, beyond the
integers any reader accepts, so ``canonical()`` refuses it. The reader used to take
it: one signed attestation holding ``1.2e17`` passed, while two identical copies of
it made the verifier canonicalize their claims to compare them, and verification
stopped with exit 3 (``value: number 1.2e+17 …``), naming no file or stage. Now the
reader refuses it at admission, naming the file: both runs are denied the same way.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.verify.report import Check

from .support import Pipeline

UNWRITABLE = "number 1.2e17 cannot be written back as canonical JSON"


def _sign_raw_with_big_double(pipeline: Pipeline, path: Path) -> bytes:
    """``path``'s statement with ``details.big = 1.2e17``, signed for real by its signer.

    The payload is written by hand: ``canonical()`` refuses the number, as it should.
    """
    doc = json.loads(path.read_bytes())
    payload = base64.b64decode(doc["dsseEnvelope"]["payload"]).decode()
    anchor = '"details":{'
    assert anchor in payload
    rest = payload.split(anchor, 1)[1]
    injected = '"big":1.2e17' + ("" if rest.startswith("}") else ",")
    raw = payload.replace(anchor, anchor + injected, 1).encode()
    signer = pipeline.keys["release-engineer"]
    envelope = Envelope.sign(raw, INTOTO_PAYLOAD_TYPE, [signer.signer], keyid_hint=False)
    return canonical(Bundle.for_public_key(envelope, signer.keyid).to_json())


def _malformed(pipeline: Pipeline) -> tuple[bool, list[tuple[str | None, str]]]:
    report = pipeline.verify()  # never raises: a bad document is a failure, not an error
    found = [(f.stage, f.source) for f in report.failures if f.check is Check.ATTESTATION_MALFORMED]
    assert all(UNWRITABLE in f.message for f in report.failures if f.source), report.failures
    return report.passed, found


def test_one_copy_and_two_copies_of_an_unwritable_number_are_denied_alike(
    pipeline: Pipeline,
) -> None:
    pipeline.run()
    package = pipeline.bundle_path("package")
    bundle = _sign_raw_with_big_double(pipeline, package)
    package.write_bytes(bundle)

    passed, malformed = _malformed(pipeline)
    assert not passed
    assert malformed == [("package", package.name)]

    copy = package.with_name("package.copy.sigstore.json")
    copy.write_bytes(bundle)
    passed, malformed = _malformed(pipeline)
    assert not passed
    assert sorted(malformed) == sorted([("package", package.name), ("package", copy.name)])
