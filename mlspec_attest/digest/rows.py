"""Row canonicalization ``mlspec-rows/v2`` and the one engine that hashes dataset rows.

Two rows that hold the same values must hash the same, whatever file format,
compression, line endings, column order, padding, number spelling, Unicode
normalization or invisible formatting characters they were written with.
docs/leakage.md is the normative description (with the list of what is and is
not "the same row"); in short:

1. **Names** (column names, nested object keys): invisible format characters
   removed (:data:`INVISIBLE`), NFC, surrounding whitespace stripped, then
   case-folded (``Age``, ``AGE ``, ``a\\u200bge`` are one column). Two columns
   with the same canonical name make the file bad input.
2. **Text values** (every CSV cell; JSON, Parquet strings): invisible format
   characters removed, NFC, CR LF and CR inside the text become LF, surrounding
   whitespace stripped. Case and inner whitespace are kept (values are data).
   Empty text is null. Text matching ``[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?``
   (ASCII digits) is a number; nothing else is converted.
3. **Numbers** are exact decimals: an integer below 2**53 in magnitude is a JSON
   integer (``007``, ``7.0``, ``7e0`` -> ``7``); an integer from 2**53 up to
   10**64 is a string of its digits; anything else finite is the nearest double
   (RFC 8785 spelling); beyond the double range a string in scientific form.
4. **Other values**: booleans kept; float NaN is null, +-inf the text
   ``inf``/``-inf``; dates and times their ISO 8601 text; bytes
   ``base64:<standard base64>``; lists and objects keep their structure.
5. **The row** is the list of ``[name, value]`` pairs in code point order of the
   names, nulls left out, serialized as RFC 8785 canonical JSON and hashed with
   SHA-256.

Which columns a row is hashed over (a *projection*) is decided by the callers:
:mod:`mlspec_attest.evidence.leakage` drops excluded, non-shared and split-label columns
for the split proof, and constant columns for the content sets. This module
reads datasets (:func:`open_dataset`, :func:`open_material`), normalizes rows
and hashes every projection in one pass (:func:`hash_rows`), reporting each
dataset's columns and constant columns (:class:`Profile`).
"""

from __future__ import annotations

import base64
import codecs
import csv
import datetime as dt
import gzip
import hashlib
import json
import math
import os
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from mlspec_attest.digest.manifest import path_components_key
from mlspec_attest.digest.walk import walk_tree
from mlspec_attest.errors import (
    ArtifactPathError,
    BadInputError,
    MalformedDocumentError,
    UsageError,
)
from mlspec_attest.formats.jsonio import canonical_value
from mlspec_attest.formats.limits import MAX_JSON_DEPTH

CANONICALIZATION = "mlspec-rows/v2"
RETIRED_CANONICALIZATIONS = ("mlspec-rows/v1",)
FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet", "files")
TABULAR_FORMATS = ("csv", "tsv", "jsonl", "parquet")

#: Invisible format characters removed from names and text: the general category
#: Cf characters that are also Default_Ignorable_Code_Point, pinned as of Unicode
#: 14.0 so every Python computes the same rows. Soft hyphen, zero-width space,
#: (non-)joiners, LRM/RLM, bidi embeddings and isolates, word joiner, invisible
#: operators, the BOM/ZWNBSP, shorthand and musical format controls, tag characters.
#: Kept: the visible Cf characters (Arabic number signs and other prepended
#: concatenation marks, interlinear annotation and Egyptian hieroglyph controls).
INVISIBLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x061C, 0x061C),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)
INVISIBLE: dict[int, None] = {
    cp: None for low, high in INVISIBLE_RANGES for cp in range(low, high + 1)
}

#: Per-example files (one file, one example) read as per-file content digests.
MEDIA_SUFFIXES = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".bmp",
        ".tif",
        ".tiff",
        ".webp",
        ".wav",
        ".flac",
        ".mp3",
        ".ogg",
        ".m4a",
        ".mp4",
        ".avi",
        ".mov",
        ".mkv",
        ".npy",
        ".pdf",
        ".txt",
    ]
)
#: Files in a dataset directory that hold no rows (job markers, checksums, OS litter).
METADATA_NAMES = frozenset({"_SUCCESS", "_metadata", "_common_metadata", ".DS_Store"})

