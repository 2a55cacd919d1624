"""Data files read through Arrow in record batches, for the row engine (:mod:`.rows`).

Each reader yields :class:`Batch` es: a few thousand rows whose canonical pairs
(:mod:`mlspec_attest.formats.rowarrow`) were computed a column at a time. Memory
is bounded by the batch: CSV and TSV stream through ``pyarrow.csv.open_csv``
(gzip by content, as the one reader does), Parquet through
``ParquetFile.iter_batches``, JSON Lines through :mod:`.rows_jsonl`.

A reader raises :class:`~mlspec_attest.formats.rowarrow.Decline` when it cannot
vouch for what it read: anything Arrow refuses, quoting Python's ``csv`` refuses
(:class:`~mlspec_attest.formats.csvquotes.QuoteCheck`), a field over Python's
``csv`` size limit, invalid UTF-8, a value the reference refuses. The engine then
reads the rest of that file with the reference reader, which decides (and words
any error) exactly as it always did.
"""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import IO, Any

from msgspec import Struct

from mlspec_attest.errors import MlspecError, require
from mlspec_attest.formats.csvquotes import QuoteCheck
from mlspec_attest.formats.rowarrow import Column, Decline, arrow, encode_column, join_rows
from mlspec_attest.formats.rowform import column_names, ordered_row
from mlspec_attest.formats.tabular import DELIMITERS, ParquetRecords, TextSource

_BLOCK_SIZE = 1 << 20
#: What a failing Arrow read may raise (ArrowInvalid is a ValueError, ArrowIOError an
#: OSError; gzip raises OSError, EOFError and zlib.error; names may not decode).
READ_ERRORS: tuple[type[Exception], ...] = (ValueError, OSError, EOFError, zlib.error)
_HEADER_ERRORS: tuple[type[Exception], ...] = (*READ_ERRORS, MlspecError)


class Batch(Struct, frozen=True):
    """Rows of one file: their columns' canonical pairs, names canonical and distinct.

    ``first`` and ``keys`` are the first row as the reference reads it and the names
    it holds (null or not), when the reader knows them better than the columns do
    (JSON Lines: a missing key and a null are one null in Arrow).
    """

    names: Sequence[str]
    columns: Sequence[Column]
    rows: int
    first: dict[str, Any] | None = None
    keys: frozenset[str] | None = None

    def row_bytes(self, drop: frozenset[str]) -> list[bytes]:
        """Each row's RFC 8785 bytes without the ``drop`` columns."""
        order = sorted(range(len(self.names)), key=self.names.__getitem__)
        kept = [self.columns[i].pairs for i in order if self.names[i] not in drop]
        return join_rows(kept, self.rows)

    def column(self, name: str) -> Column | None:
        for own, column in zip(self.names, self.columns, strict=True):
            if own == name:
                return column
        return None

    def first_keys(self) -> frozenset[str]:
        """The names of the first row (every column, unless the reader knows better)."""
        return frozenset(self.names) if self.keys is None else self.keys

    def first_row(self) -> dict[str, Any]:
        """The reference's normalized first row (names ascending, nulls left out)."""
        if self.first is not None:
            return self.first
        cells = [column.raw.slice(0, 1).to_pylist()[0] for column in self.columns]
        order = sorted(range(len(self.names)), key=self.names.__getitem__)
        try:
            return ordered_row(self.names, order, cells)
        except MlspecError as exc:
            raise Decline(exc.message) from exc


class BatchEncoder:
    """Encodes the batches of one file; text columns with few distinct values are
    dictionary-encoded first, so each distinct value is canonicalized once."""

    def __init__(self, names: Sequence[str], *, exact: bool = True) -> None:
        self.names = names
        self.exact = exact
        self._plain: set[int] = set()

    def __call__(self, arrays: Sequence[Any], rows: int | None = None) -> Batch:
        pa, pc = arrow()
        if rows is None:
            rows = len(arrays[0]) if arrays else 0
        columns = []
        for index, (name, array) in enumerate(zip(self.names, arrays, strict=True)):
            if index not in self._plain and _is_text(pa, array.type):
                array = pc.dictionary_encode(array)
                if 2 * len(array.dictionary) > rows:
                    self._plain.add(index)  # mostly distinct: not worth it
            columns.append(encode_column(name, array, exact=self.exact))
        return Batch(self.names, columns, rows)


class Rows(Struct, frozen=True):
    """Rows a reader read with the reference instead (a part Arrow could not vouch
    for): each row's canonical names (null or not) and its normalized row."""

    rows: Sequence[tuple[Sequence[str], dict[str, Any]]]


