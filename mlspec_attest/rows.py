"""Row canonicalization ``mlspec-rows/v1``: one SHA-256 per dataset row.

Two rows that hold the same values must hash the same, whatever file format,
column order, padding or number spelling they were written with. docs/leakage.md
is the normative description; in short:

1. **Columns.** Names are stripped of surrounding whitespace; two columns with
   the same stripped name make the file bad input. Excluded columns are dropped
   (each must exist in the file, so a misspelt exclusion cannot silently keep a
   row id that makes every row unique). The remaining columns are taken in
   ascending Unicode code point order of their names.
2. **Text values** (every CSV cell; JSON, Parquet strings) are stripped of
   surrounding Unicode whitespace. Empty text is null. Text that matches
   ``[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?`` (ASCII digits) is a number.
   Nothing else is converted: ``true``, ``NaN`` or ``2024-01-01`` in a CSV stay text.
3. **Numbers** (numeric text, JSON numbers, Parquet ints, floats and decimals)
   are read as exact decimals and become: an integer of magnitude below 2**53 ->
   a JSON integer (``007``, ``+7``, ``7.0``, ``7e0``, ``0.7E1`` -> ``7``;
   ``-0.0`` -> ``0``); an integer from 2**53 up to 10**64 -> a JSON string of its
   decimal digits (exact; RFC 8785 numbers are doubles); anything else finite as a
   double -> the nearest IEEE-754 double, which RFC 8785 writes in its shortest
   form (``0.10`` -> ``0.1``, ``1.5E-7`` -> ``1.5e-7``); beyond the double range
   -> a JSON string in scientific form (``1e+400``).
4. **Other values**: null, booleans kept; a float NaN is null and +-inf is the
   text ``inf``/``-inf`` (as pandas writes them); dates and times are their ISO
   8601 text; bytes are ``base64:<standard base64>``; lists and objects keep their
   structure with every member normalized by these rules (object keys untouched).
5. **The row** is the list of ``[column, value]`` pairs, in column order, leaving
   out columns whose value is null (so an empty CSV cell, a JSON ``null`` and a
   missing JSONL key are the same), serialized as RFC 8785 canonical JSON and
   hashed with SHA-256.

This module only decides values (:func:`normalize_value`): every row is a plain
Python list of ``[name, value]`` pairs whose values are None, bool, int (of
magnitude below 2**53), finite float, str, list or dict, and its bytes come from
:func:`mlspec_attest.jsonio.canonical` (the ``rfc8785`` library). The column
order of CSV, TSV and Parquet files is sorted once per file.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import gzip
import hashlib
import importlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from .digest import digest_directory, path_components_key, sha256_file
from .errors import ArtifactPathError, BadInputError, MalformedDocumentError, UsageError
from .jsonio import canonical

CANONICALIZATION = "mlspec-rows/v1"
FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet", "files")

_SAFE_INTEGER = 2**53
_EXACT_INTEGER_DIGITS = 64
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_SMALL_INT_RE = re.compile(r"[+-]?\d{1,15}", re.ASCII)
_PLAIN_FRACTION_RE = re.compile(r"[+-]?\d*\.\d*[1-9]\d*", re.ASCII)
_NUMBER_START = frozenset("+-.0123456789")
_PARQUET_BATCH = 65536
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class _JsonNumber:
    """A JSON number token kept as text, so it is normalized exactly like numeric text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


# --- values ------------------------------------------------------------------
def _number_value(text: str) -> int | float | str:
    """The normalized value of a number given as text matching ``_NUMBER_RE``."""
    if _SMALL_INT_RE.fullmatch(text):
        return int(text)
    if _PLAIN_FRACTION_RE.fullmatch(text):
        # Fast path, same result as below: no exponent and a nonzero digit after
        # the point, so the value is not an integer and only its double remains.
        double = float(text)
        if math.isfinite(double):
            return double
    return _general_number_value(text)


