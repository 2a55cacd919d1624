"""Property tests of the wire formats: strict/canonical JSON, DSSE, bundles, statements,
``.intoto.jsonl`` and directory manifests.

Two kinds of property, for every parser:

* round trips: for generated valid objects, ``parse(serialize(x)) == x`` and the
  canonical bytes are stable;
* robustness: arbitrary values and mutated valid documents only ever raise the
  documented error (an MlspecError with exit code 3), never anything else.

Budgets are small so the suite stays fast; ``MLSPEC_PROPERTY_SCALE=20`` runs
twenty times as many examples (docs/testing.md).
"""

from __future__ import annotations

import base64
import functools
import json
import random
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from mlspec_attest.digest.directory import DirectoryManifest, FileEntry
from mlspec_attest.digest.engine import shard_bounds
from mlspec_attest.digest.scheme import DEFAULT_SCHEME, DigestScheme
from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.bundle import KNOWN_BUNDLE_MEDIA_TYPES, Bundle
from mlspec_attest.formats.dsse import Envelope, EnvelopeSignature, b64decode_strict, pae
from mlspec_attest.formats.jsonio import canonical, loads_strict
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.formats.schemas import load_schema
from mlspec_attest.formats.statement import (
    MLSPEC_METADATA_VERSION,
    CommandRecord,
    ResourceDescriptor,
    StageMetadata,
    StageStatement,
)
from mlspec_attest.interop.intoto.jsonl import dumps_jsonl, parse_jsonl
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key

from .strategies import (
    artifact_names,
    budget,
    finite_numbers,
    hex_digest,
    instants,
    json_objects,
    json_scalars,
    json_values,
    mutated,
    mutated_doc,
    run_ids,
    stage_kinds,
    stage_names,
)
from .targets._harness import GOLDEN_DIR, parse_or_none

GOLDEN_JSON = [p.read_bytes() for p in sorted(GOLDEN_DIR.glob("*.json"))]


@functools.cache
def signer() -> LocalKeySigner:
    """A real ed25519 key, made once (no mocked signing)."""
    return generate_key(KeyType.ED25519)


# ---------------------------------------------------------------- strict JSON
@budget(30)
@given(json_values)
def test_canonical_json_reads_back_equal(value: Any) -> None:
    raw = canonical(value)
    assert loads_strict(raw) == value
    assert canonical(loads_strict(raw)) == raw


@budget(30)
@given(json_objects, st.randoms(use_true_random=False))
def test_canonical_json_ignores_key_order_and_whitespace(
    doc: dict[str, Any], rnd: random.Random
) -> None:
    items = list(doc.items())
    rnd.shuffle(items)
    shuffled = dict(items)
    assert canonical(shuffled) == canonical(doc)
    spaced = json.dumps(
        shuffled, indent=rnd.choice([None, 0, 1, 4]), ensure_ascii=rnd.random() < 0.5
    )
    assert loads_strict(spaced.encode()) == doc


@budget(30)
@given(
    st.floats(min_value=2.0**53, max_value=1e22) | st.floats(min_value=-1e22, max_value=-(2.0**53))
)
@example(1.1111111111110111e17)
def test_canonical_json_of_large_doubles_is_readable(value: float) -> None:
    """RFC 8785 writes an integral double below 1e21 as plain digits ("111111111111011100"):
    canonical() must either refuse it or write something loads_strict reads back."""
    raw = parse_or_none(canonical, value)
    if raw is not None:
        assert loads_strict(raw) == value


@budget(25)
@given(st.binary(max_size=64) | mutated(GOLDEN_JSON))
@example(b"[" * 100_000)
@example(b'{"a":' * 50_000)
@example(b"\xef\xbb\xbf{}")
@example(b"\xff\xfe{\x00}\x00")
@example(b"1e400")
@example(b"-1e400")
@example(b"123456789012345678901234567890")
@example(b'"\\ud800"')
@example(b'{"a": 1, "a": 2}')
@example(b"NaN")
def test_loads_strict_raises_only_malformed_document(data: bytes) -> None:
    try:
        doc = loads_strict(data)
    except MalformedDocumentError:
        return
    raw = parse_or_none(canonical, doc)
    assert raw is None or loads_strict(raw) == doc