def _is_text(pa: Any, kind: Any) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


# --- CSV and TSV -------------------------------------------------------------------
class _Checked(io.RawIOBase):
    """The decompressed bytes of a CSV file, each also fed to a :class:`QuoteCheck`."""

    def __init__(self, inner: IO[bytes], check: QuoteCheck) -> None:
        super().__init__()
        self._inner = inner
        self.check = check

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._inner.read(-1 if size is None else size)
        if data:
            self.check.feed(data)
        elif not self.check.finished:
            self.check.finish()
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _csv_options(fmt: str, names: Sequence[str] | None) -> dict[str, Any]:
    pa, _ = arrow()
    pcsv = _pcsv()
    convert = pcsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()) if names is not None else None,
        strings_can_be_null=False,
    )
    return {
        "read_options": pcsv.ReadOptions(block_size=_BLOCK_SIZE),
        "parse_options": pcsv.ParseOptions(delimiter=DELIMITERS[fmt], newlines_in_values=True),
        "convert_options": convert,
    }


def _pcsv() -> Any:
    return require("pyarrow.csv", "reading data files through Arrow")


def _header(path: Path, fmt: str) -> list[str]:
    """The header as Arrow reads it (its first block only)."""
    with TextSource(path) as source:
        reader = _pcsv().open_csv(source.text.buffer, **_csv_options(fmt, None))
        names = list(reader.schema.names)
        reader.close()
        return names


def csv_batches(path: Path, fmt: str, columns: set[str]) -> Generator[Batch, None, None]:
    """The batches of a CSV or TSV file, all cells read as text (as the reference does)."""
    try:
        header = _header(path, fmt)
        names = column_names(header, what=str(path))
    except _HEADER_ERRORS as exc:  # the reference words the error (if it finds one)
        raise Decline(str(exc)) from exc
    columns.update(names)
    limit = csv.field_size_limit()
    with TextSource(path) as source:
        stream = _Checked(source.text.buffer, QuoteCheck(DELIMITERS[fmt]))
        try:
            reader = _pcsv().open_csv(stream, **_csv_options(fmt, header))
        except READ_ERRORS as exc:
            raise Decline(str(exc)) from exc
        try:
            if list(reader.schema.names) != header:
                raise Decline("the header changed between two reads")
            encode = BatchEncoder(names)
            for batch in reader:
                arrays = batch.columns
                _check_sizes(arrays, limit)
                if not stream.check.ok:
                    raise Decline("quoting Python's csv module refuses")
                yield encode(arrays)
        except READ_ERRORS as exc:
            raise Decline(str(exc)) from exc
        finally:
            reader.close()  # before the file: Arrow may still be reading ahead
        if not (stream.check.finished or stream.check.finish()) or not stream.check.ok:
            raise Decline("quoting Python's csv module refuses")


def _check_sizes(arrays: Sequence[Any], limit: int) -> None:
    """A field longer than Python's csv limit is an error there (characters; a field of
    ``limit`` bytes or fewer holds no more characters)."""
    _, pc = arrow()
    for array in arrays:
        if (pc.max(pc.binary_length(array)).as_py() or 0) <= limit:
            continue
        if (pc.max(pc.utf8_length(array)).as_py() or 0) > limit:
            raise Decline("a field over Python's csv field size limit")


# --- Parquet -----------------------------------------------------------------------
def parquet_batches(path: Path, fmt: str, columns: set[str]) -> Generator[Batch, None, None]:
    """The batches of a Parquet file (string columns checked to be UTF-8)."""
    pa, _ = arrow()
    try:
        records = ParquetRecords(path)
    except MlspecError as exc:
        raise Decline(exc.message) from exc
    columns.update(records.names)
    encode = BatchEncoder(records.names)
    try:
        for batch in records.batches():
            arrays = batch.columns
            for array in arrays:
                if _holds_text(pa, array.type):
                    array.validate(full=True)
            yield encode(arrays)
    except READ_ERRORS as exc:
        raise Decline(str(exc)) from exc


def _holds_text(pa: Any, kind: Any) -> bool:
    if pa.types.is_dictionary(kind):
        return _holds_text(pa, kind.value_type)
    return _is_text(pa, kind)


BatchReader = Callable[[Path, str, set[str]], Generator[Batch | Rows, None, None]]

__all__ = [
    "READ_ERRORS",
    "Batch",
    "BatchEncoder",
    "BatchReader",
    "Rows",
    "csv_batches",
    "parquet_batches",
]
