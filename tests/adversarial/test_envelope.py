"""Envelope and format tricks: DSSE, Sigstore bundles and the in-toto statement inside.

The attacker edits bundle files in the store (no key), or is an insider who signs
odd statements with a real functionary key. Insider re-signs target ``package``
(the last stage) where the causal ordering of later stages would only add noise.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from mlspec_attest.digest.artifact import digest_path
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.policy.signed import POLICY_PAYLOAD_TYPE

from ..support import STAGES, Pipeline, read_bundle
from .kit import (
    Cli,
    Scenario,
    case,
    edit_bundle,
    expect,
    make_bundle,
    mlspec,
    resign,
    scenario,
    statement_of,
    write_doc,
)

M = __name__
MALFORMED = "attestation-malformed"
ZERO = "0" * 64


@scenario(
    "control-honest-pipeline", "nothing: the honest run, copied (the baseline of every scenario)", 0
)
def test_control(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    expect(cli.verify(hp), case)


# ------------------------------------------------------------ payload type / PAE
@scenario(
    "pae-payload-type-relabelled",
    "change split's payloadType to application/json without re-signing (PAE covers the type)",
    1,
    ["signature"],
)
def test_payload_type_relabelled(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    edit_bundle(
        hp.bundle_path("split"),
        lambda d: d["dsseEnvelope"].__setitem__("payloadType", "application/json"),
    )
    expect(cli.verify(hp), case)


@pytest.mark.parametrize(
    ("case", "payload_type"),
    [
        case(
            M,
            "payload-type-resigned-as-json",
            "the split functionary re-signs the split statement as application/json",
            1,
            [MALFORMED, "stage-missing"],
            "is not an in-toto statement",
            "application/json",
        ),
        case(
            M,
            "payload-type-resigned-as-policy",
            "the split functionary signs the statement with the signed-policy payloadType",
            1,
            [MALFORMED, "stage-missing"],
            "is not an in-toto statement",
            POLICY_PAYLOAD_TYPE,
        ),
        case(
            M,
            "payload-type-case-variant",
            "re-signed as APPLICATION/VND.IN-TOTO+JSON (a case variant of the in-toto type)",
            1,
            [MALFORMED],
            "is not an in-toto statement",
            INTOTO_PAYLOAD_TYPE.upper(),
        ),
        case(
            M,
            "payload-type-with-parameter",
            "re-signed as application/vnd.in-toto+json; charset=utf-8",
            1,
            [MALFORMED],
            "is not an in-toto statement",
            INTOTO_PAYLOAD_TYPE + "; charset=utf-8",
        ),
    ],
)
def test_payload_type_resigned(case: Scenario, payload_type: str, hp: Pipeline, cli: Cli) -> None:
    resign(hp, "split", hp.keys["data-engineer"].signer, payload_type=payload_type)
    expect(cli.verify(hp), case)


@scenario(
    "signed-policy-dropped-into-run",
    "wrap the owner-signed policy envelope in a bundle and drop it into the run as a stage",
    1,
    ["signer-not-allowed"],
    "a key the policy does not know",
)
def test_signed_policy_as_stage(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    envelope = json.loads(hp.signed_policy_path.read_bytes())
    doc = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": hp.keys["owner"].keyid}},
        "dsseEnvelope": envelope,
    }
    write_doc(hp.store.run_dir(hp.run_id) / "package.owner.sigstore.json", doc)
    expect(cli.verify(hp), case)


# ------------------------------------------------------------ several signatures
@scenario(
    "one-envelope-both-train-signatures",
    "replace train's two files by one envelope carrying both functionaries' signatures",
    1,
    ["threshold"],
    note="one attestation file counts for one key (docs/verification.md § 5)",
)
def test_one_envelope_two_signatures(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    eng, rev = hp.bundle_path("train", "ml-engineer"), hp.bundle_path("train", "ml-reviewer")
    payload = base64.b64decode(read_bundle(eng)["dsseEnvelope"]["payload"])
    signers = [hp.keys["ml-engineer"].signer, hp.keys["ml-reviewer"].signer]
    eng.unlink()
    rev.unlink()
    write_doc(eng, make_bundle(payload, signers))
    expect(cli.verify(hp), case)


@scenario(
    "extra-intruder-signature",
    "append an intruder's valid signature (over the same PAE) to split's honest envelope",
    0,
)
def test_extra_intruder_signature(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    path = hp.bundle_path("split")
    payload = base64.b64decode(read_bundle(path)["dsseEnvelope"]["payload"])
    signers = [hp.keys["data-engineer"].signer, hp.keys["intruder"].signer]
    write_doc(path, make_bundle(payload, signers))
    expect(cli.verify(hp), case)


@scenario(
    "hint-names-unknown-key",
    "intruder signature first and the hint naming the intruder; the real signature second",
    0,
)
def test_hint_unknown_key(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    path = hp.bundle_path("split")
    payload = base64.b64decode(read_bundle(path)["dsseEnvelope"]["payload"])
    intruder = hp.keys["intruder"]
    doc = make_bundle(payload, [intruder.signer, hp.keys["data-engineer"].signer])
    assert doc["verificationMaterial"]["publicKey"]["hint"] == intruder.keyid
    write_doc(path, doc)
    expect(cli.verify(hp), case)


# ------------------------------------------------------------ base64 variants
def _set_payload_text(path: Any, text: str) -> None:
    edit_bundle(path, lambda d: d["dsseEnvelope"].__setitem__("payload", text))


def _split_variant(hp: Pipeline, *, padded: bool) -> dict[str, Any]:
    """Split's statement with a signer-local environment field (not part of the claim)
    sized so its standard base64 has a '+' or '/' (which the URL-safe alphabet spells
    differently) and, if ``padded``, '=' padding."""
    statement = statement_of(hp.bundle_path("split"))
    for k in range(1, 300):
        statement["predicate"]["environment"]["pad"] = "\u00ff" * k
        text = base64.b64encode(canonical(statement)).decode()
        if ("+" in text or "/" in text) and (text.endswith("=") or not padded):
            return statement
    raise AssertionError("no suitable padding found")


def _add_variant(hp: Pipeline, statement: dict[str, Any], encode: Any) -> None:
    """Store an insider's variant of split (same claim) with its payload re-encoded."""
    doc = make_bundle(canonical(statement), [hp.keys["data-engineer"].signer])
    standard = doc["dsseEnvelope"]["payload"]
    doc["dsseEnvelope"]["payload"] = encode(standard)
    assert doc["dsseEnvelope"]["payload"] != standard
    write_doc(hp.store.run_dir(hp.run_id) / "split.variant.sigstore.json", doc)


