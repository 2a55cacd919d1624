"""Streaming reader for tabular datasets: CSV, TSV and JSON Lines (optionally gzipped).

Rows are read one at a time, so analysis and validation run in memory bounded
by the number of columns, not rows. The reader hashes the raw file bytes as it
goes: once a file has been read to the end, :attr:`TabularReader.sha256` is the
same digest ``mlspec-attest digest`` prints for it, so a report can name the
exact bytes it describes without reading the file twice.

Cells keep their source typing. CSV cells are text (``str``) and their kind is
decided lexically (``"12"`` is an integer, ``"1.5"`` a number, ``"true"`` a
boolean); JSON Lines cells keep their JSON type (``"12"`` is a string there).
A CSV cell is missing when it is one of :data:`MISSING_TOKENS`; a JSON Lines
cell is missing when it is ``null`` or the key is absent. Missing cells are
``None``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import re
import zlib
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, cast

from mlspec_attest.errors import BadInputError, MalformedDocumentError
from mlspec_attest.formats.jsonio import loads_strict

Cell = str | int | float | bool | None
"""One cell: CSV text, a JSON scalar, or None when missing."""

MISSING_TOKENS: Final = frozenset({"", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None"})
"""CSV cells read as missing (the common spellings of pandas, R and SQL exports)."""

FORMATS: Final = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

MAX_TEXT: Final = 256
"""Longest cell text copied into a report (violations, top values)."""

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLEANS: Final = {"true": True, "false": False, "True": True, "False": False}
_BOOLEANS_UPPER: Final = {"TRUE": True, "FALSE": False}


class ValueKind(StrEnum):
    """The kind of one non-missing cell (also the data-schema column types)."""

    BOOLEAN = "boolean"
    INTEGER = "integer"
    NUMBER = "number"
    STRING = "string"


def kind_of(cell: str | int | float | bool, *, text_cells: bool) -> ValueKind:
    """Classify a non-missing cell. ``text_cells`` says the cell is CSV text."""
    if isinstance(cell, bool):
        return ValueKind.BOOLEAN
    if isinstance(cell, int):
        return ValueKind.INTEGER
    if isinstance(cell, float):
        return ValueKind.NUMBER
    if not text_cells:
        return ValueKind.STRING
    if _INTEGER.fullmatch(cell):
        return ValueKind.INTEGER
    if _DECIMAL.fullmatch(cell):
        # "1e999" parses to infinity: not a usable number, so it stays text.
        return ValueKind.NUMBER if math.isfinite(float(cell)) else ValueKind.STRING
    if cell in _BOOLEANS or cell in _BOOLEANS_UPPER:
        return ValueKind.BOOLEAN
    return ValueKind.STRING


def is_numeric(cell: str | int | float | bool, *, text_cells: bool) -> bool:
    """Whether a non-missing cell is an integer or a finite number (fast path of :func:`kind_of`)."""
    if isinstance(cell, str):
        if not text_cells or _DECIMAL.fullmatch(cell) is None:
            return False
        return math.isfinite(float(cell)) if ("e" in cell or "E" in cell) else True
    return not isinstance(cell, bool)


def as_number(cell: str | int | float | bool, kind: ValueKind) -> float | None:
    """The finite float value of an integer or number cell, else None."""
    if kind is ValueKind.INTEGER or kind is ValueKind.NUMBER:
        value = float(cell)
        return value if math.isfinite(value) else None
    return None


def as_integer(cell: str | int | float | bool) -> int:
    """The exact integer value of a cell classified as INTEGER."""
    return int(cell)


def as_boolean(cell: str | int | float | bool) -> bool:
    """The value of a cell classified as BOOLEAN."""
    if isinstance(cell, bool):
        return cell
    return _BOOLEANS.get(str(cell), _BOOLEANS_UPPER.get(str(cell), False))


def as_text(cell: str | int | float | bool) -> str:
    """The text of a cell: CSV text as is, JSON scalars in their JSON spelling."""
    if isinstance(cell, str):
        return cell
    return json.dumps(cell)


def clip_text(text: str) -> str:
    """``text`` shortened to :data:`MAX_TEXT` characters for a report."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def detect_format(path: Path) -> str:
    """``csv``, ``tsv`` or ``jsonl`` from the file name (``.gz`` allowed), else by content."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in FORMATS:
        return FORMATS[suffixes[-1]]
    # No telling suffix: a JSON Lines file starts with an object; anything else is read as CSV.
    try:
        with _open_binary(path) as raw:
            if path.suffix.lower() == ".gz":
                with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                    head = unzipped.read(4096)
            else:
                head = raw.read(4096)
    except (OSError, EOFError, zlib.error):
        return "csv"  # reading proper reports the problem
    return "jsonl" if head.lstrip().startswith(b"{") else "csv"


class _HashingReader(io.RawIOBase):
    """A raw binary stream that hashes every byte read through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self.hasher = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.hasher.update(data)
        return n

    def drain(self) -> None:
        while chunk := self._raw.read(1 << 16):
            self.hasher.update(chunk)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open_binary(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except FileNotFoundError as exc:
        raise BadInputError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise BadInputError(
            f"{path}: is a directory, expected a CSV or JSON Lines file",
            remedy="pass one data file (sharded datasets: analyze each shard)",
        ) from exc
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({exc.strerror})") from exc


class TabularReader:
    """Iterate the rows of one data file as ``{column: cell}`` dicts, streaming.

    Use as a context manager. ``columns`` is the CSV header, or for JSON Lines
    every key seen so far in order of first appearance. Row numbers in errors
    are 0-based data rows (the CSV header is not a row).
    """

    def __init__(self, path: Path, *, limit: int | None = None) -> None:
        self.path = path
        self.format = detect_format(path)
        self.text_cells = self.format in ("csv", "tsv")
        self.limit = limit
        self.columns: list[str] = []
        self.rows_read = 0
        self._complete = False
        self._raw = _open_binary(path)
        self._hashing = _HashingReader(self._raw)
        buffered = io.BufferedReader(self._hashing, buffer_size=1 << 16)
        binary: IO[bytes] = buffered
        if path.suffix.lower() == ".gz":
            binary = cast(IO[bytes], gzip.GzipFile(fileobj=buffered, mode="rb"))
        self._text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        self._csv: Iterator[list[str]] | None = None
        if self.text_cells:
            delimiter = "\t" if self.format == "tsv" else ","
            self._csv = csv.reader(self._text, delimiter=delimiter, strict=True)
            try:
                self.columns = self._read_header()
            except BaseException:
                self.close()
                raise

    # -- context manager ------------------------------------------------------------
    def __enter__(self) -> TabularReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._text.close()
        self._raw.close()  # GzipFile leaves the stream it wraps open

    # -- results --------------------------------------------------------------------
    @property
    def sha256(self) -> str | None:
        """Hex sha256 of the file bytes, once the file has been read to the end."""
        return self._hashing.hasher.hexdigest() if self._complete else None

    # -- reading --------------------------------------------------------------------
    def _where(self) -> str:
        return f"{self.path}: data row {self.rows_read}"

    def _decode_error(self, exc: UnicodeDecodeError) -> BadInputError:
        return BadInputError(
            f"{self.path}: not UTF-8 text ({exc.reason})",
            remedy="re-encode the file as UTF-8",
        )

    def _read_header(self) -> list[str]:
        assert self._csv is not None
        try:
            header = next(self._csv, None)
            while header == []:
                header = next(self._csv, None)
        except csv.Error as exc:
            raise BadInputError(f"{self.path}: CSV header: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise self._decode_error(exc) from exc
        except (OSError, EOFError, zlib.error) as exc:  # gzip: corrupt or truncated stream
            raise BadInputError(f"{self.path}: cannot read ({exc})") from exc
        if header is None:
            raise BadInputError(
                f"{self.path}: empty file, expected a header row", remedy="write the column names"
            )
        seen: set[str] = set()
        for name in header:
            if name in seen:
                raise BadInputError(f"{self.path}: column {name!r} appears twice in the header")
            seen.add(name)
        return header

    def __iter__(self) -> Iterator[dict[str, Cell]]:
        rows = self._csv_rows() if self.text_cells else self._jsonl_rows()
        try:
            # Check the limit before pulling a row, so a JSON Lines row past the
            # limit never adds its keys to ``columns``.
            while self.limit is None or self.rows_read < self.limit:
                row = next(rows, None)
                if row is None:
                    self._hashing.drain()
                    self._complete = True
                    return
                yield row
                self.rows_read += 1
        except UnicodeDecodeError as exc:
            raise self._decode_error(exc) from exc
        except (OSError, EOFError, zlib.error) as exc:
            raise BadInputError(f"{self.path}: cannot read ({exc})") from exc

    def _csv_rows(self) -> Iterator[dict[str, Cell]]:
        assert self._csv is not None
        header = self.columns
        width = len(header)
        while True:
            try:
                fields = next(self._csv, None)
            except csv.Error as exc:
                raise BadInputError(f"{self._where()}: malformed CSV ({exc})") from exc
            if fields is None:
                return
            if not fields:
                continue  # blank line
            if len(fields) != width:
                raise BadInputError(
                    f"{self._where()}: {len(fields)} fields, the header has {width}",
                    remedy="every row needs one field per header column (quote embedded commas)",
                )
            yield {
                name: (None if value in MISSING_TOKENS else value)
                for name, value in zip(header, fields, strict=True)
            }

    def _jsonl_rows(self) -> Iterator[dict[str, Cell]]:
        known = set(self.columns)
        for line in self._text:
            if not line.strip():
                continue
            try:
                record = loads_strict(line, what=self._where())
            except MalformedDocumentError as exc:
                raise BadInputError(exc.message) from exc
            if not isinstance(record, dict):
                raise BadInputError(f"{self._where()}: expected a JSON object per line")
            for key, value in record.items():
                if isinstance(value, dict | list):
                    raise BadInputError(
                        f"{self._where()}: column {key!r} holds a nested {type(value).__name__}",
                        remedy="flatten nested fields into scalar columns",
                    )
                if key not in known:
                    known.add(key)
                    self.columns.append(key)
            yield record


def read_columns(path: Path) -> list[str]:
    """The column names of a data file (JSON Lines: every key, which reads the whole file)."""
    with TabularReader(path) as reader:
        if reader.text_cells:
            return list(reader.columns)
        for _row in reader:
            pass
        return list(reader.columns)