_SAFE_INTEGER = 2**53
_EXACT_INTEGER_DIGITS = 64
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_SMALL_INT_RE = re.compile(r"[+-]?\d{1,15}", re.ASCII)
_PLAIN_FRACTION_RE = re.compile(r"[+-]?\d*\.\d*[1-9]\d*", re.ASCII)
_NUMBER_START = frozenset("+-.0123456789")
_PARQUET_BATCH = 65536
# A row is [[name, value], ...]: two levels above the value itself.
_MAX_CELL_DEPTH = MAX_JSON_DEPTH - 2
_SNIFF_BYTES = 65536
_SNIFF_LINES = 20
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
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


# --- text and names ----------------------------------------------------------
def canonical_text(text: str) -> str:
    """Invisible format characters removed, NFC, CR LF / CR -> LF (not stripped)."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text.translate(INVISIBLE))
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def canonical_name(name: str) -> str:
    """A column name or object key: :func:`canonical_text`, stripped, case-folded."""
    text = canonical_text(name).strip()
    if text.isascii():
        return text.lower()
    # Canonical caseless matching (Unicode D145), recomposed: NFC(casefold(NFD(x))).
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


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
    stripped = canonical_text(text).strip()
    if not stripped:
        return None
    if stripped[0] in _NUMBER_START:
        if _SMALL_INT_RE.fullmatch(stripped):
            return int(stripped)
        if _NUMBER_RE.fullmatch(stripped):
            return _number_value(stripped)
    return stripped


def _float_value(value: float) -> int | float | str | None:
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if not value.is_integer():
        return float(value)  # its shortest decimal is not an integer either
    if -_SAFE_INTEGER < value < _SAFE_INTEGER:
        return int(value)
    return _number_value(repr(float(value)))


def _decimal_value(value: Decimal) -> int | float | str | None:
    if value.is_nan():
        return None
    if value.is_infinite():
        return "-inf" if value < 0 else "inf"
    return _number_value(str(value))


def _object_value(value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, member in value.items():
        if not isinstance(key, str):
            raise BadInputError("object keys must be strings")
        name = canonical_name(key)
        if name in out:
            raise BadInputError(f"object key {name!r} appears twice (after canonicalization)")
        out[name] = normalize_value(member, _depth=depth)
    return out


def normalize_value(value: Any, *, _depth: int = 0) -> Any:
    """The normalized plain-JSON value of one input value; None when it is null.

    The result is None, a bool, an int of magnitude below 2**53, a finite float,
    a str, or a list or dict of such values, ready for RFC 8785. Lists and
    objects nested deeper than the JSON limit are bad input.
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
        return _float_value(value)
    if isinstance(value, Decimal):
        return _decimal_value(value)
    if isinstance(value, list | tuple | dict):
        if _depth >= _MAX_CELL_DEPTH:
            raise BadInputError(f"a value nested deeper than {_MAX_CELL_DEPTH} levels")
        if isinstance(value, dict):
            return _object_value(value, _depth + 1)
        return [normalize_value(v, _depth=_depth + 1) for v in value]
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
        return canonical_value(obj)
    except MalformedDocumentError as exc:  # in practice: an unpaired surrogate
        raise BadInputError(f"{where}: {exc.message}") from exc


def value_token(value: Any) -> str | None:
    """Canonical JSON text of one normalized value; None when the value is null."""
    normalized = normalize_value(value)
    if normalized is None:
        return None
    return _canonical(normalized, "value").decode("utf-8")


def _column_names(names: Sequence[str], *, what: str) -> list[str]:
    """Canonical names of a header; two equal canonical names are bad input."""
    out = [canonical_name(n) for n in names]
    seen: set[str] = set()
    for original, name in zip(names, out, strict=True):
        if name in seen:
            raise BadInputError(
                f"{what}: column {name!r} appears twice (as {original!r} too, "
                "after removing case, padding and invisible characters)"
            )
        seen.add(name)
    return out


