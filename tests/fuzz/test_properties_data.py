"""Property tests of the data-side parsers: row canonicalization (CSV, TSV, JSON Lines),
row digest sets and leakage records, OpenSSF model-signing statements, and keys.

Round trips and invariances for generated valid input; for arbitrary and mutated
input, only the documented bad-input errors (exit 3).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import example, given, reject
from hypothesis import strategies as st

from mlspec_attest.digest.rows import iter_row_digests
from mlspec_attest.digest.scheme import ALGORITHMS
from mlspec_attest.digest.serialization import MAX_SHARD_SIZE
from mlspec_attest.errors import BadInputError, KeyLoadError
from mlspec_attest.evidence.digest_sets import RowDigestSet
from mlspec_attest.evidence.overlaps import check_leakage
from mlspec_attest.formats.rowform import canonical_name, normalize_value, row_digest
from mlspec_attest.interop.oms.manifest import (
    ModelManifest,
    Resource,
    Serialization,
    parse_statement,
)
from mlspec_attest.signing.keys import (
    KeyType,
    LocalKeySigner,
    LocalPublicKey,
    generate_key,
    load_private_key,
)

from .strategies import budget, hex_digest, json_values, mutated, mutated_doc
from .targets._harness import GOLDEN_DIR, PROJECT_ROOT, parse_or_none
from .targets._leakage import split_proof

LEAKAGE_DATA = PROJECT_ROOT / "tests" / "data" / "leakage"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


# ---------------------------------------------------------------- rows
@budget(30)
@given(
    st.integers(-(10**15), 10**15),
    st.sampled_from(["{}", " {} ", "+{}", "{}.0", "{}e0", "{}.000", "0{}"]),
)
def test_row_digest_ignores_number_spelling(n: int, spelling: str) -> None:
    if n < 0 and spelling in ("+{}", "0{}"):
        return
    assert (
        row_digest({"x": spelling.format(n)}) == row_digest({"x": n}) == row_digest({"x": float(n)})
    )


@budget(50)
@given(
    st.dictionaries(st.text(max_size=6).map(str.strip), json_values, max_size=5),
    st.randoms(use_true_random=False),
)
def test_row_digest_ignores_column_order_and_padding(
    row: dict[str, Any], rnd: random.Random
) -> None:
    items = list(row.items())
    rnd.shuffle(items)
    padded = {f" {k}\t": v for k, v in items}
    assert parse_or_none(row_digest, padded) == parse_or_none(row_digest, row)


@budget(30)
@given(json_values | st.text(st.sampled_from("0123456789+-.eE "), max_size=12))
def test_normalize_value_is_idempotent(value: Any) -> None:
    try:
        once = normalize_value(value)
    except BadInputError:  # refused (two keys equal once canonicalized): not a value
        reject()
    assert normalize_value(once) == once


#: Cell text CSV carries as is: no NUL (csv refuses it), no lone surrogates.
cells = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8
)


@budget(30)
@given(
    st.lists(
        st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=5),
        min_size=1,
        max_size=4,
        unique_by=canonical_name,  # the reader refuses names equal after it
    ).filter(lambda names: all(n.strip() for n in names)),
    st.data(),
)
def test_csv_tsv_and_jsonl_rows_digest_alike(
    scratch: Path, names: list[str], data: st.DataObject
) -> None:
    rows = data.draw(
        st.lists(st.lists(cells, min_size=len(names), max_size=len(names)), max_size=5)
    )
    csv_text, tsv_text = io.StringIO(), io.StringIO()
    for out, delimiter in ((csv_text, ","), (tsv_text, "\t")):
        writer = csv.writer(out, delimiter=delimiter)  # CRLF: quotes cells holding \r or \n
        writer.writerow(names)
        writer.writerows(rows)
    jsonl = "".join(json.dumps(dict(zip(names, r, strict=True))) + "\n" for r in rows)
    (scratch / "t.csv").write_text(csv_text.getvalue(), encoding="utf-8", newline="")
    (scratch / "t.tsv").write_text(tsv_text.getvalue(), encoding="utf-8", newline="")
    (scratch / "t.jsonl.gz").write_bytes(gzip.compress(jsonl.encode()))
    expected = [row_digest(dict(zip(names, r, strict=True))) for r in rows]
    from_csv = list(iter_row_digests(scratch / "t.csv"))
    assert from_csv == list(iter_row_digests(scratch / "t.tsv"))
    assert from_csv == list(iter_row_digests(scratch / "t.jsonl.gz"))
    assert from_csv == expected


ROW_FILES = [
    (LEAKAGE_DATA / "people.csv").read_bytes(),
    (LEAKAGE_DATA / "people.jsonl").read_bytes(),
]


@budget(50)
@given(
    st.sampled_from(["d.csv", "d.tsv", "d.jsonl", "d.csv.gz", "d.jsonl.gz"]),
    st.binary(max_size=40) | mutated(ROW_FILES),
)
def test_row_readers_raise_only_bad_input(scratch: Path, name: str, data: bytes) -> None:
    if name.endswith(".gz"):
        data = gzip.compress(data) if data[:1] != b"\x1f" else data
    path = scratch / name
    path.write_bytes(data)
    found = parse_or_none(lambda: list(iter_row_digests(path)))
    assert found is None or all(len(d) == 32 for d in found)


# ---------------------------------------------------------------- row digest sets
digest_lists = st.lists(st.binary(min_size=32, max_size=32), max_size=40) | st.lists(
    st.integers(0, 30).map(lambda i: hashlib.sha256(bytes([i])).digest()), max_size=60
)


@budget(50)
@given(digest_lists, digest_lists)
def test_row_digest_sets_round_trip_and_intersect(a: list[bytes], b: list[bytes]) -> None:
    first, second = RowDigestSet.from_digests(a), RowDigestSet.from_digests(b)
    assert first.unique == len(set(a)) and first.rows == len(a)
    assert RowDigestSet.from_blob(first.to_blob(), first.rows) == first
    assert (
        first.intersection_count(second) == len(set(a) & set(b)) == second.intersection_count(first)
    )


@budget(50)
@given(
    st.integers(0, 70),
    st.binary(max_size=40)
    | mutated([RowDigestSet.from_digests([bytes(32), bytes([1]) * 32]).to_blob()]),
)
def test_row_digest_set_reader_raises_only_bad_input(rows: int, blob: bytes) -> None:
    parsed = parse_or_none(RowDigestSet.from_blob, blob, rows)
    assert parsed is None or parsed.unique <= rows


@budget(50)
@given(st.data())
def test_leakage_check_reports_findings_and_never_raises(
    scratch: Path, data: st.DataObject
) -> None:
    store, record = split_proof(scratch / "leakage")
    assert [f.kind for f in check_leakage(record, store, tolerance=1)] == []
    assert [f.kind for f in check_leakage(record, store)] == ["overlap-exceeds-tolerance"]
    fuzzed = data.draw(json_values | mutated_doc(record))
    findings = parse_or_none(check_leakage, fuzzed, store, roles={"train", "holdback"})
    assert findings is None or isinstance(findings, list)


# ---------------------------------------------------------------- model-signing statements
# Every combination the one rule allows (digest.scheme.check_combination: blake3 is never sharded).
COMBINATIONS = [
    (method, hash_type)
    for method in ("files", "shards")
    for hash_type in sorted(ALGORITHMS)
    if (method, hash_type) != ("shards", "blake3")
]
serializations = st.builds(
    lambda combination, links, size, ignore: Serialization(
        combination[0],
        combination[1],
        links,
        size if combination[0] == "shards" else None,
        frozenset(ignore),
    ),
    st.sampled_from(COMBINATIONS),
    st.booleans(),
    st.integers(1, MAX_SHARD_SIZE),
    st.lists(st.text(min_size=1, max_size=6), max_size=3),
)


@budget(50)
@given(serializations)
def test_oms_serialization_round_trip(ser: Serialization) -> None:
    assert Serialization.from_json(json.loads(json.dumps(ser.to_json()))) == ser


@st.composite
def model_manifests(draw: st.DrawFn) -> ModelManifest:
    ser = draw(serializations.filter(lambda s: s.method == "files"))
    names = draw(
        st.lists(
            st.from_regex(
                r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,8}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,8})?",
                fullmatch=True,
            ),
            unique=True,
            max_size=5,
        )
    )
    size = ALGORITHMS[ser.hash_type]
    resources = tuple(
        Resource(n, ser.hash_type, draw(hex_digest(size)))
        for n in sorted(names, key=lambda n: n.split("/"))
    )
    return ModelManifest(draw(st.text(max_size=8)), ser, resources)


@budget(25)
@given(model_manifests())
def test_oms_statement_round_trip(manifest: ModelManifest) -> None:
    signed = parse_statement(manifest.payload())
    assert signed.resources == manifest.resources
    assert signed.serialization == manifest.serialization
    assert signed.subject_digest == manifest.root_digest
    assert [p.check for p in signed.problems if p.check != "ignore-path"] == []


OMS_STATEMENT = json.loads(
    ModelManifest("m", Serialization(), (Resource("a", "sha256", "00" * 32),)).payload()
)


@budget(30)
@given(json_values | mutated_doc(OMS_STATEMENT))
@example(
    {
        **OMS_STATEMENT,
        "predicate": {
            **OMS_STATEMENT["predicate"],
            "serialization": {"method": "files", "hash_type": [], "allow_symlinks": False},
        },
    }
)
def test_oms_statement_parser_raises_only_bad_input(doc: Any) -> None:
    parse_or_none(parse_statement, json.dumps(doc).encode())


def _signed_model_sig() -> dict[str, Any]:
    from .targets._oms import signed_bundle

    manifest = ModelManifest("m", Serialization(), (Resource("a", "sha256", "00" * 32),))
    return signed_bundle(manifest.payload()).to_json()


@budget(30)
@given(st.data())
def test_model_signature_check_raises_only_bad_input(
    fuzz_workdir: Path, scratch: Path, data: st.DataObject
) -> None:
    """A model.sig (a Sigstore bundle of a really signed statement), mutated, checked under a
    key and under a certificate root: problems in a report, or bad input, nothing else."""
    from mlspec_attest.interop.oms.signature import check_model

    from .targets._oms import certificate_trust, key_trust, model_dir

    doc = data.draw(mutated_doc(_signed_model_sig()))
    signature = scratch / "model.sig"
    signature.write_text(json.dumps(doc))
    for trust in (key_trust(), certificate_trust()):
        report = parse_or_none(check_model, model_dir(), signature, trust, workers=1)
        if report is not None:
            report.to_json()


# ---------------------------------------------------------------- keys
@functools.cache
def key_pairs() -> tuple[LocalKeySigner, ...]:
    return tuple(generate_key(t) for t in (KeyType.ED25519, KeyType.ECDSA_P256, KeyType.ECDSA_P384))


@budget(30)
@given(st.integers(0, 2), st.binary(max_size=64))
def test_public_key_pem_round_trip_and_verify(index: int, message: bytes) -> None:
    signer = key_pairs()[index]
    public = LocalPublicKey.from_pem(signer.public_key.pem())
    assert public.keyid == signer.public_key.keyid
    assert public.verify(signer.sign(message), message)
    assert not public.verify(signer.sign(message), message + b"x")


PEMS = [(GOLDEN_DIR / "signer.pub").read_bytes(), (GOLDEN_DIR / "signer.key").read_bytes()]


@budget(30)
@given(st.binary(max_size=64) | mutated(PEMS))
def test_key_loaders_raise_only_key_load_error(scratch: Path, data: bytes) -> None:
    with contextlib.suppress(KeyLoadError):
        LocalPublicKey.from_pem(data)
    path = scratch / "fuzzed.key"
    path.write_bytes(data)
    signer = parse_or_none(load_private_key, path)
    if signer is not None:
        assert signer.public_key.verify(signer.sign(b"m"), b"m")


def test_encrypted_private_key_needs_its_passphrase(scratch: Path) -> None:
    pem = key_pairs()[0].private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    path = scratch / "encrypted.key"
    path.write_bytes(pem)
    for passphrase in (None, b"wrong"):
        with pytest.raises(KeyLoadError):
            load_private_key(path, passphrase=passphrase)
    assert (
        load_private_key(path, passphrase=b"pw").public_key.keyid == key_pairs()[0].public_key.keyid
    )
