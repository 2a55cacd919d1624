"""The one reader of tabular data files: CSV, TSV, JSON Lines and Parquet, gzip, sniffing.

Every reader of rows goes through this module: row digests
(:mod:`mlspec_attest.digest.rows`), analysis, data schema inference and
validation, and metrics from predictions. So a file is read the same way
whoever reads it (docs/data.md, "Reading data files"):

* **format** by name (``.csv``, ``.tsv``/``.tab``, ``.jsonl``/``.ndjson``,
  ``.parquet``/``.pq``, each optionally ``.gz``), else by content
  (:func:`sniff_format`); a file whose format cannot be told is bad input;
* **gzip** by content (the magic bytes ``1f 8b``), whatever the name; a name
  ending in ``.gz`` over bytes that are not gzip is bad input;
* **text** is UTF-8; one leading byte order mark is dropped; anything else that
  is not UTF-8 is bad input; LF, CR LF and CR all end a record (inside a
  quoted CSV cell they are kept as written); blank lines are skipped;
* **header**: the first non-blank CSV record; two names that are one name
  after removing case, padding and invisible characters
  (:func:`~mlspec_attest.formats.rowform.canonical_name`) are bad input, and
  every record needs exactly one field per header name;
* **JSON Lines**: one object per line; duplicate keys, ``NaN``/``Infinity``
  and unpaired surrogate escapes are bad input; numbers are kept exactly as
  written (:class:`~mlspec_attest.formats.rowform.JsonNumber`).

Cells are handed on as written; what a cell means (missing, numeric, the same
value) is decided by the caller's rules (:mod:`mlspec_attest.formats.cells`,
:mod:`mlspec_attest.formats.rowform`). A reader that cannot read a row raises
:class:`~mlspec_attest.errors.BadInputError` naming the file and line: a check
never runs on rows it could not read.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self, cast

from mlspec_attest.errors import ArtifactPathError, BadInputError, require
from mlspec_attest.formats.jsonio import no_constants, no_duplicate_keys
from mlspec_attest.formats.limits import bounded_lines, open_for_reading
from mlspec_attest.formats.rowform import JsonNumber, column_names

TABULAR_FORMATS: Final = ("csv", "tsv", "jsonl", "parquet")
SUFFIXES: Final = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
GZIP_MAGIC: Final = b"\x1f\x8b"
PARQUET_MAGIC: Final = b"PAR1"
DELIMITERS: Final = {"csv": ",", "tsv": "\t"}

_SNIFF_BYTES = 65536
_GLANCE_BYTES = 4096
_SNIFF_LINES = 20
_PARQUET_BATCH = 65536
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


# --- formats -----------------------------------------------------------------
def format_of(path: Path) -> str | None:
    """The row format a file name implies (``data.csv.gz`` -> csv), or None."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return SUFFIXES.get(os.path.splitext(name)[1])


def detect_format(path: Path) -> str:
    """The format of one data file: by name, else by content; bad input when neither tells."""
    found = format_of(path)
    if found is not None:
        return found
    sniffed = sniff_format(path)
    if sniffed not in TABULAR_FORMATS:
        raise BadInputError(
            f"{path}: cannot tell the format ({sniffed})",
            remedy="name it .csv, .tsv, .jsonl or .parquet (optionally .gz)",
        )
    return sniffed


def sniff_format(path: Path) -> str:
    """The tabular format of a file by its content, else a short reason why it is not one.

    Gzip is looked into; Parquet is known by its magic; text is JSON Lines when its first
    line is an object, CSV or TSV when its first lines all have the same number (two or
    more) of fields."""
    with open_binary(path) as fh:
        try:
            head = fh.read(_GLANCE_BYTES)  # an image, a pickle: ruled out at 4 KiB, not 64
            if not head.startswith((PARQUET_MAGIC, GZIP_MAGIC)) and _decode_head(head) is None:
                return "binary content (not UTF-8 text, gzip or Parquet)"
            head += fh.read(_SNIFF_BYTES + 1 - len(head))
        except OSError as exc:
            raise ArtifactPathError(f"{path}: cannot read ({exc.strerror})") from exc
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head.startswith(GZIP_MAGIC):
        head = _gunzip_head(head)
    truncated = len(head) > _SNIFF_BYTES
    text = _decode_head(head[:_SNIFF_BYTES])
    if text is None:
        return "binary content (not UTF-8 text, gzip or Parquet)"
    lines = text.splitlines()
    if truncated:
        lines = lines[:-1]  # the last line may be cut short
    lines = [line for line in lines if line.strip()]
    if not lines:
        return "no rows"
    if _looks_like_jsonl(lines[0]):
        return "jsonl"
    return _sniff_delimited(lines[: _SNIFF_LINES + 1]) or "text without a table shape"