# ---------------------------------------------------------------- DSSE
signatures = st.lists(
    st.builds(EnvelopeSignature, st.binary(min_size=1, max_size=80), st.text(max_size=16)),
    min_size=1,
    max_size=3,
).map(tuple)
envelopes = st.builds(
    Envelope, st.binary(max_size=200), st.text(min_size=1, max_size=40), signatures
)


@budget(50)
@given(envelopes)
def test_envelope_round_trip(envelope: Envelope) -> None:
    assert Envelope.from_json(envelope.to_json()) == envelope
    raw = canonical(envelope.to_json())
    assert Envelope.from_json(loads_strict(raw)) == envelope
    assert canonical(Envelope.from_json(loads_strict(raw)).to_json()) == raw


@budget(25)
@given(st.binary(max_size=300), st.text(min_size=1, max_size=40), st.binary(max_size=8))
def test_envelope_signature_binds_payload_and_type(
    payload: bytes, payload_type: str, tweak: bytes
) -> None:
    envelope = Envelope.sign(payload, payload_type, [signer()])
    assert Envelope.from_json(envelope.to_json()).verified_by(signer().public_key)
    forged = Envelope(payload + tweak + b"!", payload_type, envelope.signatures)
    assert not forged.verified_by(signer().public_key)
    retyped = Envelope(payload, payload_type + "x", envelope.signatures)
    assert not retyped.verified_by(signer().public_key)


@budget(30)
@given(st.text(max_size=20), st.binary(max_size=20), st.text(max_size=20), st.binary(max_size=20))
def test_pae_is_injective(t1: str, p1: bytes, t2: str, p2: bytes) -> None:
    if (t1, p1) != (t2, p2):
        assert pae(t1, p1) != pae(t2, p2)


@budget(50)
@given(st.binary(max_size=64))
def test_base64_standard_and_urlsafe_decode_alike(raw: bytes) -> None:
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    assert b64decode_strict(standard, "x") == raw
    assert b64decode_strict(urlsafe, "x") == raw
    assert b64decode_strict(urlsafe.rstrip("="), "x") == raw


@budget(30)
@given(st.text(max_size=24) | json_scalars)
def test_base64_decoder_raises_only_malformed_document(value: Any) -> None:
    try:
        decoded = b64decode_strict(value, "x")
    except MalformedDocumentError:
        return
    assert isinstance(decoded, bytes)


GOLDEN_ENVELOPE = json.loads((GOLDEN_DIR / "stage-envelope.json").read_bytes())


@budget(30)
@given(json_values | mutated_doc(GOLDEN_ENVELOPE))
def test_envelope_parser_raises_only_malformed_document(doc: Any) -> None:
    envelope = parse_or_none(Envelope.from_json, doc)
    if envelope is not None:
        assert Envelope.from_json(envelope.to_json()) == envelope


# ---------------------------------------------------------------- Sigstore bundles
# verificationMaterial holds only what the bundle format defines (formats/bundle.py)
materials = st.fixed_dictionaries(
    {},
    optional={
        "publicKey": st.fixed_dictionaries({}, optional={"hint": st.text(max_size=8)}),
        "certificate": st.fixed_dictionaries({"rawBytes": st.text(max_size=8)}),
        "tlogEntries": st.lists(
            st.fixed_dictionaries({"logIndex": st.text(max_size=4)}), max_size=2
        ),
    },
)
bundles = st.builds(
    Bundle,
    envelopes,
    materials,
    st.sampled_from(KNOWN_BUNDLE_MEDIA_TYPES),
)
GOLDEN_BUNDLE = json.loads((GOLDEN_DIR / "stage-bundle.json").read_bytes())


