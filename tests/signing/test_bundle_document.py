"""Every bundle goes through one document check (review finding F4).

``bundle verify --key`` used to accept a key bundle whose ``mediaType`` was "evil/x",
null, 5, {} or an unknown version, and unknown members anywhere in it (a DSSE
signature's, the verification material's), while the store, ``inspect`` and
sigstore-python refused them. Now :func:`~mlspec_attest.formats.bundle.check_document`
is the one check, for :meth:`Bundle.from_json` and ``verify_bundle`` alike; unknown
members are refused as sigstore-python's strict models refuse them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.bundle import Bundle, check_document, sign_to_bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.jsonio import canonical, load_file
from mlspec_attest.signing.sigstore.verify import verify_bundle

from ..support import ASSETS_DIR, KeyPair
from .conftest import Cli

SHA = "ab" * 32
STATEMENT = canonical(
    {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model.bin", "digest": {"sha256": SHA}}],
        "predicateType": "https://in-toto.io/attestation/link/v0.3",
        "predicate": {"name": "train"},
    }
)
Edit = Callable[[dict[str, Any]], None]


@pytest.fixture
def signed(keys: dict[str, KeyPair]) -> tuple[dict[str, Any], KeyPair]:
    pair = keys["ml-engineer"]
    bundle, _ = sign_to_bundle(STATEMENT, INTOTO_PAYLOAD_TYPE, pair.signer)
    return json.loads(canonical(bundle.to_json())), pair


def _refused(doc: dict[str, Any], pair: KeyPair) -> str:
    """The one message both readers refuse ``doc`` with."""
    with pytest.raises(MalformedDocumentError) as verified:
        verify_bundle(doc, trust=None, key=pair.public, artifact_sha256=SHA)
    with pytest.raises(MalformedDocumentError) as loaded:
        Bundle.from_json(doc)
    assert verified.value.message == loaded.value.message
    assert verified.value.exit_code == 3
    return verified.value.message


def test_the_honest_bundle_verifies(signed: tuple[dict[str, Any], KeyPair]) -> None:
    doc, pair = signed
    assert verify_bundle(doc, trust=None, key=pair.public, artifact_sha256=SHA).keyid == pair.keyid


@pytest.mark.parametrize(
    "media_type",
    ["evil/x", None, 5, {}, [], "", "application/vnd.dev.sigstore.bundle.v0.9+json"],
)
def test_unknown_media_types_are_refused_by_the_verifier(
    signed: tuple[dict[str, Any], KeyPair], media_type: object
) -> None:
    doc, pair = signed
    doc["mediaType"] = media_type
    assert _refused(doc, pair) == f"bundle: unsupported bundle mediaType {media_type!r}"
    del doc["mediaType"]
    assert _refused(doc, pair) == "bundle: unsupported bundle mediaType None"


UNKNOWN_MEMBERS: dict[str, tuple[Edit, str]] = {
    "dsse-signature": (
        lambda d: d["dsseEnvelope"]["signatures"][0].update(extra=1),
        "bundle: dsseEnvelope.signatures[0]: unknown field(s) ['extra']",
    ),
    "bundle": (lambda d: d.update(note="x"), "bundle: unknown field(s) ['note']"),
    "snake-case-alias": (
        lambda d: d.update(media_type="evil/x"),
        "bundle: unknown field(s) ['media_type']",
    ),
    "material": (
        lambda d: d["verificationMaterial"].update(x=1),
        "bundle: verificationMaterial: unknown field(s) ['x']",
    ),
    "public-key": (
        lambda d: d["verificationMaterial"]["publicKey"].update(x=1),
        "bundle: verificationMaterial.publicKey: unknown field(s) ['x']",
    ),
    "log-entry": (
        lambda d: d["verificationMaterial"].update(tlogEntries=[{"logIndex": "1", "x": 1}]),
        "bundle: verificationMaterial.tlogEntries[0]: unknown field(s) ['x']",
    ),
    "timestamps": (
        lambda d: d["verificationMaterial"].update(timestampVerificationData={"stamps": []}),
        "bundle: verificationMaterial.timestampVerificationData: unknown field(s) ['stamps']",
    ),
    "certificate": (
        lambda d: d["verificationMaterial"].update(certificate={"rawBytes": "AA==", "x": 1}),
        "bundle: verificationMaterial.certificate: unknown field(s) ['x']",
    ),
}


@pytest.mark.parametrize("case", list(UNKNOWN_MEMBERS))
def test_unknown_members_are_refused(signed: tuple[dict[str, Any], KeyPair], case: str) -> None:
    doc, pair = signed
    edit, message = UNKNOWN_MEMBERS[case]
    edit(doc)
    assert _refused(doc, pair) == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (5, "timestampVerificationData is not an object"),
        ({"rfc3161Timestamps": 5}, "timestampVerificationData.rfc3161Timestamps is not a list"),
        ({"rfc3161Timestamps": [{"signedTimestamp": 5}]}, "signedTimestamp is not text"),
    ],
)
def test_malformed_timestamps_are_refused(
    signed: tuple[dict[str, Any], KeyPair], data: object, message: str
) -> None:
    doc, pair = signed
    doc["verificationMaterial"]["timestampVerificationData"] = data
    assert _refused(doc, pair).endswith(message)


def test_timestamps_a_key_alone_cannot_check_are_said_to_be_unchecked(
    signed: tuple[dict[str, Any], KeyPair],
) -> None:
    doc, pair = signed
    stamp = {"signedTimestamp": base64.b64encode(b"not a timestamp").decode()}
    doc["verificationMaterial"]["timestampVerificationData"] = {"rfc3161Timestamps": [stamp]}
    verified = verify_bundle(doc, trust=None, key=pair.public, artifact_sha256=SHA)
    assert verified.notes == ("1 signed timestamp not checked (no trust root given)",)


def test_forms_model_signing_wrote_are_still_read(
    signed: tuple[dict[str, Any], KeyPair],
) -> None:
    doc, pair = signed  # model-signing <= 1.0.1: the key itself in publicKey; keyid null
    doc["verificationMaterial"]["publicKey"] = {"rawBytes": "AA==", "keyDetails": "X"}
    doc["dsseEnvelope"]["signatures"][0]["keyid"] = None
    assert verify_bundle(doc, trust=None, key=pair.public, artifact_sha256=SHA).keyid == pair.keyid


def _stored_bundles() -> list[Path]:
    found = []
    for path in sorted(ASSETS_DIR.rglob("*")):
        if path.is_file() and path.stat().st_size < 1_000_000 and path.suffix != ".pem":
            try:
                doc = json.loads(path.read_bytes())
            except (ValueError, UnicodeDecodeError):
                continue
            media_type = doc.get("mediaType", "") if isinstance(doc, dict) else ""
            if str(media_type).startswith("application/vnd.dev.sigstore.bundle"):
                found.append(path)
    return found


def test_every_real_bundle_in_the_assets_passes_the_check() -> None:
    bundles = _stored_bundles()
    assert len(bundles) > 50  # sigstore-conformance, sigstore-python, model-signing
    refused = []
    for path in bundles:
        try:
            check_document(load_file(path), str(path.relative_to(ASSETS_DIR)))
        except MalformedDocumentError as exc:
            refused.append(exc.message)
    # the one vector whose point is an unknown bundle version
    assert [m.split(":")[0] for m in refused] == [
        "sigstore/conformance/bundle-verify/bundle-unknown-version_fail/bundle.sigstore.json"
    ]


@pytest.mark.parametrize("media_type", ["evil/x", None])
def test_bundle_verify_exits_3_on_an_unknown_media_type(
    cli: Cli, tmp_path: Path, signed: tuple[dict[str, Any], KeyPair], media_type: str | None
) -> None:
    doc, pair = signed
    doc["mediaType"] = media_type
    path = tmp_path / "b.sigstore.json"
    path.write_bytes(canonical(doc))
    result = cli("bundle", "verify", path, "--key", pair.pub_path, "--digest", f"sha256:{SHA}")
    assert result.code == 3, result.out + result.err
    assert f"unsupported bundle mediaType {media_type!r}" in result.err
