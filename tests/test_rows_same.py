"""What mlspec-rows/v2 does and does not see as "the same row": one test per line.

docs/leakage.md § "Is it the same row?" lists S1-S19 (recognised) and N1-N14
(not recognised); ``test_S07_...`` is line S7 of that list. Real files in
tmp_path (CSV, TSV, JSON Lines, Parquet, gzip), real hashing; nothing mocked.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from mlspec_attest.evidence.content_sets import row_digests
from mlspec_attest.evidence.digest_sets import RowDigestSet
from mlspec_attest.evidence.leakage import prove_splits


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def same(
    tmp_path: Path, a: str | bytes, b: str | bytes, *, name_a: str = "a.csv", name_b: str = "b.csv"
) -> bool:
    first = row_digests(write(tmp_path / "a" / name_a, a))
    second = row_digests(write(tmp_path / "b" / name_b, b))
    assert first.rows == second.rows
    return first == second


def overlap(train: RowDigestSet, other: RowDigestSet) -> int:
    return train.intersection_count(other)


# --------------------------------------------------------------- recognised
def test_S01_column_order(tmp_path: Path) -> None:
    assert same(tmp_path, "a,b,c\n1,x,y\n", "c,a,b\ny,1,x\n")


def test_S02_surrounding_whitespace_in_cells_and_names(tmp_path: Path) -> None:
    assert same(tmp_path, "a,b\n1,x y\n", " a ,\tb\n  1 , x y \u00a0\n")


def test_S03_number_spelling(tmp_path: Path) -> None:
    assert same(tmp_path, "a,b,c,d\n7,0.1,0,1500\n", "a,b,c,d\n+007.0,.10,-0.0,1.5E3\n")
    assert same(tmp_path, "a\n7\n", "a\n0.7e1\n")


def test_S04_empty_cell_json_null_and_missing_key(tmp_path: Path) -> None:
    csv_set = row_digests(write(tmp_path / "a.csv", "a,b\n1,\n"))
    jsonl = write(tmp_path / "a.jsonl", '{"a": 1, "b": null}\n{"a": 1}\n')
    assert RowDigestSet(row_digests(jsonl).digests, 1) == RowDigestSet(csv_set.digests, 1)


def test_S05_csv_tsv_jsonl_and_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    csv_set = row_digests(write(tmp_path / "s.csv", "age,city,income\n34,Berlin,52000.5\n"))
    tsv_set = row_digests(write(tmp_path / "s.tsv", "city\tage\tincome\nBerlin\t34\t52000.50\n"))
    jsonl = '{"income": 52000.5, "city": "Berlin", "age": 34}\n'
    jsonl_set = row_digests(write(tmp_path / "s.jsonl", jsonl))
    table = pa.table({"age": [34], "city": ["Berlin"], "income": [52000.5]})
    pq.write_table(table, tmp_path / "s.parquet")
    assert csv_set == tsv_set == jsonl_set == row_digests(tmp_path / "s.parquet")


def test_S06_gzip_whatever_the_name(tmp_path: Path) -> None:
    text = "a,b\n1,x\n2,y\n"
    plain = row_digests(write(tmp_path / "plain.csv", text))
    assert row_digests(write(tmp_path / "z.csv.gz", gzip.compress(text.encode()))) == plain
    # gzip bytes under a plain .csv name are still read as gzip
    assert row_digests(write(tmp_path / "misnamed.csv", gzip.compress(text.encode()))) == plain


def test_S07_crlf_or_lf_line_endings(tmp_path: Path) -> None:
    assert same(tmp_path, "a,b\n1,x\n2,y\n", b"a,b\r\n1,x\r\n2,y\r\n")


def test_S08_line_breaks_inside_a_quoted_cell(tmp_path: Path) -> None:
    assert same(tmp_path, 'a\n"line 1\nline 2"\n', b'a\r\n"line 1\r\nline 2"\r\n')
    assert same(tmp_path, 'a\n"line 1\nline 2"\n', b'a\n"line 1\rline 2"\n')


def test_S09_byte_order_mark_at_the_start(tmp_path: Path) -> None:
    assert same(tmp_path, "a,b\n1,x\n", b"\xef\xbb\xbfa,b\n1,x\n")


def test_S10_nfc_and_nfd(tmp_path: Path) -> None:
    nfc = "caf\u00e9,Z\u00fcrich\n\u00e9t\u00e9,M\u00fcnchen\n"
    nfd = "cafe\u0301,Zu\u0308rich\ne\u0301te\u0301,Mu\u0308nchen\n"
    assert same(tmp_path, nfc, nfd)


@pytest.mark.parametrize(
    "invisible",
    [
        "\u200b",  # zero-width space
        "\u200c",  # zero-width non-joiner
        "\u200d",  # zero-width joiner
        "\u2060",  # word joiner
        "\u200e\u200f",  # left-to-right / right-to-left marks
        "\u202a\u202c",  # bidi embedding and pop
        "\ufeff",  # a BOM inside a cell
        "\u00ad",  # soft hyphen
        "\U000e0041",  # a tag character
    ],
)
def test_S11_invisible_format_characters_in_cells(tmp_path: Path, invisible: str) -> None:
    assert same(
        tmp_path, "name,city\nAlice,Paris\n", f"name,city\nAl{invisible}ice,{invisible}Paris\n"
    )


def test_S12_column_names_by_case_invisibles_and_normalization(tmp_path: Path) -> None:
    assert same(
        tmp_path, "age,stra\u00dfe,caf\u00e9\n1,x,y\n", "AGE,STRASSE,Ca\u200bfe\u0301\n1,x,y\n"
    )


def test_S13_one_file_or_a_directory_of_shards(tmp_path: Path) -> None:
    whole = row_digests(write(tmp_path / "whole.csv", "a,b\n1,x\n2,y\n3,z\n"))
    write(tmp_path / "shards/part-0.csv", "a,b\n3,z\n")
    write(tmp_path / "shards/sub/part-1.csv.gz", gzip.compress(b"b,a\ny,2\nx,1\n"))
    write(tmp_path / "shards/_SUCCESS", "")
    assert row_digests(tmp_path / "shards") == whole


def test_S14_an_excluded_column(tmp_path: Path) -> None:
    a = row_digests(write(tmp_path / "a.csv", "id,v\n1,x\n"), exclude_columns=["ID"])
    b = row_digests(write(tmp_path / "b.csv", "Id,v\n99,x\n"), exclude_columns=["id"])
    assert a == b


def test_S15_split_proof_column_only_some_splits_have(tmp_path: Path) -> None:
    train = write(tmp_path / "train.csv", "a,b\n1,x\n2,y\n")
    holdback = write(tmp_path / "holdback.csv", "a,b,source\n2,y,scraped\n3,z,crawl\n")
    proof = prove_splits({"train": train, "holdback": holdback})
    assert proof.record["overlaps"] == {"holdback|train": 1}
    assert proof.record["splits"]["holdback"]["droppedColumns"] == {"source": "not-shared"}


def test_S16_split_proof_split_label_column(tmp_path: Path) -> None:
    train = write(tmp_path / "train.csv", "a,b,split\n1,x,train\n2,y,train\n")
    holdback = write(tmp_path / "holdback.csv", "split,a,b\nholdback,2,y\nholdback,3,z\n")
    proof = prove_splits({"train": train, "holdback": holdback})
    assert proof.record["overlaps"] == {"holdback|train": 1}
    assert proof.record["columns"] == ["a", "b"]
    assert proof.record["splits"]["train"]["droppedColumns"] == {"split": "split-label"}


def content_overlap(tmp_path: Path, holdback: str, material: str) -> int:
    """Rows of ``material`` the hold-back content check recognises (see tests/test_holdback_content.py)."""
    from mlspec_attest.digest.datasets import open_dataset
    from mlspec_attest.evidence.content_sets import hash_content

    hb = hash_content(open_dataset(write(tmp_path / "hb.csv", holdback)))
    mat = hash_content(open_dataset(write(tmp_path / "mat.csv", material)))
    hb_sets = [hb.get(frozenset()), hb.get(hb.varying_drop())]
    mat_sets = [mat.get(frozenset()), mat.get(mat.varying_drop())]
    return max(m.intersection_count(h) for m in mat_sets for h in hb_sets)


def test_S17_holdback_copy_with_an_extra_constant_column(tmp_path: Path) -> None:
    holdback = "a,b\n1,x\n2,y\n3,z\n"
    copy = "a,b,batch\n1,x,7\n2,y,7\n3,z,7\n"
    assert content_overlap(tmp_path, holdback, copy) == 3


def test_S18_holdback_rows_inside_a_larger_file(tmp_path: Path) -> None:
    holdback = "a,b\n1,x\n2,y\n"
    validation = "b,a\nq,10\ny,2\nr,11\n"
    assert content_overlap(tmp_path, holdback, validation) == 1


def test_S19_same_file_content_under_another_name(tmp_path: Path) -> None:
    write(tmp_path / "train/cats/001.png", b"\x89PNG image A")
    write(tmp_path / "test/dogs/renamed.png", b"\x89PNG image A")
    assert overlap(row_digests(tmp_path / "train"), row_digests(tmp_path / "test")) == 1


# --------------------------------------------------------------- not recognised
def test_N01_letter_case_in_values(tmp_path: Path) -> None:
    assert not same(tmp_path, "city\nBerlin\n", "city\nberlin\n")


def test_N02_inner_whitespace_and_no_break_space(tmp_path: Path) -> None:
    assert not same(tmp_path, "city\nNew York\n", "city\nNew  York\n")
    assert not same(tmp_path, "city\nNew York\n", "city\nNew\u00a0York\n")


@pytest.mark.parametrize(
    ("a", "b"),
    [("12", "\uff11\uff12"), ("fi", "\ufb01"), ("m2", "m\u00b2"), ("3", "\u0663")],
)
def test_N03_compatibility_characters(tmp_path: Path, a: str, b: str) -> None:
    assert not same(tmp_path, f"v\n{a}\n", f"v\n{b}\n")


def test_N04_look_alike_letters_from_other_scripts(tmp_path: Path) -> None:
    assert not same(tmp_path, "v\npaypal\n", "v\np\u0430yp\u0430l\n")  # Cyrillic a


def test_N05_numbers_that_differ_in_value(tmp_path: Path) -> None:
    assert not same(tmp_path, "v\n0.1234\n", "v\n0.12340001\n")


def test_N06_csv_text_versus_typed_values(tmp_path: Path) -> None:
    assert not same(tmp_path, "flag\ntrue\n", '{"flag": true}\n', name_a="a.csv", name_b="b.jsonl")


def test_N07_spelled_out_missing_values(tmp_path: Path) -> None:
    for spelled in ("NA", "NaN", "null"):
        assert not same(tmp_path, "a,b\n1,\n", f"a,b\n1,{spelled}\n")


def test_N08_thousands_separators(tmp_path: Path) -> None:
    assert not same(tmp_path, "v\n1000\n", 'v\n"1,000"\n')


def test_N09_a_renamed_column(tmp_path: Path) -> None:
    assert not same(tmp_path, "age\n30\n", "age_years\n30\n")


def test_N10_a_row_id_that_is_not_excluded(tmp_path: Path) -> None:
    assert not same(tmp_path, "id,v\n1,x\n", "id,v\n2,x\n")


def test_N11_holdback_rows_under_new_ids_in_another_file(tmp_path: Path) -> None:
    holdback = "id,a,b\n1,5,x\n2,6,y\n"
    renumbered = "id,a,b\n101,5,x\n102,6,y\n"
    assert content_overlap(tmp_path, holdback, renumbered) == 0


def test_N12_visible_format_characters_and_variation_selectors(tmp_path: Path) -> None:
    assert not same(tmp_path, "v\n5\n", "v\n\u06005\n")  # Arabic number sign
    assert not same(tmp_path, "v\nok\u2764\n", "v\nok\u2764\ufe0f\n")  # emoji presentation


def test_N13_other_delimiters(tmp_path: Path) -> None:
    assert not same(tmp_path, "a,b\n1,x\n", "a;b\n1;x\n")


def test_N14_near_duplicates(tmp_path: Path) -> None:
    assert not same(tmp_path, "name,age\nJon Smith,40\n", "name,age\nJohn Smith,40\n")


def test_every_line_of_the_documented_list_has_exactly_one_test() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "leakage.md").read_text("utf-8")
    lines = [f"{kind}{int(n):02d}" for kind, n in re.findall(r"^\| ([SN])(\d+) \|", doc, re.M)]
    tests = [name.split("_")[1] for name in globals() if re.match(r"test_[SN]\d\d_", name)]
    assert len(lines) == 33
    assert sorted(lines) == sorted(tests)
