"""JSON Lines read through Arrow a chunk of lines at a time, for the row engine (:mod:`.rows`).

The reference reader (:class:`mlspec_attest.formats.tabular.JsonLines`) decodes
one object per line with Python's ``json``. Here the decompressed file is cut
into chunks of whole lines (about 1 MiB) and each chunk is parsed by
``pyarrow.json.read_json``; the chunk is used only when Arrow read it as the
reference would:

* it is UTF-8, and every non-blank line (lines end at LF, CR LF or CR; blank is
  Python's ``str.strip()`` blank) starts with ``{`` and ends with ``}`` once
  stripped, and Arrow found exactly one object per such line (a line that ends
  with ``}`` cannot run on into one that starts with ``{`` in valid JSON, so
  the counts agree only when every line is one object);
* no ``NaN``/``Infinity`` (Arrow accepts them, the reference does not), no
  nested object or list (Arrow fills a struct's missing keys with nulls), no two
  keys that are one column name, and every double spelled the same from the
  parsed value as from the text (:func:`~mlspec_attest.formats.rowarrow.encode_column`
  with ``exact=False``);
* strings Arrow took for timestamps are read again as strings.

Otherwise the reference reads that chunk (mixed types in a column, nested values,
numbers only the text spells right ...) and Arrow the next one. A chunk the
reference refuses raises :class:`~mlspec_attest.formats.rowarrow.Decline`: the
engine then reads the file from that chunk's first row with the reference
reader, which words the error as it always did.
"""

from __future__ import annotations

import io
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, Any

from mlspec_attest.digest.rows_arrow import READ_ERRORS, Batch, BatchEncoder, Rows
from mlspec_attest.errors import MlspecError, require
from mlspec_attest.formats.rowarrow import WHITESPACE, Decline, arrow
from mlspec_attest.formats.rowform import column_names, normalized_row
from mlspec_attest.formats.tabular import JSON_DECODER, JsonLines, TextSource

_CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    """Whole lines of the decompressed file, about ``_CHUNK`` bytes at a time, BOM dropped."""
    pending = b""
    first = True
    while True:
        data = stream.read(_CHUNK)
        if first and (data or pending):
            pending += data
            if len(pending) < len(_BOM) and data and _BOM.startswith(pending):
                continue
            data, pending, first = pending.removeprefix(_BOM), b"", False
        if not data:
            if pending:
                yield pending
            return
        data = pending + data
        # After the last LF, else the last CR that is not the last byte (a CR LF is
        # one line end, and the LF may be in the next read).
        cut = data.rfind(b"\n") + 1 or data.rfind(b"\r", 0, len(data) - 1) + 1
        pending = data[cut:]
        if cut:
            yield data[:cut]


def _line_count(pa: Any, pc: Any, chunk: bytes) -> tuple[int, str]:
    """(non-blank lines, the first of them); Decline unless each is ``{ ... }``."""
    try:
        text = pa.array([chunk], pa.binary()).cast(pa.string())
    except READ_ERRORS as exc:  # not UTF-8
        raise Decline(str(exc)) from exc
    if b"\r" in chunk:
        text = pc.replace_substring(text, "\r", "\n")
    lines = pc.utf8_trim(pc.list_flatten(pc.split_pattern(text, "\n")), characters=WHITESPACE)
    lines = pc.filter(lines, pc.greater(pc.binary_length(lines), 0))
    shaped = pc.and_(pc.starts_with(lines, "{"), pc.ends_with(lines, "}"))
    if not pc.all(shaped).as_py():
        raise Decline("a line that is not one JSON object")
    return len(lines), (lines[0].as_py() if len(lines) else "")


def _parse(pa: Any, chunk: bytes, strings: list[str]) -> Any:
    pj = require("pyarrow.json", "reading data files through Arrow")
    schema = pa.schema([(name, pa.string()) for name in strings]) if strings else None
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    read = pj.ReadOptions(block_size=max(len(chunk), 1 << 16))
    return pj.read_json(pa.BufferReader(chunk), read_options=read, parse_options=options)


def _table(pa: Any, chunk: bytes) -> Any:
    """The chunk as an Arrow table; strings Arrow took for timestamps read again as text."""
    try:
        table = _parse(pa, chunk, [])
        timestamps = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
        if timestamps:
            table = _parse(pa, chunk, timestamps)
    except READ_ERRORS as exc:
        raise Decline(str(exc)) from exc
    for field in table.schema:
        kind = field.type
        if not (
            pa.types.is_null(kind)
            or pa.types.is_boolean(kind)
            or pa.types.is_int64(kind)
            or pa.types.is_float64(kind)
            or pa.types.is_string(kind)
        ):
            raise Decline(f"a JSON value read as {kind}")
    return table


def _first(line: str, path: Path) -> tuple[dict[str, Any], frozenset[str]]:
    """The reference's first row of the chunk (and its names, null or not)."""
    try:
        record = JSON_DECODER.decode(line)
        names = column_names(list(record), what=str(path))
        return normalized_row(zip(names, record.values(), strict=True)), frozenset(names)
    except (ValueError, RecursionError, MlspecError) as exc:
        raise Decline(str(exc)) from exc


def _reference_rows(path: Path, chunk: bytes) -> Rows:
    """The chunk's rows as the reference reads them; Decline if it refuses them."""
    try:
        text = io.StringIO(chunk.decode("utf-8"), newline="")
        out = []
        for record in JsonLines((path, text)):
            names = column_names(list(record), what=str(path))
            out.append((names, normalized_row(zip(names, record.values(), strict=True))))
    except (ValueError, MlspecError) as exc:
        raise Decline(str(exc)) from exc
    return Rows(out)


def _batch(
    pa: Any, pc: Any, path: Path, chunk: bytes, encoders: dict[tuple[str, ...], BatchEncoder]
) -> Batch | None:
    count, line = _line_count(pa, pc, chunk)
    if not count:
        return None
    table = _table(pa, chunk)
    if table.num_rows != count:
        raise Decline("not one JSON object per line")
    raw = tuple(table.column_names)
    try:
        names = column_names(list(raw), what=str(path))
    except MlspecError as exc:
        raise Decline(exc.message) from exc
    encode = encoders.setdefault(raw, BatchEncoder(names, exact=False))
    batch = encode([table.column(i).combine_chunks() for i in range(len(raw))], count)
    first, keys = _first(line, path)
    return Batch(batch.names, batch.columns, batch.rows, first, keys)


def jsonl_batches(path: Path, fmt: str, columns: set[str]) -> Generator[Batch | Rows, None, None]:
    """The batches of a JSON Lines file, or the rows of a chunk the reference read."""
    pa, pc = arrow()
    try:
        source = TextSource(path)
    except MlspecError as exc:
        raise Decline(exc.message) from exc
    with source:
        encoders: dict[tuple[str, ...], BatchEncoder] = {}
        try:
            for chunk in _chunks(source.text.buffer):
                try:
                    batch = _batch(pa, pc, path, chunk, encoders)
                except Decline:
                    yield _reference_rows(path, chunk)
                    continue
                if batch is not None:
                    yield batch
        except READ_ERRORS as exc:
            raise Decline(str(exc)) from exc


__all__ = ["jsonl_batches"]