@budget(25)
@given(bundles)
def test_bundle_round_trip(bundle: Bundle) -> None:
    assert Bundle.from_json(bundle.to_json()) == bundle
    assert Bundle.from_json(loads_strict(canonical(bundle.to_json()))) == bundle


@budget(30)
@given(json_values | mutated_doc(GOLDEN_BUNDLE))
def test_bundle_parser_raises_only_malformed_document(doc: Any) -> None:
    bundle = parse_or_none(Bundle.from_json, doc)
    if bundle is not None:
        assert Bundle.from_json(bundle.to_json()) == bundle


# ---------------------------------------------------------------- statements
descriptors = st.builds(
    ResourceDescriptor,
    artifact_names,
    st.fixed_dictionaries({"sha256": hex_digest()}, optional={"blake2b": hex_digest(64)}),
    st.dictionaries(st.text(max_size=10), json_scalars, max_size=2),
)
scalar_params = st.none() | st.booleans() | st.text(max_size=10) | finite_numbers
slice_entries = st.fixed_dictionaries(
    {
        "count": st.integers(0, 10**6),
        "metrics": st.dictionaries(st.text(min_size=1, max_size=8), finite_numbers, max_size=3),
    }
)


@st.composite
def stage_metadata(draw: st.DrawFn) -> StageMetadata:
    start = draw(instants)
    return StageMetadata(
        stage=draw(stage_names),
        kind=draw(stage_kinds),
        run_id=draw(run_ids),
        started_on=format_rfc3339(start),
        finished_on=format_rfc3339(draw(instants.filter(lambda t: t >= start))),
        policy_digest=draw(st.none() | hex_digest().map("sha256:".__add__)),
        parameters=draw(st.dictionaries(st.text(max_size=8), scalar_params, max_size=4)),
        metrics=draw(st.dictionaries(st.text(min_size=1, max_size=8), finite_numbers, max_size=4)),
        slices=draw(
            st.dictionaries(
                st.text(min_size=1, max_size=6),
                st.dictionaries(
                    st.text(min_size=1, max_size=6), slice_entries, min_size=1, max_size=2
                ),
                max_size=2,
            )
        ),
        roles=draw(st.dictionaries(st.text(min_size=1, max_size=8), artifact_names, max_size=3)),
        # Free-form details only: the typed entries (search, leakage, predecessors ...)
        # have schemas of their own and generators elsewhere.
        details={k: v for k, v in draw(json_objects).items() if k not in TYPED_DETAILS},
    )


TYPED_DETAILS = frozenset(
    load_schema("stage-metadata-v1")["properties"]["details"].get("properties", {})
)


def _consistent(items: list[ResourceDescriptor]) -> bool:
    """No name recorded as a file with artifacts inside it (statements refuse that)."""
    files = {d.name for d in items if "manifest-sha256" not in d.digest}
    return not any(d.name.startswith(f + "/") for d in items for f in files)


statements = st.builds(
    StageStatement,
    st.lists(descriptors, max_size=3, unique_by=lambda d: d.name).filter(_consistent).map(tuple),
    st.lists(descriptors, max_size=3, unique_by=lambda d: d.name).filter(_consistent).map(tuple),
    stage_metadata(),
    st.builds(
        CommandRecord,
        st.lists(st.text(max_size=10), max_size=4).map(tuple),
        st.none() | st.integers(-255, 255),
        st.none() | hex_digest(),
        st.none() | hex_digest(),
    ),
    json_objects,
)
GOLDEN_STATEMENT = json.loads((GOLDEN_DIR / "stage-statement.json").read_bytes())