def _normalized_row(columns: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """``{name: value}`` of (canonical name, raw value), nulls left out, names ascending."""
    items = sorted(columns, key=lambda item: item[0])
    return _ordered_row([n for n, _ in items], range(len(items)), [v for _, v in items])


# RFC 8785 serializes an array as "[" + its members' serializations joined by "," + "]"
# (no whitespace), so a row is the join of its [name, value] pairs, each serialized by
# rfc8785 once per row whatever the number of projections. Names and scalar values
# repeat (categories, flags, small integers): their bytes are cached, boundedly.
_CACHE_LIMIT = 1 << 16
_NAME_BYTES: dict[str, bytes] = {}
_VALUE_BYTES: dict[tuple[type, Any], bytes] = {}

Encoded = list[tuple[str, bytes]]


def _cached(cache: dict[Any, bytes], key: Any, value: Any, where: object) -> bytes:
    found = cache.get(key)
    if found is None:
        found = _canonical(value, where)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = found
    return found


def _encode_row(row: Mapping[str, Any], where: object) -> Encoded:
    """Each ``[name, value]`` pair of a normalized row as RFC 8785 bytes, in row order."""
    out: Encoded = []
    for name, value in row.items():
        name_bytes = _cached(_NAME_BYTES, name, name, where)
        if isinstance(value, list | dict):
            value_bytes = _canonical(value, where)
        else:
            value_bytes = _cached(_VALUE_BYTES, (type(value), value), value, where)
        out.append((name, b"[" + name_bytes + b"," + value_bytes + b"]"))
    return out


def _project(encoded: Encoded, drop: frozenset[str]) -> bytes:
    """The RFC 8785 bytes of the row without the ``drop`` columns."""
    if not drop:
        return b"[" + b",".join(pair for _, pair in encoded) + b"]"
    return b"[" + b",".join(pair for name, pair in encoded if name not in drop) + b"]"


def _row_bytes(row: Mapping[str, Any], drop: frozenset[str], where: object) -> bytes:
    return _project(_encode_row(row, where), drop)


def canonical_row(row: Mapping[str, Any], exclude: Iterable[str] = ()) -> bytes:
    """The ``mlspec-rows/v2`` bytes of one row given as column -> value."""
    names = _column_names(list(row), what="row")
    normalized = _normalized_row(zip(names, row.values(), strict=True))
    return _row_bytes(normalized, frozenset(canonical_name(e) for e in exclude), "row")


def row_digest(row: Mapping[str, Any], exclude: Iterable[str] = ()) -> bytes:
    """SHA-256 (32 raw bytes) of :func:`canonical_row`."""
    return hashlib.sha256(canonical_row(row, exclude)).digest()


# --- datasets ----------------------------------------------------------------
@dataclass(frozen=True)
class Dataset:
    """What one split or material is made of: the files holding its rows.

    ``format`` is ``csv``, ``tsv``, ``jsonl``, ``parquet`` or ``files`` (one
    digest per file), or ``mixed`` for a material directory of several formats.
    ``shards`` are (file, format) in path-component order; ``ignored`` are the
    relative names of files that hold no rows (empty files, job markers).
    ``known`` maps files (``str(path)``) to a SHA-256 already computed for them
    (by the digest engine), so per-example files are not hashed twice.
    """

    path: Path
    format: str
    shards: tuple[tuple[Path, str], ...]
    ignored: tuple[str, ...] = ()
    known: Mapping[str, bytes] = field(default_factory=dict, compare=False, repr=False)


def format_of(path: Path) -> str | None:
    """The row format a file name implies (``data.csv.gz`` -> csv), or None."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return _SUFFIXES.get(os.path.splitext(name)[1])


def _is_media(path: Path) -> bool:
    return os.path.splitext(path.name.lower())[1] in MEDIA_SUFFIXES


def _holds_no_rows(rel: str, full: Path) -> bool:
    """Job markers, checksum files and OS litter, and empty files: nothing to read."""
    name = rel.rsplit("/", 1)[-1]
    if name in METADATA_NAMES or (name.startswith(".") and name.endswith(".crc")):
        return True
    try:
        return full.stat().st_size == 0
    except OSError as exc:
        raise ArtifactPathError(f"{full}: cannot read ({exc.strerror})") from exc


def _directory_files(root: Path) -> list[tuple[str, Path]]:
    """Every regular file the directory's manifest covers, in path-component order."""
    found = walk_tree(os.fspath(root))
    return [
        (rel, Path(full)) for rel, full in sorted(found, key=lambda f: path_components_key(f[0]))
    ]


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", remedy=f"use one of: {', '.join(FORMATS)}")


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def open_dataset(path: Path, fmt: str = "auto") -> Dataset:
    """The dataset of a split: strict, so a check never runs on data it cannot read.

    ``auto``: a file by its suffix; a directory of tabular shards (any one format,
    gzip allowed) as rows, a directory of per-example media files (images, audio,
    ...) as ``files``. A directory holding anything else, or mixing kinds or
    formats, is bad input, as is a file whose format the name does not tell.
    """
    _check_format(fmt)
    if not path.exists():
        raise ArtifactPathError(f"{path}: no such file or directory")
    if path.is_dir():
        return _open_directory(path, fmt)
    if fmt == "files":
        return Dataset(path, "files", ((path, "files"),))
    found = format_of(path) if fmt == "auto" else fmt
    if found is None:
        raise BadInputError(
            f"{path}: cannot tell the format from the file name",
            remedy="name it .csv, .tsv, .jsonl, .parquet (optionally .gz), or pass the format",
        )
    return Dataset(path, found, ((path, found),))


def _open_directory(root: Path, fmt: str) -> Dataset:
    tabular: list[tuple[Path, str]] = []
    media: list[tuple[Path, str]] = []
    ignored: list[str] = []
    unknown: list[str] = []
    for rel, full in _directory_files(root):
        if _holds_no_rows(rel, full):
            ignored.append(rel)
        elif fmt == "files":
            media.append((full, "files"))
        elif (found := format_of(full)) is not None:
            tabular.append((full, found))
        elif _is_media(full):
            media.append((full, "files"))
        elif fmt in TABULAR_FORMATS and not os.path.splitext(full.name)[1]:
            tabular.append((full, fmt))  # a shard without a suffix (part-00000)
        else:
            unknown.append(rel)
    return _directory_dataset(root, fmt, tabular, media, ignored, unknown)


def _directory_dataset(
    root: Path,
    fmt: str,
    tabular: list[tuple[Path, str]],
    media: list[tuple[Path, str]],
    ignored: list[str],
    unknown: list[str],
) -> Dataset:
    if unknown:
        raise BadInputError(
            f"{root}: cannot read {len(unknown)} file(s) as rows or examples: {_listing(unknown)}",
            remedy="keep only data shards (.csv, .tsv, .jsonl, .parquet, optionally .gz) or "
            "per-example files in a split directory; rows a check cannot read prove nothing",
        )
    if tabular and media:
        raise BadInputError(
            f"{root}: mixes {len(tabular)} tabular shard(s) with {len(media)} other data file(s)",
            remedy="write tabular splits and per-example files to separate directories",
        )
    formats = sorted({f for _, f in tabular})
    if len(formats) > 1:
        raise BadInputError(
            f"{root}: shards of several formats ({', '.join(formats)})",
            remedy="write every shard of a split in one format",
        )
    if fmt in TABULAR_FORMATS and formats and formats != [fmt]:
        raise BadInputError(
            f"{root}: holds {formats[0]} shards, not {fmt}",
            remedy=f"read it as {formats[0]} (or auto)",
        )
    if tabular:
        return Dataset(root, formats[0], tuple(tabular), tuple(ignored))
    if media:
        return Dataset(root, "files", tuple(media), tuple(ignored))
    raise BadInputError(f"{root}: directory holds no data files")


def open_material(path: Path) -> Dataset | str:
    """The rows of a stage's material, or why it holds none (lenient, unlike splits).

    A file: by suffix, else by content (gzip or Parquet magic, JSON Lines, CSV or
    TSV text). A directory: its tabular shards and per-example files; other files
    are ignored. Returns a short reason instead when nothing in it is rows.
    """
    if path.is_dir():
        return _open_material_directory(path)
    found = format_of(path)
    if found is not None:
        return Dataset(path, found, ((path, found),))
    if _is_media(path):
        return Dataset(path, "files", ((path, "files"),))
    sniffed = sniff_format(path)
    if sniffed in TABULAR_FORMATS:
        return Dataset(path, sniffed, ((path, sniffed),))
    return sniffed


def _open_material_directory(root: Path) -> Dataset | str:
    shards: list[tuple[Path, str]] = []
    ignored: list[str] = []
    for rel, full in _directory_files(root):
        found = format_of(full) or ("files" if _is_media(full) else None)
        if found is None or _holds_no_rows(rel, full):
            ignored.append(rel)
        else:
            shards.append((full, found))
    if not shards:
        return "no tabular or per-example files"
    formats = {f for _, f in shards}
    return Dataset(
        root, formats.pop() if len(formats) == 1 else "mixed", tuple(shards), tuple(ignored)
    )


# --- sniffing ----------------------------------------------------------------
def sniff_format(path: Path) -> str:
    """The tabular format of a file by its content, else a short reason why it is not one.

    Gzip is looked into; Parquet is known by its magic; text is JSON Lines when
    its first line is an object, CSV or TSV when its first lines all have the
    same number (two or more) of fields.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES + 1)
    except OSError as exc:
        raise ArtifactPathError(f"{path}: cannot read ({exc.strerror})") from exc
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    if head.startswith(_GZIP_MAGIC):
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
        return isinstance(_JSON_DECODER.decode(line), dict)
    except (ValueError, RecursionError):
        return False


def _sniff_delimited(lines: list[str]) -> str | None:
    best: tuple[int, str] | None = None
    for delimiter, fmt in ((",", "csv"), ("\t", "tsv")):
        try:
            counts = [len(r) for r in csv.reader(lines, delimiter=delimiter, strict=True)]
        except csv.Error:
            continue
        shaped = len(counts) >= 2 and counts[0] >= 2 and len(set(counts)) == 1
        if shaped and (best is None or counts[0] > best[0]):
            best = (counts[0], fmt)
    return best[1] if best else None


# --- readers -----------------------------------------------------------------
def _open_text(path: Path) -> IO[str]:
    """A file as UTF-8 text (BOM dropped), gunzipped when its bytes are gzip."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
        if magic == _GZIP_MAGIC:
            return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
        return open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError as exc:
        raise ArtifactPathError(f"{path}: no such file") from exc
    except OSError as exc:
        raise ArtifactPathError(f"{path}: cannot read ({exc.strerror})") from exc


def _csv_rows(path: Path, columns: set[str], *, delimiter: str) -> Iterator[dict[str, Any]]:
    text_value = _text_value
    with _open_text(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
            if not header:
                raise BadInputError(
                    f"{path}: no header row", remedy="the first line must name the columns"
                )
            names = _column_names(header, what=str(path))
            columns.update(names)
            width = len(names)
            order = sorted((n, i) for i, n in enumerate(names))
            for record in reader:
                if not record:
                    continue  # blank line
                if len(record) != width:
                    raise BadInputError(
                        f"{path}:{reader.line_num}: {len(record)} fields, the header has {width}"
                    )
                yield {n: v for n, i in order if (v := text_value(record[i])) is not None}
        except csv.Error as exc:
            raise BadInputError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from exc
        except UnicodeDecodeError as exc:
            raise BadInputError(f"{path}: not UTF-8 text ({exc.reason})") from exc
        except (OSError, EOFError, zlib.error) as exc:
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


def _jsonl_rows(path: Path, columns: set[str]) -> Iterator[dict[str, Any]]:
    with _open_text(path) as fh:
        lineno = 0
        try:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = _JSON_DECODER.decode(line)
                except (ValueError, RecursionError) as exc:
                    raise BadInputError(f"{path}:{lineno}: not valid JSON ({exc})") from exc
                if not isinstance(obj, dict):
                    raise BadInputError(f"{path}:{lineno}: expected a JSON object per line")
                names = _column_names(list(obj), what=f"{path}:{lineno}")
                columns.update(names)
                yield _normalized_row(zip(names, obj.values(), strict=True))
        except UnicodeDecodeError as exc:
            raise BadInputError(f"{path}:{lineno + 1}: not UTF-8 text ({exc.reason})") from exc
        except (OSError, EOFError, zlib.error) as exc:
            raise BadInputError(f"{path}: cannot read ({exc})") from exc


def _parquet_module(path: Path) -> Any:
    from mlspec_attest.errors import require

    return require("pyarrow.parquet", "reading Parquet")


def _parquet_rows(path: Path, columns: set[str]) -> Iterator[dict[str, Any]]:
    pq = _parquet_module(path)
    try:
        parquet = pq.ParquetFile(path)
        original = list(parquet.schema_arrow.names)
        names = _column_names(original, what=str(path))
        columns.update(names)
        order = sorted(range(len(names)), key=names.__getitem__)
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, columns=original):
            values = [batch.column(o).to_pylist() for o in original]
            for cells in zip(*values, strict=True) if values else [()] * batch.num_rows:
                yield _ordered_row(names, order, cells)
    except (OSError, ValueError, TypeError, ImportError) as exc:
        # pyarrow's ArrowInvalid/ArrowIOError derive from ValueError/OSError.
        raise BadInputError(f"{path}: cannot read Parquet ({exc})") from exc


def _ordered_row(
    names: Sequence[str], order: Sequence[int], cells: Sequence[Any]
) -> dict[str, Any]:
    """The normalized row of cells whose names, taken in ``order``, ascend."""
    row: dict[str, Any] = {}
    for i in order:
        try:
            value = normalize_value(cells[i])
        except BadInputError as exc:
            raise BadInputError(f"column {names[i]!r}: {exc.message}", remedy=exc.remedy) from exc
        if value is not None:
            row[names[i]] = value
    return row


_READERS: dict[str, Callable[[Path, set[str]], Iterator[dict[str, Any]]]] = {
    "csv": lambda path, columns: _csv_rows(path, columns, delimiter=","),
    "tsv": lambda path, columns: _csv_rows(path, columns, delimiter="\t"),
    "jsonl": _jsonl_rows,
    "parquet": _parquet_rows,
}


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise ArtifactPathError(f"{path}: cannot read ({exc.strerror})") from exc
    return digest.digest()


# --- the engine --------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """What one pass over a dataset learnt: rows, data files, columns, constant columns.

    ``constant`` are the columns that hold one value (null counting as a value)
    in every row; empty when the dataset has fewer than two rows, where "one
    value" says nothing.
    """

    rows: int
    files: int
    columns: frozenset[str]
    constant: frozenset[str]


_ABSENT = object()


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list | dict):
        return bool(canonical_value(a) == canonical_value(b))
    return bool(a == b)


class _ConstantTracker:
    """Which columns keep the value they had in the first row (absent = null)."""

    def __init__(self) -> None:
        self.first: dict[str, Any] | None = None
        self.candidates: set[str] = set()

    def update(self, row: Mapping[str, Any], columns: set[str]) -> None:
        if self.first is None:
            self.first = dict(row)
            self.candidates = set(columns)
            return
        if not self.candidates:
            return
        first = self.first
        for name in [
            c for c in self.candidates if not _same(row.get(c, _ABSENT), first.get(c, _ABSENT))
        ]:
            self.candidates.discard(name)

    def constant(self, columns: set[str], rows: int) -> frozenset[str]:
        # A column first seen after the first row was absent there: it varies.
        return frozenset(self.candidates & columns) if rows >= 2 else frozenset()


Sink = Callable[[bytes], object]


def _shard_rows(dataset: Dataset, columns: set[str]) -> Iterator[tuple[Path, Any]]:
    """(shard, normalized row) for tabular shards, (file, SHA-256 of its bytes) for files."""
    for shard, fmt in dataset.shards:
        if fmt == "files":
            yield shard, dataset.known.get(str(shard)) or _file_digest(shard)
        else:
            for row in _READERS[fmt](shard, columns):
                yield shard, row


def hash_rows(dataset: Dataset, projections: Sequence[tuple[frozenset[str], Sink]]) -> Profile:
    """Read every row once; for each (dropped columns, sink) send the row's digest.

    A row's digest under a projection is SHA-256 of the RFC 8785 list of its
    ``[name, value]`` pairs without the dropped columns. A per-example file is
    one "row" whose digest is the SHA-256 of its bytes, under every projection.
    """
    columns: set[str] = set()
    tracker = _ConstantTracker()
    rows = 0
    sha256 = hashlib.sha256
    for shard, row in _shard_rows(dataset, columns):
        rows += 1
        if isinstance(row, bytes):
            for _, sink in projections:
                sink(row)
            continue
        tracker.update(row, columns)
        encoded = _encode_row(row, shard)
        for drop, sink in projections:
            sink(sha256(_project(encoded, drop)).digest())
    constant = tracker.constant(columns, rows)
    return Profile(rows, len(dataset.shards), frozenset(columns), constant)


def check_excluded(path: Path, columns: Iterable[str], excluded: Iterable[str]) -> None:
    """Every excluded column exists in the dataset (a misspelt one would hide nothing)."""
    missing = sorted(set(excluded) - set(columns))
    if missing:
        raise BadInputError(
            f"{path}: excluded column(s) {', '.join(map(repr, missing))} not in the file",
            remedy="check the spelling: a row id left in makes every row unique and hides duplicates",
        )


def resolve_format(path: Path, fmt: str) -> str:
    """The format ``path`` is read with (see :func:`open_dataset`)."""
    return open_dataset(path, fmt).format


def excluded_names(dataset: Dataset, exclude_columns: Iterable[str]) -> frozenset[str]:
    """Canonical names of ``--exclude-column`` values; none are allowed for ``files``."""
    excluded = frozenset(canonical_name(c) for c in exclude_columns)
    if excluded and dataset.format == "files":
        raise UsageError(
            f"{dataset.path}: --exclude-column applies to tabular data, not to per-file digests"
        )
    return excluded


def iter_row_digests(
    path: Path, fmt: str = "auto", exclude_columns: Sequence[str] = ()
) -> Iterator[bytes]:
    """Yield one 32-byte SHA-256 per row (or per file, for ``files``), streaming.

    Every column except ``exclude_columns`` is hashed; see :func:`open_dataset`
    for how directories are read. A misspelt exclusion raises once the whole
    dataset has been read (JSON Lines columns are known only then).
    """
    dataset = open_dataset(path, fmt)
    excluded = excluded_names(dataset, exclude_columns)
    columns: set[str] = set()
    rows = 0
    for shard, row in _shard_rows(dataset, columns):
        rows += 1
        yield (
            row
            if isinstance(row, bytes)
            else hashlib.sha256(_row_bytes(row, excluded, shard)).digest()
        )
    if rows or columns:
        check_excluded(path, columns, excluded)


__all__ = [
    "CANONICALIZATION",
    "FORMATS",
    "INVISIBLE",
    "RETIRED_CANONICALIZATIONS",
    "TABULAR_FORMATS",
    "Dataset",
    "Profile",
    "canonical_name",
    "canonical_row",
    "canonical_text",
    "check_excluded",
    "excluded_names",
    "format_of",
    "hash_rows",
    "iter_row_digests",
    "normalize_value",
    "open_dataset",
    "open_material",
    "resolve_format",
    "row_digest",
    "sniff_format",
    "value_token",
]
