"""The row engine: pinned invisible characters, datasets, sniffing, material records, the proof.

Real files in tmp_path, real hashing, a real store.
"""

from __future__ import annotations

import gzip
import hashlib
import sys
import unicodedata
from pathlib import Path

import pytest

from mlspec_attest.digest.datasets import open_dataset, open_material
from mlspec_attest.errors import BadInputError, UsageError
from mlspec_attest.evidence.content_sets import row_digests
from mlspec_attest.evidence.digest_sets import RowDigestSet
from mlspec_attest.evidence.leakage import prove_splits
from mlspec_attest.evidence.rowsets import MATERIAL_ROWS_SCHEMA, fingerprint_materials
from mlspec_attest.formats.rowform import INVISIBLE, canonical_name, canonical_row
from mlspec_attest.formats.schemas import schema_errors
from mlspec_attest.formats.tabular import sniff_format
from mlspec_attest.store.ledger import AttestationStore

#: Cf characters that are visible or structural, so they are kept (docs/leakage.md).
VISIBLE_FORMAT = (
    set(range(0x0600, 0x0606))
    | {0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD}
    | set(range(0xFFF9, 0xFFFC))
    | set(range(0x13430, 0x13439))
)


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# --------------------------------------------------------------- canonical text
def test_invisible_table_is_the_invisible_format_characters_of_unicode_14() -> None:
    assert all(unicodedata.category(chr(cp)) == "Cf" for cp in INVISIBLE)
    if unicodedata.unidata_version != "14.0.0":
        pytest.skip("the table is pinned to Unicode 14.0; this Python has another version")
    cf = {cp for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) == "Cf"}
    assert cf - set(INVISIBLE) == VISIBLE_FORMAT
    assert len(INVISIBLE) == 138


def test_golden_v2_bytes() -> None:
    """mlspec-rows/v2 is a published format: these bytes must never change."""
    row = {" Na\u200bme ": "Jose\u0301\r\nX", "AGE": "030", "e": "", "\u00c9t\u00e9": "1e0"}
    expected = '[["age",30],["name","Jos\u00e9\\nX"],["\u00e9t\u00e9",1]]'.encode()
    assert canonical_row(row) == expected
    assert hashlib.sha256(canonical_row(row)).hexdigest() == hashlib.sha256(expected).hexdigest()


def test_names_that_collide_after_canonicalization_are_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="column 'age' appears twice"):
        row_digests(write(tmp_path / "a.csv", "Age,age\n1,2\n"))
    with pytest.raises(BadInputError, match="object key 'k' appears twice"):
        canonical_row({"a": {"K": 1, "k\u200b": 2}})
    assert canonical_name("Stra\u00dfe") == canonical_name("STRASSE") == "strasse"


# --------------------------------------------------------------- datasets
def test_directory_of_images_is_read_per_file(tmp_path: Path) -> None:
    write(tmp_path / "d/a.png", "A")
    write(tmp_path / "d/.DS_Store", "x")
    dataset = open_dataset(tmp_path / "d")
    assert (dataset.format, dataset.ignored) == ("files", (".DS_Store",))


def test_explicit_format_reads_shards_without_a_suffix(tmp_path: Path) -> None:
    write(tmp_path / "d/part-00000", "a\n1\n")
    write(tmp_path / "d/part-00001", "a\n2\n")
    with pytest.raises(BadInputError, match="cannot read 2 file"):
        open_dataset(tmp_path / "d")
    assert row_digests(tmp_path / "d", fmt="csv").rows == 2


def test_a_misspelt_exclusion_in_a_sharded_split_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "d/p0.csv", "id,a\n1,1\n")
    write(tmp_path / "d/p1.csv", "id,a\n2,1\n")
    assert row_digests(tmp_path / "d", exclude_columns=["ID"]).unique == 1
    with pytest.raises(BadInputError, match="'idd' not in the file"):
        row_digests(tmp_path / "d", exclude_columns=["idd"])


# --------------------------------------------------------------- materials
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a,b\n1,2\n3,4\n", "csv"),
        (b"a\tb\tc\n1\t2\t3\n", "tsv"),
        (b'{"a": 1}\n{"a": 2}\n', "jsonl"),
        (gzip.compress(b"a,b\n1,2\n"), "csv"),
        (b"PAR1\x00\x00", "parquet"),
        (bytes(range(256)), "binary content (not UTF-8 text, gzip or Parquet)"),
        (b"apiVersion: v1\nkind: Objectives\n", "text without a table shape"),
        (b'{\n  "depth": 3\n}\n', "text without a table shape"),
        (b"", "no rows"),
    ],
)
def test_sniff_format(tmp_path: Path, data: bytes, expected: str) -> None:
    assert sniff_format(write(tmp_path / "x.bin", data)) == expected