@budget(30)
@given(statements)
def test_statement_round_trip(statement: StageStatement) -> None:
    payload = statement.to_payload()
    again = StageStatement.from_payload(payload)
    assert again == statement
    assert again.to_payload() == payload
    assert (
        statement.to_json()["predicate"]["byproducts"]["mlspec"]["schemaVersion"]
        == MLSPEC_METADATA_VERSION
    )


@budget(30)
@given(json_values | mutated_doc(GOLDEN_STATEMENT))
def test_statement_parser_raises_only_malformed_document(doc: Any) -> None:
    statement = parse_or_none(StageStatement.from_json, doc)
    if statement is None:
        return
    payload = parse_or_none(statement.to_payload)
    if payload is not None:
        assert StageStatement.from_payload(payload) == statement


@budget(50)
@given(mutated([canonical(GOLDEN_STATEMENT)]))
def test_statement_payload_bytes_raise_only_malformed_document(data: bytes) -> None:
    parse_or_none(StageStatement.from_payload, data)


# ---------------------------------------------------------------- .intoto.jsonl
@budget(30)
@given(st.lists(envelopes, max_size=4))
def test_jsonl_round_trip(items: list[Envelope]) -> None:
    assert parse_jsonl(dumps_jsonl(items)) == items


@budget(50)
@given(
    st.binary(max_size=40)
    | mutated([canonical(GOLDEN_ENVELOPE) + b"\n" + canonical(GOLDEN_BUNDLE)])
)
def test_jsonl_parser_raises_only_malformed_document(data: bytes) -> None:
    envelopes_read = parse_or_none(parse_jsonl, data)
    if envelopes_read is not None:
        assert parse_jsonl(dumps_jsonl(envelopes_read)) == envelopes_read


# ---------------------------------------------------------------- directory manifests
schemes = st.sampled_from(
    [DEFAULT_SCHEME, DigestScheme("blake2b"), DigestScheme("blake3")]
) | st.integers(1, 64).map(lambda size: DigestScheme("sha256", "shards", size))


@st.composite
def manifests(draw: st.DrawFn) -> DirectoryManifest:
    scheme = draw(schemes)
    hexlen = {"sha256": 32, "blake2b": 64, "blake3": 32}[scheme.algorithm]
    names = draw(st.lists(artifact_names, max_size=6, unique=True))
    entries = []
    for name in names:
        size = draw(st.integers(0, 300))
        if scheme.sharded:
            count = len(shard_bounds(size, scheme.shard_size))
            shards = tuple(draw(hex_digest(hexlen)) for _ in range(count))
            entries.append(FileEntry(name, "", size, shards))
        else:
            entries.append(FileEntry(name, draw(hex_digest(hexlen)), size))
    return DirectoryManifest.build(entries, scheme)


@budget(25)
@given(manifests(), st.randoms(use_true_random=False))
def test_manifest_round_trip_and_canonical_bytes(
    manifest: DirectoryManifest, rnd: random.Random
) -> None:
    raw = manifest.canonical_bytes()
    assert raw == canonical(manifest.to_json())  # the hand-written encoder is RFC 8785
    again = DirectoryManifest.from_bytes(raw)
    assert again == manifest
    assert again.address == manifest.address and again.root == manifest.root
    shuffled = list(manifest.entries)
    rnd.shuffle(shuffled)
    assert DirectoryManifest.build(shuffled, manifest.scheme).canonical_bytes() == raw
    assert manifest.diff(again).empty


GOLDEN_MANIFEST = json.loads((GOLDEN_DIR / "manifest.json").read_bytes())


@budget(30)
@given(
    (json_values | mutated_doc(GOLDEN_MANIFEST)).map(lambda doc: json.dumps(doc).encode())
    | mutated([canonical(GOLDEN_MANIFEST)])
)
def test_manifest_parser_raises_only_malformed_document(data: bytes) -> None:
    manifest = parse_or_none(DirectoryManifest.from_bytes, data)
    if manifest is not None:
        assert DirectoryManifest.from_bytes(manifest.canonical_bytes()) == manifest