def _general_number_value(text: str) -> int | float | str:
    value = Decimal(text)
    if value.is_zero():
        return 0
    adjusted = value.adjusted()
    if 0 <= adjusted < _EXACT_INTEGER_DIGITS:
        _, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)  # finite by the regex
        if exponent >= 0 or not any(digits[exponent:]):
            integer = int(value)
            if -_SAFE_INTEGER < integer < _SAFE_INTEGER:
                return integer
            return str(integer)
    double = float(text)
    if math.isfinite(double):
        return double
    sign, digits, _ = value.as_tuple()
    mantissa = "".join(map(str, digits)).rstrip("0")
    scientific = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
    return f"{'-' if sign else ''}{scientific}e{adjusted:+d}"


def _text_value(text: str) -> int | float | str | None:
    """The normalized value of text: None when empty, a number when numeric."""
    stripped = text.strip()
    if not stripped:
        return None
    if stripped[0] in _NUMBER_START:
        if _SMALL_INT_RE.fullmatch(stripped):
            return int(stripped)
        if _NUMBER_RE.fullmatch(stripped):
            return _number_value(stripped)
    return stripped


def normalize_value(value: Any) -> Any:
    """The normalized plain-JSON value of one input value; None when it is null.

    The result is None, a bool, an int of magnitude below 2**53, a finite float,
    a str, or a list or dict of such values, ready for RFC 8785.
    """
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        return _text_value(value)
    if isinstance(value, _JsonNumber):
        return _number_value(value.text)
    if isinstance(value, int):
        if -_SAFE_INTEGER < value < _SAFE_INTEGER:
            return int(value)
        return _number_value(str(value))
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if not value.is_integer():
            return float(value)  # its shortest decimal is not an integer either
        if -_SAFE_INTEGER < value < _SAFE_INTEGER:
            return int(value)
        return _number_value(repr(float(value)))
    if isinstance(value, Decimal):
        if value.is_nan():
            return None
        if value.is_infinite():
            return "-inf" if value < 0 else "inf"
        return _number_value(str(value))
    if isinstance(value, list | tuple):
        return [normalize_value(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise BadInputError("object keys must be strings")
        return {key: normalize_value(member) for key, member in value.items()}
    if isinstance(value, dt.date | dt.time):
        return _text_value(value.isoformat())
    if isinstance(value, bytes | bytearray | memoryview):
        return "base64:" + base64.b64encode(bytes(value)).decode("ascii")
    raise BadInputError(
        f"cannot canonicalize a value of type {type(value).__name__}",
        remedy="leave the column out with --exclude-column NAME",
    )


def _canonical(obj: Any, where: object) -> bytes:
    """RFC 8785 bytes of normalized values; unserializable text is bad input."""
    try:
        return canonical(obj)
    except MalformedDocumentError as exc:  # in practice: an unpaired surrogate
        raise BadInputError(f"{where}: {exc.message}") from exc


def value_token(value: Any) -> str | None:
    """Canonical JSON text of one normalized value; None when the value is null."""
    normalized = normalize_value(value)
    if normalized is None:
        return None
    return _canonical(normalized, "value").decode("utf-8")


def _column_names(names: Sequence[str], *, what: str) -> list[str]:
    stripped = [n.strip() for n in names]
    seen: set[str] = set()
    for name in stripped:
        if name in seen:
            raise BadInputError(f"{what}: column {name!r} appears twice")
        seen.add(name)
    return stripped


def _row_pairs(columns: Iterable[tuple[str, Any]]) -> list[list[Any]]:
    """``[name, value]`` pairs of (name, raw value) in column order, nulls left out."""
    pairs: list[list[Any]] = []
    for name, raw in columns:
        try:
            value = normalize_value(raw)
        except BadInputError as exc:
            raise BadInputError(f"column {name!r}: {exc.message}", remedy=exc.remedy) from exc
        if value is not None:
            pairs.append([name, value])
    return pairs


def canonical_row(row: Mapping[str, Any], exclude: Iterable[str] = ()) -> bytes:
    """The ``mlspec-rows/v1`` bytes of one row given as column -> value."""
    names = _column_names(list(row), what="row")
    excluded = {e.strip() for e in exclude}
    values = dict(zip(names, row.values(), strict=True))
    kept = sorted(n for n in names if n not in excluded)
    return _canonical(_row_pairs((name, values[name]) for name in kept), "row")


def row_digest(row: Mapping[str, Any], exclude: Iterable[str] = ()) -> bytes:
    """SHA-256 (32 raw bytes) of :func:`canonical_row`."""
    return hashlib.sha256(canonical_row(row, exclude)).digest()


# --- readers -----------------------------------------------------------------
def _check_excluded(path: Path, columns: Iterable[str], excluded: frozenset[str]) -> None:
    missing = sorted(excluded - set(columns))
    if missing:
        raise BadInputError(
            f"{path}: excluded column(s) {', '.join(map(repr, missing))} not in the file",
            remedy="check the spelling: a row id left in makes every row unique and hides duplicates",
        )


def _open_text(path: Path) -> IO[str]:
    try:
        if path.name.lower().endswith(".gz"):
            return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
        return open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError as exc:
        raise ArtifactPathError(f"{path}: no such file") from exc
    except OSError as exc:
        raise ArtifactPathError(f"{path}: cannot read ({exc.strerror})") from exc


def _csv_digests(path: Path, excluded: frozenset[str], *, delimiter: str = ",") -> Iterator[bytes]:
    sha256, text_value = hashlib.sha256, _text_value
    with _open_text(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
            if not header:
                raise BadInputError(
                    f"{path}: no header row", remedy="the first line must name the columns"
                )
            names = _column_names(header, what=str(path))
            _check_excluded(path, names, excluded)
            width = len(names)
            columns = sorted((n, i) for i, n in enumerate(names) if n not in excluded)
            for record in reader:
                if not record:
                    continue  # blank line
                if len(record) != width:
                    raise BadInputError(
                        f"{path}:{reader.line_num}: {len(record)} fields, the header has {width}"
                    )
                pairs = [[n, v] for n, i in columns if (v := text_value(record[i])) is not None]
                yield sha256(_canonical(pairs, path)).digest()
        except csv.Error as exc:
            raise BadInputError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from exc
        except UnicodeDecodeError as exc:
            raise BadInputError(f"{path}: not UTF-8 text ({exc.reason})") from exc
        except (OSError, EOFError) as exc:
            raise BadInputError(f"{path}: cannot read ({exc})") from exc


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(token: str) -> Any:
    raise ValueError(f"non-standard JSON constant {token}")


_JSON_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_pairs,
    parse_float=_JsonNumber,
    parse_int=_JsonNumber,
    parse_constant=_no_constant,
)


def _jsonl_digests(path: Path, excluded: frozenset[str]) -> Iterator[bytes]:
    seen_excluded: set[str] = set()
    rows = 0
    with _open_text(path) as fh:
        lineno = 0
        try:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = _JSON_DECODER.decode(line)
                except ValueError as exc:
                    raise BadInputError(f"{path}:{lineno}: not valid JSON ({exc})") from exc
                if not isinstance(obj, dict):
                    raise BadInputError(f"{path}:{lineno}: expected a JSON object per line")
                if excluded:
                    seen_excluded.update(excluded.intersection(k.strip() for k in obj))
                rows += 1
                yield row_digest(obj, excluded)
        except UnicodeDecodeError as exc:
            raise BadInputError(f"{path}:{lineno + 1}: not UTF-8 text ({exc.reason})") from exc
        except (OSError, EOFError) as exc:
            raise BadInputError(f"{path}: cannot read ({exc})") from exc
    if rows:
        _check_excluded(path, seen_excluded, excluded)


def _parquet_digests(path: Path, excluded: frozenset[str]) -> Iterator[bytes]:
    try:
        pq = importlib.import_module("pyarrow.parquet")
    except ImportError as exc:
        raise BadInputError(
            f"{path}: reading Parquet needs pyarrow",
            remedy="install mlspec-attest[parquet] (or pip install pyarrow)",
        ) from exc
    try:
        parquet = pq.ParquetFile(path)
        original = list(parquet.schema_arrow.names)
        names = _column_names(original, what=str(path))
        _check_excluded(path, names, excluded)
        kept = sorted((n, o) for o, n in zip(original, names, strict=True) if n not in excluded)
        kept_names = [n for n, _ in kept]
        selected = [o for _, o in kept]
        sha256 = hashlib.sha256
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, columns=selected):
            columns = [batch.column(o).to_pylist() for o in selected]
            rows = zip(*columns, strict=True) if columns else [()] * batch.num_rows
            for values in rows:
                pairs = _row_pairs(zip(kept_names, values, strict=True))
                yield sha256(_canonical(pairs, path)).digest()
    except (OSError, ValueError, TypeError, ImportError) as exc:
        # pyarrow's ArrowInvalid/ArrowIOError derive from ValueError/OSError.
        raise BadInputError(f"{path}: cannot read Parquet ({exc})") from exc


def _files_digests(path: Path) -> Iterator[bytes]:
    if path.is_dir():
        for entry in digest_directory(path).entries:
            if not any(part.startswith(".") for part in entry.path.split("/")):
                yield bytes.fromhex(entry.sha256)
    else:
        yield bytes.fromhex(sha256_file(path)[0])


_READERS: dict[str, Callable[[Path, frozenset[str]], Iterator[bytes]]] = {
    "csv": _csv_digests,
    "tsv": lambda path, excluded: _csv_digests(path, excluded, delimiter="\t"),
    "jsonl": _jsonl_digests,
    "parquet": _parquet_digests,
}


def format_of(path: Path) -> str | None:
    """The row format a file name implies (``data.csv.gz`` -> csv), or None."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return _SUFFIXES.get(os.path.splitext(name)[1])


def resolve_format(path: Path, fmt: str) -> str:
    """The format to read ``path`` with; ``auto`` means by suffix, ``files`` for directories."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", remedy=f"use one of: {', '.join(FORMATS)}")
    if not path.exists():
        raise ArtifactPathError(f"{path}: no such file or directory")
    if fmt != "auto":
        return fmt
    if path.is_dir():
        return "files"
    found = format_of(path)
    if found is None:
        raise BadInputError(
            f"{path}: cannot tell the format from the file name",
            remedy="pass the format explicitly (csv, tsv, jsonl, parquet or files)",
        )
    return found