def test_material_record(tmp_path: Path) -> None:
    write(tmp_path / "data/rows.dat", "a,b\n1,x\n2,x\n")  # sniffed as CSV; b is constant
    write(tmp_path / "model/weights.bin", bytes(range(256)))
    write(tmp_path / "data/ragged.csv", "a,b\n1\n")
    paths = [tmp_path / "data/rows.dat", tmp_path / "model", tmp_path / "data/ragged.csv"]
    record, blobs = fingerprint_materials(paths, tmp_path)
    assert schema_errors("material-rows-v1", record) == []
    assert record["schemaVersion"] == MATERIAL_ROWS_SCHEMA
    rows = record["materials"]["data/rows.dat"]
    assert (rows["format"], rows["rows"], rows["files"]) == ("csv", 2, 1)
    assert rows["contentSets"]["varying"]["droppedColumns"] == ["b"]
    assert record["materials"]["model"] == {
        "format": "none",
        "reason": "no tabular or per-example files",
    }
    ragged = record["materials"]["data/ragged.csv"]
    assert ragged == {
        "format": "unreadable",
        "reason": "data/ragged.csv:2: 1 fields, the header has 2",
    }
    for entry in rows["contentSets"].values():
        blob = blobs[entry["digestSet"]]
        assert RowDigestSet.from_blob(blob, rows["rows"]).unique == entry["unique"]
    assert isinstance(open_material(tmp_path / "model"), str)


# --------------------------------------------------------------- the split proof
def test_split_labels_need_two_rows_in_every_split(tmp_path: Path) -> None:
    train = write(tmp_path / "train.csv", "a,split\n1,train\n2,train\n")
    holdback = write(tmp_path / "holdback.csv", "a,split\n1,holdback\n")
    proof = prove_splits({"train": train, "holdback": holdback})
    assert proof.record["columns"] == ["a", "split"]  # one row says nothing
    assert proof.record["overlaps"] == {"holdback|train": 0}


def test_the_proof_stores_nothing_itself(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path / "store")
    train = write(tmp_path / "train.csv", "a\n1\n")
    proof = prove_splits({"train": train, "holdback": write(tmp_path / "h.csv", "a\n2\n")})
    assert not (tmp_path / "store").exists()
    proof.store(store)
    for address in proof.blobs:
        assert store.get_blob(address.removeprefix("sha256:")) is not None


def test_the_proof_refuses_mixed_kinds_and_per_file_exclusions(tmp_path: Path) -> None:
    write(tmp_path / "images/a.png", "A")
    table = write(tmp_path / "t.csv", "a\n1\n")
    with pytest.raises(BadInputError, match="mix per-file datasets with tabular ones"):
        prove_splits({"train": tmp_path / "images", "holdback": table})
    with pytest.raises(UsageError, match="not to per-file digests"):
        prove_splits({"train": tmp_path / "images"}, exclude_columns=["id"])


def test_deep_nesting_is_bad_input_not_a_crash(tmp_path: Path) -> None:
    deep = '{"a": ' + "[" * 70 + "1" + "]" * 70 + "}\n"
    with pytest.raises(BadInputError, match="nested deeper than 62 levels"):
        row_digests(write(tmp_path / "deep.jsonl", deep))
    # Refused by the parser or by the depth bound (which one depends on the interpreter's
    # recursion limit): bad input either way, never a crash.
    very_deep = '{"a": ' * 5000 + "1" + "}" * 5000 + "\n"
    with pytest.raises(BadInputError, match=r"not valid JSON|nested deeper than 62 levels"):
        row_digests(write(tmp_path / "deeper.jsonl", very_deep))
    assert sniff_format(write(tmp_path / "deeper.bin", very_deep)) == "text without a table shape"


def test_material_files_reuse_the_digest_engine(tmp_path: Path) -> None:
    from mlspec_attest.digest.artifact import digest_path

    write(tmp_path / "images/a/1.png", "A")
    write(tmp_path / "images/b/2.png", "B")
    write(tmp_path / "single.png", "C")
    paths = [tmp_path / "images", tmp_path / "single.png"]
    digests = {name: digest_path(tmp_path / name) for name in ("images", "single.png")}
    with_digests, blobs = fingerprint_materials(paths, tmp_path, digests)
    assert with_digests == fingerprint_materials(paths, tmp_path)[0]
    entry = with_digests["materials"]["images"]
    assert (entry["format"], entry["rows"]) == ("files", 2)
    stored = RowDigestSet.from_blob(blobs[entry["contentSets"]["all"]["digestSet"]], 2)
    assert stored == RowDigestSet.from_digests(
        [hashlib.sha256(b"A").digest(), hashlib.sha256(b"B").digest()]
    )


def test_an_empty_split_constrains_no_column(tmp_path: Path) -> None:
    train = write(tmp_path / "train.jsonl", '{"a": 1, "b": 2}\n{"a": 3, "b": 4}\n')
    validation = write(tmp_path / "validation.jsonl", '{"a": 5, "b": 6}\n')
    empty = write(tmp_path / "holdback.jsonl", "")
    proof = prove_splits({"train": train, "validation": validation, "holdback": empty})
    assert proof.record["columns"] == ["a", "b"]
    assert proof.record["overlaps"] == {
        "holdback|train": 0,
        "holdback|validation": 0,
        "train|validation": 0,
    }


def test_a_corrupt_gzip_stream_is_bad_input_for_both_readers(tmp_path: Path) -> None:
    from mlspec_attest.formats.cells import TabularReader

    data = bytearray(gzip.compress(b"a,b\n" + b"1,2\n" * 200))
    data[20:24] = b"\xff\xff\xff\xff"  # inside the deflate stream
    path = write(tmp_path / "broken.csv.gz", bytes(data))
    with pytest.raises(BadInputError, match="cannot read"), TabularReader(path) as reader:
        list(reader)
    with pytest.raises(BadInputError, match="cannot read"):
        row_digests(path)