def _gunzip_head(data: bytes) -> bytes:
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, _SNIFF_BYTES + 1)
    except zlib.error:
        return b"\x00"  # not a usable gzip stream: binary


def _decode_head(data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    try:
        return codecs.getincrementaldecoder("utf-8-sig")().decode(data, final=False)
    except UnicodeDecodeError:
        return None


def _looks_like_jsonl(line: str) -> bool:
    try:
        return isinstance(JSON_DECODER.decode(line), dict)
    except (ValueError, RecursionError):
        return False


def _sniff_delimited(lines: list[str]) -> str | None:
    best: tuple[int, str] | None = None
    for fmt, delimiter in DELIMITERS.items():
        try:
            counts = [len(r) for r in csv.reader(lines, delimiter=delimiter, strict=True)]
        except csv.Error:
            continue
        shaped = len(counts) >= 2 and counts[0] >= 2 and len(set(counts)) == 1
        if shaped and (best is None or counts[0] > best[0]):
            best = (counts[0], fmt)
    return best[1] if best else None


# --- opening -----------------------------------------------------------------
def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, unbuffered; a missing or unreadable path is bad input. Opened
    without blocking (:func:`~mlspec_attest.formats.limits.open_for_reading`): a FIFO
    nobody writes to reads as empty instead of hanging."""
    try:
        return open_for_reading(path, buffering=0)
    except FileNotFoundError as exc:
        raise ArtifactPathError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise BadInputError(
            f"{path}: is a directory, expected a CSV or JSON Lines file",
            remedy="pass one data file (sharded datasets: analyze each shard)",
        ) from exc
    except OSError as exc:
        raise ArtifactPathError(f"{path}: cannot read ({exc.strerror})") from exc


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


class ClosedOnExit:
    """A reader that is its own context manager: leaving the ``with`` block closes it."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class TextSource(ClosedOnExit):
    """A data file opened as text: gunzipped when its bytes are gzip, UTF-8, BOM dropped.

    With ``hashing``, :meth:`finish` reads what is left and :attr:`sha256` is
    the digest of the file's bytes as stored (compressed, if it is).
    """

    def __init__(self, path: Path, *, hashing: bool = False) -> None:
        self.path = path
        self._raw = open_binary(path)
        self._hashing = _HashingReader(self._raw) if hashing else None
        buffered = io.BufferedReader(cast(Any, self._hashing or self._raw), buffer_size=1 << 16)
        try:
            magic = buffered.peek(2)[:2]
        except OSError as exc:
            self._raw.close()
            raise ArtifactPathError(f"{path}: cannot read ({exc.strerror})") from exc
        binary: IO[bytes] = buffered
        if magic == GZIP_MAGIC:
            binary = cast(IO[bytes], gzip.GzipFile(fileobj=buffered, mode="rb"))
        elif magic and path.name.lower().endswith(".gz"):
            self._raw.close()
            raise BadInputError(
                f"{path}: named .gz but its bytes are not gzip",
                remedy="compress it with gzip, or drop the .gz from its name",
            )
        self.text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        self.sha256: str | None = None

    def finish(self) -> None:
        """The file was read to its end: hash any bytes left (gzip trailer, padding)."""
        if self._hashing is not None:
            self._hashing.drain()
            self.sha256 = self._hashing.hasher.hexdigest()

    def close(self) -> None:
        self.text.close()
        self._raw.close()  # GzipFile leaves the stream it wraps open


def read_error(path: Path, line: int, exc: BaseException) -> BadInputError:
    """The bad-input error of a failure while reading rows (decoding, CSV, gzip, I/O)."""
    if isinstance(exc, UnicodeDecodeError):
        return BadInputError(
            f"{path}: not UTF-8 text ({exc.reason})", remedy="re-encode the file as UTF-8"
        )
    if isinstance(exc, csv.Error):
        return BadInputError(f"{path}:{line}: malformed CSV ({exc})")
    return BadInputError(f"{path}: cannot read ({exc})")


_READ_ERRORS = (csv.Error, UnicodeDecodeError, OSError, EOFError, zlib.error)


# --- records -----------------------------------------------------------------
class DelimitedRecords:
    """The records of a CSV or TSV file: its header, then lists of raw text fields.

    ``names`` are the canonical header names (:func:`column_names`); ``line``
    is the line number where the current record ends.
    """

    def __init__(self, source: TextSource, delimiter: str) -> None:
        self.path = source.path
        lines = bounded_lines(source.text, str(self.path))  # no line held whole, however long
        self._reader = csv.reader(lines, delimiter=delimiter, strict=True)
        try:
            header = next(self._reader, None)
            while header == []:
                header = next(self._reader, None)
        except _READ_ERRORS as exc:
            raise read_error(self.path, self.line, exc) from exc
        if header is None:
            raise BadInputError(
                f"{self.path}: empty file, no header row",
                remedy="the first line must name the columns",
            )
        self.header: list[str] = header
        self.names = column_names(header, what=str(self.path))

    @property
    def line(self) -> int:
        return self._reader.line_num

    def __iter__(self) -> Iterator[list[str]]:
        reader, width = self._reader, len(self.header)
        try:
            for record in reader:
                if len(record) != width:
                    if not record:
                        continue  # blank line
                    raise BadInputError(
                        f"{self.path}:{reader.line_num}: {len(record)} fields, "
                        f"the header has {width}",
                        remedy="every row needs one field per header column "
                        "(quote embedded delimiters)",
                    )
                yield record
        except _READ_ERRORS as exc:
            raise read_error(self.path, reader.line_num, exc) from exc


#: The one JSON decoder of rows: numbers kept as text, duplicate keys and NaN refused.
JSON_DECODER = json.JSONDecoder(
    object_pairs_hook=no_duplicate_keys,
    parse_float=JsonNumber,
    parse_int=JsonNumber,
    parse_constant=no_constants,
)


class JsonLines:
    """The objects of a JSON Lines file, numbers as :class:`JsonNumber`; ``line`` is 1-based."""

    def __init__(self, source: TextSource | tuple[Path, IO[str]]) -> None:
        """``source``: the file opened as text, or (its path, some of its lines)."""
        self.path, self._text = (
            (source.path, source.text) if isinstance(source, TextSource) else source
        )
        self.line = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        decode = JSON_DECODER.decode
        try:
            for number, text in enumerate(self._text, 1):
                self.line = number
                if not text.strip():
                    continue
                try:
                    record = decode(text)
                except (ValueError, RecursionError) as exc:
                    raise BadInputError(f"{self.path}:{self.line}: not valid JSON ({exc})") from exc
                if not isinstance(record, dict):
                    raise BadInputError(f"{self.path}:{self.line}: expected a JSON object per line")
                if "\\u" in text and _SURROGATE_ESCAPE.search(text):
                    self._check_surrogates(record)
                yield record
        except _READ_ERRORS as exc:
            raise read_error(self.path, self.line + 1, exc) from exc

    def _check_surrogates(self, record: dict[str, Any]) -> None:
        try:
            json.dumps(record, ensure_ascii=False, default=lambda n: n.text).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadInputError(
                f"{self.path}:{self.line}: a string holds an unpaired UTF-16 surrogate escape"
            ) from exc


class ParquetRecords:
    """The rows of a Parquet file as tuples of Python values (needs the ``parquet`` extra)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pq = require("pyarrow.parquet", "reading Parquet")
        try:
            self._file = self._pq.ParquetFile(path)
            self.header: list[str] = list(self._file.schema_arrow.names)
        except (OSError, ValueError, TypeError) as exc:
            raise self._error(exc) from exc
        self.names = column_names(self.header, what=str(path))

    def _error(self, exc: BaseException) -> BadInputError:
        # pyarrow's ArrowInvalid/ArrowIOError derive from ValueError/OSError.
        return BadInputError(f"{self.path}: cannot read Parquet ({exc})")

    def batches(self) -> Iterator[Any]:
        """The file's pyarrow record batches, every column, in order (errors as pyarrow's)."""
        return cast(
            Iterator[Any], self._file.iter_batches(batch_size=_PARQUET_BATCH, columns=self.header)
        )

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        header = self.header
        try:
            for batch in self.batches():
                values = [batch.column(i).to_pylist() for i in range(len(header))]
                yield from zip(*values, strict=True) if values else [()] * batch.num_rows
        except (OSError, ValueError, TypeError) as exc:
            raise self._error(exc) from exc
