"""One tabular reader: every caller reads a data file the same way (docs/data.md, "Reading data files").

Row digests (leakage, sign), analysis, data schema inference and validation, and
metrics from predictions all go through :mod:`mlspec_attest.formats.tabular`. For
files where the readers used to disagree (byte order mark, CR LF, blank lines,
gzip without a ``.gz`` name, a ``.gz`` name over plain bytes, headers that differ
only in case, ragged rows, bad encodings) each caller now sees the same rows,
or refuses the file with the same reason.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.errors import BadInputError
from mlspec_attest.evidence.analysis import analyze_dataset
from mlspec_attest.evidence.content_sets import row_digests
from mlspec_attest.evidence.dataschema import validate_dataset
from mlspec_attest.evidence.schema_inference import infer_schema
from mlspec_attest.formats.cells import TabularReader
from mlspec_attest.formats.tabular import detect_format

PLAIN = b"label,pred\n1,1\n0,1\n1,0\n"
SCHEMA: dict[str, Any] = {
    "apiVersion": "mlspec-attest/v1",
    "kind": "DataSchema",
    "name": "p",
    "version": "1",
    "columns": [{"name": "label", "type": "integer"}, {"name": "pred", "type": "integer"}],
}


def _metrics_rows(path: Path) -> int:
    pytest.importorskip("sklearn")
    from mlspec_attest.evidence.metrics import metrics_from_csv

    doc = metrics_from_csv(path, task="classification", label="label", prediction="pred")
    return int(doc["metrics"]["count"])


def _reader_rows(path: Path) -> int:
    with TabularReader(path) as reader:
        return sum(1 for _ in reader)


#: How many rows each caller reads in a file.
CALLERS: dict[str, Callable[[Path], int]] = {
    "row digests": lambda path: row_digests(path).rows,
    "analysis": lambda path: int(analyze_dataset(path)["dataset"]["rows"]),
    "schema inference": lambda path: int(infer_schema(path, name="p")["inferredFrom"]["rows"]),
    "validation": lambda path: validate_dataset(path, SCHEMA).rows,
    "metrics": _metrics_rows,
    "reader": _reader_rows,
}

#: Files every caller reads as the same three rows of (label, pred).
SAME = {
    "plain.csv": PLAIN,
    "bom.csv": b"\xef\xbb\xbf" + PLAIN,
    "crlf.csv": PLAIN.replace(b"\n", b"\r\n"),
    "cr.csv": PLAIN.replace(b"\n", b"\r"),
    "blank-lines.csv": b"\n\n" + PLAIN.replace(b"\n1,0", b"\n\n1,0") + b"\n\n",
    "named.csv.gz": gzip.compress(PLAIN),
    "gzip-without-gz-name.csv": gzip.compress(PLAIN),
    "tabs.tsv": PLAIN.replace(b",", b"\t"),
    "records.jsonl": b'{"label": 1, "pred": 1}\n{"label": 0, "pred": 1}\n\n{"label": 1, "pred": 0}\n',
    "no-suffix": PLAIN,
}


@pytest.mark.parametrize("name", sorted(SAME))
@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_every_caller_reads_the_same_rows(tmp_path: Path, name: str, caller: str) -> None:
    path = tmp_path / name
    path.write_bytes(SAME[name])
    if name == "no-suffix" and caller == "row digests":
        # A split is evidence: its format is named, never guessed (a material is sniffed).
        with pytest.raises(BadInputError, match="cannot tell the format from the file name"):
            CALLERS[caller](path)
        assert row_digests(path, fmt="csv").rows == 3
        return
    assert CALLERS[caller](path) == 3


#: Files every caller refuses, with the reason each must give.
REFUSED = {
    "ragged.csv": (b"label,pred\n1,1\n0\n", "ragged.csv:3: 1 fields, the header has 2"),
    "case.csv": (b"label,Label,pred\n1,1,1\n", "column 'label' appears twice"),
    "padded.csv": (b"label, label ,pred\n1,1,1\n", "column 'label' appears twice"),
    "latin1.csv": ("label,pred\n1,é\n".encode("latin-1"), "not UTF-8 text"),
    "utf16.csv": (PLAIN.decode().encode("utf-16"), "not UTF-8 text"),
    "plain.csv.gz": (PLAIN, "named .gz but its bytes are not gzip"),
    "empty.csv": (b"", "empty file, no header row"),
    "blank.csv": (b"\n\n", "empty file, no header row"),
    "quote.csv": (b'label,pred\n"1,1\n', "quote.csv:2: malformed CSV"),
    "dupkey.jsonl": (b'{"label": 1, "label": 2, "pred": 1}\n', "duplicate key"),
    "nan.jsonl": (b'{"label": NaN, "pred": 1}\n', "non-standard JSON constant"),
    "list.jsonl": (b"[1, 2]\n", "list.jsonl:1: expected a JSON object"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_every_caller_refuses_the_same_files(tmp_path: Path, name: str, caller: str) -> None:
    data, reason = REFUSED[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(BadInputError, match=reason):
        CALLERS[caller](path)


def test_a_corrupt_gzip_stream_is_refused_by_every_caller(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(b"label,pred\n" + b"1,0\n" * 300))
    data[20:24] = b"\xff\xff\xff\xff"  # inside the deflate stream
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(bytes(data))
    for caller in CALLERS.values():
        with pytest.raises(BadInputError, match="cannot read"):
            caller(path)


def test_missing_cells_are_one_rule_for_the_cell_readers(tmp_path: Path) -> None:
    """Analysis, schemas and metrics share MISSING_TOKENS; metrics refuse a missing label."""
    path = tmp_path / "missing.csv"
    path.write_bytes(b"label,pred\n1,NA\n0,1\n")
    assert analyze_dataset(path)["features"]["pred"]["missing"] == 1
    result = validate_dataset(path, SCHEMA)
    assert [v["kind"] for v in result.violations] == ["null"]
    pytest.importorskip("sklearn")
    with pytest.raises(BadInputError, match="line 2, column 'pred': the label is missing"):
        _metrics_rows(path)


def test_row_identity_keeps_its_own_null_rule(tmp_path: Path) -> None:
    """``NA`` is text in a row digest (only empty text is null): stored digests never change."""
    na, empty = tmp_path / "na.csv", tmp_path / "empty.csv"
    na.write_bytes(b"a,b\n1,NA\n")
    empty.write_bytes(b"a,b\n1,\n")
    assert row_digests(na).digests != row_digests(empty).digests


def test_parquet_is_named_not_guessed_by_the_cell_readers(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    path.write_bytes(b"PAR1....PAR1")
    assert detect_format(path) == "parquet"
    for read in (analyze_dataset, lambda p: validate_dataset(p, SCHEMA)):
        with pytest.raises(BadInputError, match="Parquet is read for row digests"):
            read(path)


def test_a_file_whose_format_cannot_be_told_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes"
    path.write_bytes(b"just one column\nof text\n")
    with pytest.raises(BadInputError, match="cannot tell the format"):
        analyze_dataset(path)
