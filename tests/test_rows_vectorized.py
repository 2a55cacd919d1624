"""The vectorized row engine gives the reference engine's digests, byte for byte.

The reference is the row-at-a-time Python engine (``vectorized=False``,
:mod:`mlspec_attest.formats.rowform`). Every rule of docs/leakage.md is exercised
on generated data (hypothesis) and on the hand-picked cases the rules name:
cells one column at a time, then whole files in every format, compression and
layout, then bad input (both engines must refuse it with the same words), and
the two pieces of Python behaviour the Arrow path reproduces (``csv`` quoting,
Unicode). Real files in tmp_path, real hashing; nothing mocked.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pc = pytest.importorskip("pyarrow.compute")

from mlspec_attest.digest import rows as engine  # noqa: E402
from mlspec_attest.digest.datasets import open_dataset  # noqa: E402
from mlspec_attest.digest.rows import Profile, hash_rows, iter_row_digests  # noqa: E402
from mlspec_attest.errors import MlspecError  # noqa: E402
from mlspec_attest.formats import rowarrow, rowarrow_text  # noqa: E402
from mlspec_attest.formats.csvquotes import QuoteCheck  # noqa: E402
from mlspec_attest.formats.jsonio import canonical_value  # noqa: E402
from mlspec_attest.formats.rowform import normalize_value  # noqa: E402

FILE_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def reference_pair(name: str, value: Any) -> str | None:
    normalized = normalize_value(value)
    if normalized is None:
        return None
    return ",[" + canonical_value(name).decode() + "," + canonical_value(normalized).decode() + "]"


def vectorized_pairs(array: Any) -> list[str | None]:
    pairs: list[str | None] = rowarrow.encode_column("c", array).pairs.to_pylist()
    return pairs


def assert_cells(values: list[Any], kind: Any) -> None:
    array = pa.array(values, kind)
    expected = [reference_pair("c", v) for v in array.to_pylist()]
    assert vectorized_pairs(array) == expected
    if pa.types.is_string(kind):  # the same through a dictionary
        assert vectorized_pairs(pc.dictionary_encode(array)) == expected


# --------------------------------------------------------------- numbers, text, doubles
NUMBER_SPELLINGS = [
    "007",
    "+7",
    "-7",
    "7.0",
    "7.00",
    "7e0",
    "0.7E1",
    "-0",
    "-0.0",
    "+0",
    ".1",
    "0.10",
    "1.",
    "1e300",
    "1E+300",
    str(2**53 - 1),
    str(2**53),
    str(2**53 + 1),
    "-" + str(2**53 + 1),
    str(10**63),
    str(10**64),
    str(10**70),
    "1" + "0" * 400,
    "1e400",
    "-1.25e400",
    "1e-400",
    "0.1",
    "1e-7",
    "1.5E-7",
    "0.000001",
    "1e21",
    "1e20",
    "123456789012345680000",
    "9999999999.5",
    "10000000000.5",
    "4503599627370495.5",
    "9007199254740992.5",
    "7.0000000000000001",
    "100000000000000000000.5",
    "2.2250738585072011e-308",
    "5e-324",
    "2.4703282292062328e-324",
    "1.7976931348623157e308",
    "1.7976931348623159e308",
    "0e0",
    "00.000e-5",
    "1_000",
    "1,000",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "0x10",
    "1e",
    "e1",
    ".",
    "+",
    "-",
    "+-1",
    "1.2.3",
    "١٢",
    "１２",
    " 12 ",
    "\t3.50\u00a0",
    "2024-01-01",
]
TEXT_SPELLINGS = [
    "",
    " ",
    "\t",
    "\u3000",
    "\x1c",
    "\x85",
    "Berlin",
    " Pa\u200bris ",
    "Jos\u00e9",
    "Jose\u0301",
    "\ufeffx",
    "a\u00adb",
    "\U000e0041tag",
    "\u0600\u0661",
    "\u2764\ufe0f",
    "a\r\nb",
    "a\rb",
    "a\nb",
    'q"u\\o',
    "\x00\x01\x07\x08\x0b\x0c\x1f\x7f",
    "\u2028\u2029",
    "\ud7ff\ue000",
    "\U0001f600",
    "\u1100\u1161\u11a8",
    "\uac00\u11a8",
    "true",
    "null",
    "NA",
    "\u0345",
    "\U0001fae8 new in Unicode 15",
    "\U000e01ef",
    "\U0010fffd",
    "Stra\u00dfe",
]


def test_the_spellings_of_docs_leakage_md() -> None:
    assert_cells(NUMBER_SPELLINGS + TEXT_SPELLINGS + [None], pa.string())


@given(st.lists(st.text(alphabet="+-.eE0123456789 ", max_size=12), max_size=30))
def test_numeric_looking_text(values: list[str]) -> None:
    assert_cells(values, pa.string())


@st.composite
def numbers(draw: st.DrawFn) -> str:
    sign = draw(st.sampled_from(["", "+", "-"]))
    whole = draw(st.text(alphabet="0123456789", max_size=25))
    point = draw(st.sampled_from(["", "."]))
    fraction = draw(st.text(alphabet="0123456789", max_size=25)) if point else ""
    exponent = ""
    if draw(st.booleans()):
        e = draw(st.integers(min_value=-400, max_value=400))
        exponent = draw(st.sampled_from(["e", "E"])) + draw(st.sampled_from(["", "+"])) + str(e)
    return sign + whole + point + fraction + exponent


@given(st.lists(numbers(), max_size=40))
def test_generated_numbers(values: list[str]) -> None:
    assert_cells(values, pa.string())


UNICODE_ALPHABET = st.characters(codec="utf-8") | st.sampled_from(
    list('\u200b\u200d\u2060\ufeff\u00ad\u0301\u0308\u1161\u11a8\r\n\t \u00a0\u3000\x1c"\\')
)


@given(st.lists(st.text(alphabet=UNICODE_ALPHABET, max_size=10), max_size=30))
def test_generated_text(values: list[str]) -> None:
    assert_cells(values, pa.string())


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.none(), max_size=40))
def test_generated_doubles(values: list[float | None]) -> None:
    assert_cells(values, pa.float64())


@given(st.lists(st.floats(width=32) | st.none(), max_size=40))
def test_generated_float32(values: list[float | None]) -> None:
    assert_cells(values, pa.float32())


def test_doubles_at_every_magnitude() -> None:
    special = [0.0, -0.0, 2.0**53, 2.0**53 - 1, -(2.0**53), 1e21, 1e64, 1e63, 1e-6, 1e-7, 5e-324]
    magnitudes = [m * 10.0**e for e in range(-330, 309) for m in (1.0, 1.5, 7.123456789012345)]
    values = special + magnitudes + [-v for v in magnitudes] + [math.nan, math.inf, -math.inf]
    assert_cells(values, pa.float64())


@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.none(), max_size=40))
def test_generated_int64(values: list[int | None]) -> None:
    assert_cells(values, pa.int64())


def test_integer_types_at_their_limits() -> None:
    assert_cells([0, 2**53 - 1, 2**53, 2**53 + 1, 2**64 - 1], pa.uint64())
    assert_cells([-(2**63), -(2**53), -(2**53) + 1, 2**63 - 1], pa.int64())
    assert_cells([-128, 127, None], pa.int8())
    assert_cells([True, False, None], pa.bool_())
    assert_cells([None, None], pa.null())


def test_other_types_go_through_the_reference_cell_by_cell() -> None:
    import datetime as dt
    from decimal import Decimal

    assert_cells([dt.date(2024, 1, 2), None], pa.date32())
    assert_cells([dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)], pa.timestamp("us", "UTC"))
    assert_cells([Decimal("7.00"), Decimal("-0.10"), None], pa.decimal128(10, 2))
    assert_cells([b"\x00\xff", None], pa.binary())
    assert_cells([["1", None, "7.0"], None, []], pa.list_(pa.string()))
    assert_cells([{"A": 1, "b": None}], pa.struct([("A", pa.int64()), ("b", pa.string())]))


# --------------------------------------------------------------- whole files
def both(path: Path, **options: Any) -> tuple[Any, Any]:
    """(vectorized, reference) results of one call: digests in order, or the error words."""

    def run(vectorized: bool) -> Any:
        try:
            return list(iter_row_digests(path, vectorized=vectorized, **options))
        except MlspecError as exc:
            return (type(exc).__name__, exc.message, exc.remedy)

    return run(True), run(False)


def profiles(path: Path, drops: list[frozenset[str]]) -> tuple[Any, Any]:
    def run(vectorized: bool) -> Any:
        sinks: list[list[bytes]] = [[] for _ in drops]
        try:
            profile = hash_rows(
                open_dataset(path),
                [(d, s.append) for d, s in zip(drops, sinks, strict=True)],
                vectorized=vectorized,
            )
        except MlspecError as exc:
            return exc.message
        return profile, sinks

    return run(True), run(False)


def same_everywhere(path: Path, exclude: list[str] | None = None) -> None:
    fast, slow = both(path, exclude_columns=exclude or [])
    assert fast == slow
    fast_profile, slow_profile = profiles(path, [frozenset(), frozenset({"a", "b"})])
    assert fast_profile == slow_profile


def reference_only(monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """Make the reference reader of ``fmt`` fail, so a test shows Arrow read everything."""

    def refuse(*_: Any) -> Any:
        raise AssertionError(f"the reference reader was asked to read {fmt}")

    monkeypatch.setitem(engine._READERS, fmt, refuse)


CELL = st.one_of(numbers(), st.text(alphabet=UNICODE_ALPHABET, max_size=6), st.just(""))
NAMES = st.lists(
    st.sampled_from(["a", "A", " b", "b\u200b", "C", "Stra\u00dfe", "STRASSE", "d", "e"]),
    min_size=1,
    max_size=4,
    unique=True,
)


#: Spellings of (nearly) one value: columns that may or may not be constant.
SEVEN = st.sampled_from(["7", "07", "7.0", " 7 ", "7e0", "7.0000000000000001", "7.5", ""])


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    names = draw(NAMES)
    cells = [draw(st.sampled_from([CELL, SEVEN, st.just("x")])) for _ in names]
    rows = draw(st.lists(st.tuples(*cells).map(list), max_size=8))
    return names, rows


def csv_bytes(
    names: list[str], rows: list[list[str]], *, delimiter: str, quoting: Any, eol: str
) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator=eol)
    writer.writerow(names)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


@FILE_SETTINGS
@given(
    tables(),
    st.sampled_from([",", "\t"]),
    st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.booleans(),
    st.booleans(),
)
def test_generated_csv_and_tsv(
    tmp_path: Path,
    table: tuple[list[str], list[list[str]]],
    delimiter: str,
    quoting: int,
    eol: str,
    bom: bool,
    gzipped: bool,
) -> None:
    names, rows = table
    data = csv_bytes(names, rows, delimiter=delimiter, quoting=quoting, eol=eol)
    data = (b"\xef\xbb\xbf" if bom else b"") + data
    suffix = ".csv" if delimiter == "," else ".tsv"
    path = tmp_path / ("t" + suffix + (".gz" if gzipped else ""))
    path.write_bytes(gzip.compress(data) if gzipped else data)
    same_everywhere(path)


JSON_NUMBER = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(
        ["7.0", "7e0", "-0", "-0.0", "1.0e2", "1e400", "1E-400", "0.1", "7.0000000000000001"]
    ),
)
JSON_VALUES = {
    "text": CELL.map(json.dumps),
    "number": JSON_NUMBER,
    "bool": st.sampled_from(["true", "false"]),
    "null": st.sampled_from(["null", "1", '"x"']),
    "seven": st.sampled_from(["7", "7.0", "7e0", "7.0000000000000001", "7.5", '"7"', "null"]),
    "mixed": st.one_of(CELL.map(json.dumps), JSON_NUMBER, st.just("true"), st.just("null")),
}


@st.composite
def json_lines(draw: st.DrawFn) -> str:
    names = draw(NAMES)
    kinds = [draw(st.sampled_from(sorted(JSON_VALUES))) for _ in names]
    lines = []
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        members = [
            json.dumps(name) + ": " + draw(JSON_VALUES[kind])
            for name, kind in zip(names, kinds, strict=True)
            if draw(st.integers(min_value=0, max_value=4))  # 1 in 5 keys missing
        ]
        lines.append("{" + ", ".join(members) + "}")
    blank = draw(st.sampled_from(["", "\n", " \t\n"]))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return end.join(lines) + (end if lines and draw(st.booleans()) else "") + blank


@FILE_SETTINGS
@given(json_lines())
def test_generated_jsonl(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(text, encoding="utf-8", newline="")
    same_everywhere(path)


@FILE_SETTINGS
@given(
    st.lists(st.floats() | st.none(), min_size=1, max_size=8),
    st.lists(
        st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.none(), min_size=8, max_size=8
    ),
    st.lists(st.text(alphabet=UNICODE_ALPHABET, max_size=5) | st.none(), min_size=8, max_size=8),
)
def test_generated_parquet(
    tmp_path: Path, doubles: list[float | None], ints: list[int | None], texts: list[str | None]
) -> None:
    n = len(doubles)
    table = pa.table(
        {
            "A": pa.array(doubles, pa.float64()),
            "b ": pa.array(ints[:n], pa.int64()),
            "c": pa.array(texts[:n], pa.string()),
            "d": pc.dictionary_encode(pa.array(texts[:n], pa.string())),
            "e": pa.array([x is None for x in texts[:n]], pa.bool_()),
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    same_everywhere(tmp_path / "t.parquet")


# --------------------------------------------------------------- hand-picked files
def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


SPELLED = csv_bytes(
    ["id", "v"],
    [[str(i), v] for i, v in enumerate(NUMBER_SPELLINGS)],
    delimiter=",",
    quoting=csv.QUOTE_MINIMAL,
    eol="\n",
)


def test_every_spelling_in_csv_jsonl_and_parquet(tmp_path: Path) -> None:
    same_everywhere(write(tmp_path / "n.csv", SPELLED), exclude=["id"])
    lines = [json.dumps({"v": v, "i": i}) for i, v in enumerate(NUMBER_SPELLINGS)]
    numbers_as_json = [
        "7",
        "7.0",
        "7e0",
        "-0",
        "1e300",
        str(2**53 + 1),
        str(10**70),
        "0.1",
        "1e-7",
        "1e21",
        "1e400",
        "-0.0",
        "12345678901234567890123",
        "NaN",
    ]
    lines += ['{"v": ' + n + "}" for n in numbers_as_json] + ['{"v": true}', '{"v": false}']
    same_everywhere(write(tmp_path / "n.jsonl", "\n".join(lines) + "\n"))
    same_everywhere(write(tmp_path / "m.jsonl", "\n".join(lines[:-3]) + "\n"))
    table = pa.table(
        {"v": pa.array([7.0, 1e300, 2.0**53 + 2, 1e21, 0.1, 1e-7, math.nan, math.inf])}
    )
    pq.write_table(table, tmp_path / "n.parquet")
    same_everywhere(tmp_path / "n.parquet")


def test_names_case_order_and_missing_keys(tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", "Age ,CITY,x\n34,Berlin,\n")
    b = write(tmp_path / "b.jsonl", '{"city": "Berlin", "a\u200bge": 34.0}\n{"CITY":"Paris"}\n')
    for path in (a, b):
        same_everywhere(path)
    assert next(iter_row_digests(a)) == next(iter_row_digests(b))


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("dup.csv", "Age,age\n1,2\n"),
        ("dup.jsonl", '{"Age": 1, "age\u200b": 2}\n'),
        ("dup2.jsonl", '{"a": 1}\n{"A": 2, "a": null}\n'),
        ("ragged.csv", "a,b\n1,2\n3\n"),
        ("quote.csv", 'a,b\n"x"y,2\n'),
        ("open.csv", 'a,b\n1,"2\n'),
        ("utf8.csv", b"a,b\n1,\xff\n"),
        ("header.csv", b"a\xff,b\n1,2\n"),
        ("empty.csv", ""),
        ("blank.csv", "\n\n"),
        ("nan.jsonl", '{"a": NaN}\n'),
        ("inf.jsonl", '{"a": -Infinity}\n'),
        ("two.jsonl", '{"a": 1} {"a": 2}\n'),
        ("split.jsonl", '{"a": 1,\n"b": 2}\n'),
        ("array.jsonl", "[1]\n"),
        ("dupkey.jsonl", '{"a": 1, "a": 2}\n'),
        ("deep.jsonl", '{"a": ' + "[" * 70 + "1" + "]" * 70 + "}\n"),
        ("surrogate.jsonl", '{"a": "\\ud800"}\n'),
        ("control.jsonl", '{"a": "x\ty"}\n'),
        ("gz.csv.gz", "a\n1\n"),
        ("trailing.csv", "a,b\n1,2,\n"),
    ],
)
def test_bad_input_is_refused_in_the_same_words(
    tmp_path: Path, name: str, data: str | bytes
) -> None:
    fast, slow = both(write(tmp_path / name, data))
    assert fast == slow
    assert isinstance(fast, tuple), "bad input must be refused"


def test_a_field_over_the_csv_limit(tmp_path: Path) -> None:
    limit = csv.field_size_limit()
    path = write(tmp_path / "big.csv", "a\n" + "x" * (limit + 1) + "\n")
    fast, slow = both(path)
    assert fast == slow and isinstance(fast, tuple)
    exact = write(tmp_path / "fits.csv", "a\n" + "\u00e9" * limit + "\n")  # 2 bytes a character
    fast, slow = both(exact)
    assert fast == slow and isinstance(fast, list)


def test_parquet_of_a_type_the_rows_do_not_have(tmp_path: Path) -> None:
    import datetime as dt

    pq.write_table(pa.table({"d": pa.array([dt.timedelta(1)])}), tmp_path / "d.parquet")
    fast, slow = both(tmp_path / "d.parquet")
    assert fast == slow and isinstance(fast, tuple)


# --------------------------------------------------------------- streaming and fallback
def test_large_files_stream_through_arrow_batch_by_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [f"{i},{i % 7}.5,w{i % 13},{'x' if i % 2 else ''}" for i in range(150_000)]
    text = "id,v,w,x\n" + "\n".join(rows) + "\n"
    csv_path = write(tmp_path / "big.csv.gz", gzip.compress(text.encode()))
    jsonl = "\n".join(
        json.dumps({"id": i, "v": i % 7 + 0.5, "w": f"w{i % 13}"}) for i in range(150_000)
    )
    jsonl_path = write(tmp_path / "big.jsonl", jsonl + "\n")
    table = pa.table({"id": list(range(150_000)), "w": [f"w{i % 13}" for i in range(150_000)]})
    pq.write_table(table, tmp_path / "big.parquet")
    expected = {p: both(p)[1] for p in (csv_path, jsonl_path, tmp_path / "big.parquet")}
    for fmt in ("csv", "jsonl", "parquet"):
        reference_only(monkeypatch, fmt)
    for path, digests in expected.items():
        assert list(iter_row_digests(path, vectorized=True)) == digests


def test_small_text_datasets_are_read_by_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = write(tmp_path / "small.csv", "a,b\n1,x\n")
    large = write(tmp_path / "large.csv", "a,b\n" + "1,x\n" * (engine.ARROW_MIN_BYTES // 4))
    expected = {path: both(path)[1] for path in (small, large)}
    reference_only(monkeypatch, "csv")
    assert list(iter_row_digests(large)) == expected[large]  # by size: Arrow
    with pytest.raises(AssertionError, match="reference reader"):
        list(iter_row_digests(large, vectorized=False))
    monkeypatch.setitem(engine._BATCH_READERS, "csv", None)  # would fail if called
    monkeypatch.setitem(engine._READERS, "csv", engine._delimited_rows)
    assert list(iter_row_digests(small)) == expected[small]


def test_a_late_chunk_arrow_cannot_vouch_for_falls_back_mid_file(tmp_path: Path) -> None:
    good = "\n".join(json.dumps({"a": i, "b": "x"}) for i in range(60_000))
    nested = '{"a": 1, "b": {"c": [1, 2]}}'
    path = write(tmp_path / "late.jsonl", good + "\n" + nested + "\n" + good + "\n")
    same_everywhere(path)
    quoted = "a,b\n" + "1,2\n" * 300_000 + '"x"y,2\n'
    fast, slow = both(write(tmp_path / "late.csv", quoted))
    assert fast == slow and isinstance(fast, tuple)


# --------------------------------------------------------------- constant columns
@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("c.csv", "a,b,c\n1,7,x\n2,07,x\n3,7.0,x\n4,7e0,x\n"),
        ("f.csv", "a,b,c\n1,7,\n2,7.0000000000000001,\n"),
        ("g.csv", "a,b,c\n1,7.0000000000000001,\n2,7.00000000000000001,\n"),
        ("h.jsonl", '{"a": 1, "b": 7}\n{"a": 2, "b": 7.0}\n'),
        ("i.jsonl", '{"a": 1, "b": null}\n{"a": 2}\n'),
        ("j.jsonl", '{"a": 1}\n{"a": 2, "b": null}\n'),
        ("k.jsonl", '{"a": 1, "b": 7.0000000000000001}\n{"a": 2, "b": 7.0000000000000001}\n'),
        ("l.jsonl", '{"a": 1, "b": 7}\n{"a": 2, "b": 7.0000000000000001}\n'),
        ("m.jsonl", '{"a": 1, "b": 7.0000000000000001}\n{"a": 2, "b": 7}\n'),
        ("n.jsonl", '{"a": 1, "b": 7.5}\n{"a": 2, "b": 7.5}\n'),
        ("o.csv", "a,b\n1,1e400\n2,1e400\n"),
        ("p.csv", "a,b\n1,100000000000000000000.5\n2,1e20\n"),
    ],
)
def test_constant_columns_are_the_references(tmp_path: Path, name: str, data: str) -> None:
    path = write(tmp_path / name, data)
    fast, slow = profiles(path, [frozenset(), frozenset({"b"})])
    assert fast == slow


def test_constant_columns_across_shards(tmp_path: Path) -> None:
    write(tmp_path / "d/p0.csv", "id,b,c\n1,x,\n2,x,\n")
    write(tmp_path / "d/p1.csv", "id,b\n3,x\n")
    write(tmp_path / "d/p2.csv", "id,b,c\n")
    fast, slow = profiles(tmp_path / "d", [frozenset(), frozenset({"id"})])
    assert fast == slow
    assert isinstance(fast[0], Profile) and fast[0].constant == {"b", "c"}


# --------------------------------------------------------------- what the Arrow path reproduces
def python_csv_accepts(data: bytes, delimiter: str) -> bool:
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
    try:
        for _ in csv.reader(text, delimiter=delimiter, strict=True):
            pass
    except csv.Error:
        return False
    return True


@settings(max_examples=600)
@given(
    st.lists(st.sampled_from([b"a", b",", b"\t", b'"', b'""', b"\n", b"\r", b" "]), max_size=24),
    st.sampled_from([",", "\t"]),
    st.booleans(),
    st.lists(st.integers(min_value=0, max_value=30), max_size=4),
)
def test_quote_check_is_python_csv(
    parts: list[bytes], delimiter: str, bom: bool, cuts: list[int]
) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + b"".join(parts)
    check = QuoteCheck(delimiter)
    start = 0
    for cut in sorted(min(c, len(data)) for c in cuts):
        check.feed(data[start:cut])
        start = cut
    check.feed(data[start:])
    assert check.finish() == python_csv_accepts(data, delimiter)


def test_whitespace_is_what_str_strip_removes() -> None:
    spaces = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    assert spaces == rowarrow.WHITESPACE


def test_arrow_nfc_is_python_nfc_for_every_assigned_character() -> None:
    """The reason cells holding only assigned characters need not go to the reference."""
    assigned = [
        chr(c)
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) not in ("Cn", "Cs")
    ]
    for form in ("NFC", "NFD"):
        ours = pc.utf8_normalize(pa.array(assigned), form=form).to_pylist()
        assert ours == [unicodedata.normalize(form, c) for c in assigned]
    pairs = [a + b for a in ("e", "\u1100", "\uac00", "A") for b in ("\u0301", "\u1161", "\u11a8")]
    ours = pc.utf8_normalize(pa.array(pairs), form="NFC").to_pylist()
    assert ours == [unicodedata.normalize("NFC", p) for p in pairs]


def test_unassigned_characters_are_left_to_the_reference() -> None:
    cells = ["\U0001fae8", "a\U000e01f0", "\U00050000", "\u0378", "ok\u00e9"]
    flagged = pc.match_substring_regex(
        pa.array(cells), rowarrow_text._unassigned_class()
    ).to_pylist()
    assert flagged == [unicodedata.category(c[-1]) == "Cn" for c in cells]


def test_the_self_check_passes_here() -> None:
    assert rowarrow.available()


def test_without_pyarrow_the_reference_reads_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "t.csv", "a,b\n1,x\n")
    expected = both(path)[1]
    for name in [n for n in sys.modules if n == "pyarrow" or n.startswith("pyarrow.")]:
        monkeypatch.setitem(sys.modules, name, None)
    assert list(iter_row_digests(path, vectorized=True)) == expected


def test_per_example_files_are_unchanged(tmp_path: Path) -> None:
    write(tmp_path / "img/a.png", "A")
    write(tmp_path / "img/b.png", "B")
    fast, slow = both(tmp_path / "img")
    assert fast == slow