@scenario(
    "payload-base64-url-safe",
    "an insider adds a variant of split (same claim) with its payload in URL-safe base64",
    0,
)
def test_payload_urlsafe(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    _add_variant(
        hp,
        _split_variant(hp, padded=False),
        lambda text: base64.urlsafe_b64encode(base64.b64decode(text)).decode(),
    )
    expect(cli.verify(hp), case)


@scenario(
    "payload-base64-unpadded",
    "an insider adds a variant of split (same claim) whose standard base64 payload has its "
    "'=' padding stripped",
    1,
    [MALFORMED],
    "not valid base64",
    note="fail-closed, though unpadded URL-safe base64 is read (dsse.py b64decode_strict)",
)
def test_payload_unpadded(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    _add_variant(hp, _split_variant(hp, padded=True), lambda text: text.rstrip("="))
    expect(cli.verify(hp), case)


@scenario(
    "payload-base64-line-wrapped",
    "wrap split's base64 payload at 76 characters (MIME style) without re-signing",
    1,
    [MALFORMED],
    "not valid base64",
)
def test_payload_wrapped(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    path = hp.bundle_path("split")
    text = read_bundle(path)["dsseEnvelope"]["payload"]
    _set_payload_text(path, "\n".join(text[i : i + 76] for i in range(0, len(text), 76)))
    expect(cli.verify(hp), case)


# ------------------------------------------------------------ bundle fields
@scenario(
    "bundle-media-type-unknown-version",
    "relabel split's bundle as mediaType ...bundle.v0.4+json",
    1,
    [MALFORMED],
    "unsupported bundle mediaType",
)
def test_media_type_unknown(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    edit_bundle(
        hp.bundle_path("split"),
        lambda d: d.__setitem__("mediaType", "application/vnd.dev.sigstore.bundle.v0.4+json"),
    )
    expect(cli.verify(hp), case)


@scenario(
    "bundle-media-type-v0.1",
    "relabel split's bundle with the old v0.1 media type (outside the signature)",
    0,
)
def test_media_type_old(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    edit_bundle(
        hp.bundle_path("split"),
        lambda d: d.__setitem__(
            "mediaType", "application/vnd.dev.sigstore.bundle+json;version=0.1"
        ),
    )
    expect(cli.verify(hp), case)


@scenario(
    "bundle-key-hint-and-certificate",
    "add a certificate next to the publicKey hint of split's bundle (is it keyless or not?)",
    1,
    ["signature"],
    "keyless signature does not verify",
)
def test_hint_and_certificate(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    cert = base64.b64encode(hp.keys["data-engineer"].pem.encode()).decode()
    edit_bundle(
        hp.bundle_path("split"),
        lambda d: d["verificationMaterial"].__setitem__("certificate", {"rawBytes": cert}),
    )
    expect(cli.verify(hp), case)


@scenario(
    "hint-points-at-another-functionary",
    "point split's publicKey.hint at the release engineer's key (a real functionary)",
    1,
    ["signature"],
    "signature does not verify",
)
def test_hint_other_functionary(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    other = hp.keys["release-engineer"].keyid
    edit_bundle(
        hp.bundle_path("split"),
        lambda d: d["verificationMaterial"].__setitem__("publicKey", {"hint": other}),
    )
    expect(cli.verify(hp), case)


@scenario("hint-removed", "drop the publicKey hint from split's bundle (every key is tried)", 0)
def test_hint_removed(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    edit_bundle(hp.bundle_path("split"), lambda d: d["verificationMaterial"].pop("publicKey"))
    expect(cli.verify(hp), case)


@scenario(
    "envelope-unknown-field",
    "add an unsigned field next to payload/payloadType/signatures in split's envelope",
    1,
    [MALFORMED],
    "unknown field",
)
def test_envelope_unknown_field(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    edit_bundle(
        hp.bundle_path("split"),
        lambda d: d["dsseEnvelope"].__setitem__("payloadEncoding", "identity"),
    )
    expect(cli.verify(hp), case)


@scenario(
    "bare-dsse-envelope-in-run",
    "store package's bare DSSE envelope (no bundle around it) as another attestation file",
    1,
    [MALFORMED],
    "unsupported bundle mediaType None",
)
def test_bare_envelope(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    envelope = read_bundle(hp.bundle_path("package"))["dsseEnvelope"]
    write_doc(hp.store.run_dir(hp.run_id) / "package.bare.sigstore.json", envelope)
    expect(cli.verify(hp), case)


@scenario(
    "attestation-file-renamed-to-other-stage",
    "rename ingest's bundle to train.<x>.sigstore.json (file names never decide)",
    0,
)
def test_renamed_file(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    path = hp.bundle_path("ingest")
    path.rename(path.with_name("train.00000000.sigstore.json"))
    expect(cli.verify(hp), case)


# ------------------------------------------------------------ duplicate JSON keys
@scenario(
    "duplicate-key-in-bundle-json",
    "a bundle file with two dsseEnvelope keys: an intruder-signed forgery first, the honest one last",
    1,
    [MALFORMED],
    "duplicate key",
)
def test_duplicate_key_bundle(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    path = hp.bundle_path("package")
    honest = read_bundle(path)
    statement = statement_of(path)
    statement["subject"][0]["digest"]["sha256"] = ZERO
    forged = make_bundle(canonical(statement), [hp.keys["intruder"].signer])
    text = canonical({k: v for k, v in honest.items() if k != "dsseEnvelope"}).decode()
    text = (
        text[:-1]
        + ',"dsseEnvelope":'
        + canonical(forged["dsseEnvelope"]).decode()
        + ',"dsseEnvelope":'
        + canonical(honest["dsseEnvelope"]).decode()
        + "}"
    )
    path.write_text(text)
    expect(cli.verify(hp), case)


@scenario(
    "duplicate-key-in-signed-statement",
    "the package functionary signs a statement with two subject keys (a poisoned one first)",
    1,
    [MALFORMED],
    "duplicate key",
)
def test_duplicate_key_statement(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    def raw(statement: dict[str, Any]) -> bytes:
        poisoned = json.loads(json.dumps(statement["subject"]))
        poisoned[0]["digest"]["sha256"] = ZERO
        text = canonical(statement).decode()
        return ('{"subject":' + json.dumps(poisoned) + "," + text[1:]).encode()

    resign(hp, "package", hp.keys["release-engineer"].signer, raw=raw)
    expect(cli.verify(hp), case)


# ------------------------------------------------------------ unknown fields
@scenario(
    "unknown-statement-field-signed",
    "an insider adds a variant of split with an unknown top-level statement field (same claim)",
    0,
)
def test_unknown_statement_field(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    resign(
        hp,
        "split",
        hp.keys["data-engineer"].signer,
        lambda s: s.__setitem__("x-approved-by", "ciso"),
        keep=True,
    )
    expect(cli.verify(hp), case)


@scenario(
    "unknown-mlspec-field-signed",
    "the package functionary signs byproducts.mlspec with an extra 'approvedBy' field",
    1,
    [MALFORMED, "stage-missing"],
    "approvedBy",
)
def test_unknown_mlspec_field(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    resign(
        hp,
        "package",
        hp.keys["release-engineer"].signer,
        lambda s: mlspec(s).__setitem__("approvedBy", "ciso"),
    )
    expect(cli.verify(hp), case)


# ------------------------------------------------------------ ambiguous statements
@scenario(
    "duplicate-product-name-different-digests",
    "the data engineer signs split listing data/split/train.csv twice: the honest digest first "
    "(what the deploy gate re-hashes), a poisoned one last (what train trained on)",
    1,
    [MALFORMED],
    "listed twice",
)
def test_duplicate_product_name(case: Scenario, make_pipeline: Any, cli: Cli) -> None:
    p = make_pipeline("dup")
    p.sign("ingest")
    p.sign("split")
    train_csv = p.ws / "data/split/train.csv"
    honest = train_csv.read_bytes()
    poisoned = honest + b"99,99.9,999\n"
    train_csv.write_bytes(poisoned)
    poisoned_digest = digest_path(train_csv).digest_set()

    def add_poisoned(statement: dict[str, Any]) -> None:
        statement["subject"].append({"name": "data/split/train.csv", "digest": poisoned_digest})

    resign(p, "split", p.keys["data-engineer"].signer, add_poisoned)
    for role in STAGES["train"].signers:  # both ML functionaries train on the poisoned file
        p.sign("train", signer=role, build=role == "ml-engineer")
    train_csv.write_bytes(honest)  # what is shown to the deploy gate
    p.sign("package", via_api=True)
    expect(cli.verify(p), case)


@scenario(
    "duplicate-material-name-different-digests",
    "the package functionary signs package's materials naming 'model' twice: an unknown model "
    "first, the trained one last",
    1,
    [MALFORMED],
    "listed twice",
)
def test_duplicate_material_name(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    def add_other(statement: dict[str, Any]) -> None:
        honest = statement["predicate"]["materials"][0]
        other = {"name": honest["name"], "digest": dict(honest["digest"], sha256=ZERO)}
        statement["predicate"]["materials"].insert(0, other)

    resign(hp, "package", hp.keys["release-engineer"].signer, add_other)
    expect(cli.verify(hp), case)


@scenario(
    "predicate-name-differs-from-stage",
    "the package functionary signs a statement whose predicate.name says train",
    1,
    [MALFORMED],
    "predicate name differs",
)
def test_predicate_name_mismatch(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    resign(
        hp,
        "package",
        hp.keys["release-engineer"].signer,
        lambda s: s["predicate"].__setitem__("name", "train"),
    )
    expect(cli.verify(hp), case)


def _slsa(statement: dict[str, Any]) -> None:
    statement["predicateType"] = "https://slsa.dev/provenance/v1"


def _link_v02(statement: dict[str, Any]) -> None:
    statement["predicateType"] = "https://in-toto.io/attestation/link/v0.2"


def _statement_v01(statement: dict[str, Any]) -> None:
    statement["_type"] = "https://in-toto.io/Statement/v0.1"


@pytest.mark.parametrize(
    ("case", "mutate"),
    [
        case(
            M,
            "slsa-provenance-predicate-type",
            "the package functionary signs the statement as SLSA provenance v1",
            1,
            [MALFORMED],
            "is not a Link v0.3",
            _slsa,
        ),
        case(
            M,
            "link-v0.2-predicate-type",
            "the package functionary signs the statement with a link v0.2 predicateType",
            1,
            [MALFORMED],
            "is not a Link v0.3",
            _link_v02,
        ),
        case(
            M,
            "statement-v0.1-type",
            "the package functionary signs it as an in-toto Statement v0.1",
            1,
            [MALFORMED],
            "not an in-toto Statement v1",
            _statement_v01,
        ),
    ],
)
def test_wrong_statement_types(case: Scenario, mutate: Any, hp: Pipeline, cli: Cli) -> None:
    resign(hp, "package", hp.keys["release-engineer"].signer, mutate)
    expect(cli.verify(hp), case)


@scenario(
    "legacy-link-as-payload",
    "the package functionary signs a legacy in-toto link (_type: link) with the in-toto payloadType",
    1,
    [MALFORMED],
    "not an in-toto Statement v1",
)
def test_legacy_link(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    def raw(statement: dict[str, Any]) -> bytes:
        link = {
            "_type": "link",
            "name": "package",
            "command": [],
            "materials": {m["name"]: m["digest"] for m in statement["predicate"]["materials"]},
            "products": {s["name"]: s["digest"] for s in statement["subject"]},
            "byproducts": statement["predicate"]["byproducts"],
            "environment": {},
        }
        return canonical(link)

    resign(hp, "package", hp.keys["release-engineer"].signer, raw=raw)
    expect(cli.verify(hp), case)


# ------------------------------------------------------------ digest sets
def _package_digest(edit: Any) -> Any:
    def mutate(statement: dict[str, Any]) -> None:
        edit(statement["subject"][0]["digest"])

    return mutate


@pytest.mark.parametrize(
    ("case", "mutate"),
    [
        case(
            M,
            "statement-with-empty-subject",
            "the package functionary signs package with no subject at all",
            1,
            ["artifact-mismatch"],
            "attests no product",
            lambda s: s.__setitem__("subject", []),
        ),
        case(
            M,
            "digest-hex-uppercase",
            "the package functionary signs dist/model's sha256 in upper-case hex",
            1,
            ["artifact-mismatch"],
            None,
            _package_digest(lambda d: d.__setitem__("sha256", d["sha256"].upper())),
        ),
        case(
            M,
            "digest-unknown-algorithm-only",
            "the package functionary signs dist/model with an md5-only DigestSet",
            1,
            ["artifact-mismatch"],
            "names no digest algorithm",
            lambda s: s["subject"][0].__setitem__("digest", {"md5": "0" * 32}),
        ),
        case(
            M,
            "digest-set-extra-algorithm",
            "the package functionary adds an unverifiable sha512 entry to dist/model's DigestSet",
            1,
            ["artifact-mismatch"],
            None,
            _package_digest(lambda d: d.__setitem__("sha512", "ab" * 64)),
        ),
    ],
)
def test_digest_sets(case: Scenario, mutate: Any, hp: Pipeline, cli: Cli) -> None:
    resign(hp, "package", hp.keys["release-engineer"].signer, mutate)
    expect(cli.verify(hp), case)


@pytest.mark.parametrize(
    ("case", "mutate"),
    [
        case(
            M,
            "stage-kind-relabelled",
            "the package functionary signs package claiming kind 'custom' (the policy says package)",
            1,
            ["stage-kind"],
            "stage kind differs from the policy",
            lambda s: mlspec(s).__setitem__("kind", "custom"),
        ),
        case(
            M,
            "stage-name-case-variant-in-statement",
            "the package functionary signs its stage as 'Package'",
            1,
            [MALFORMED, "stage-missing"],
            "does not match",
            lambda s: (
                mlspec(s).__setitem__("stage", "Package"),
                s["predicate"].__setitem__("name", "Package"),
            ),
        ),
    ],
)
def test_stage_identity(case: Scenario, mutate: Any, hp: Pipeline, cli: Cli) -> None:
    resign(hp, "package", hp.keys["release-engineer"].signer, mutate)
    expect(cli.verify(hp), case)