def _shards(root: Path, fmt: str) -> list[Path]:
    """Files of ``fmt`` under ``root`` (hidden ones skipped), in path-component order."""
    found: list[tuple[tuple[str, ...], Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            full = Path(dirpath) / name
            if not name.startswith(".") and format_of(full) == fmt:
                found.append((path_components_key(full.relative_to(root).as_posix()), full))
    if not found:
        raise BadInputError(f"{root}: directory holds no {fmt} files")
    return [p for _, p in sorted(found)]


def iter_row_digests(
    path: Path, fmt: str = "auto", exclude_columns: Sequence[str] = ()
) -> Iterator[bytes]:
    """Yield one 32-byte SHA-256 per row (or per file, for ``files``), streaming.

    A directory read as ``csv``, ``tsv``, ``jsonl`` or ``parquet`` is a sharded
    dataset: the rows of every file of that format under it.
    """
    resolved = resolve_format(path, fmt)
    excluded = frozenset(c.strip() for c in exclude_columns)
    if resolved == "files":
        if excluded:
            raise UsageError(
                f"{path}: --exclude-column applies to tabular data, not to per-file digests"
            )
        yield from _files_digests(path)
        return
    reader = _READERS[resolved]
    for shard in _shards(path, resolved) if path.is_dir() else [path]:
        yield from reader(shard, excluded)


__all__ = [
    "CANONICALIZATION",
    "FORMATS",
    "canonical_row",
    "format_of",
    "iter_row_digests",
    "normalize_value",
    "resolve_format",
    "row_digest",
    "value_token",
]
