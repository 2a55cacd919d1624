"""One inference record: its fields, its deterministic CBOR encoding, its strict decoding.

A record is one CBOR map (RFC 8949, encoded by cbor2 with ``canonical=True``: shortest
forms, keys sorted) with short fixed keys:

====  ==================  =====================================================
key   field               CBOR value
====  ==================  =====================================================
v     (format version)    1
n     seq                 unsigned integer, the record's 0-based index in the log
t     time                text, RFC 3339 UTC with microseconds (``...T..:..:..123456Z``)
r     request_id          text
c     client              text (the remote address)
u     user                text: ``sha256:<hex>`` of the user id, the id itself, or ``-``
m     method              text
p     path                text
h     protocol            text (``HTTP/1.1``)
s     status              unsigned integer, 100-999
b     bytes_sent          unsigned integer
f     referer             text or null
a     user_agent          text or null
mn    model               text (name)
mv    model_version       text
md    model_digest        text, 64 lowercase hex (the model's root sha256)
vd    vsa_digest          text, 64 lowercase hex (sha256 of the verification summary bundle)
id    input_digest        text, ``sha256:`` + 64 lowercase hex of the request body
in    input               byte string: the request body (only when inputs are logged)
o     output              the prediction: a JSON-compatible value
l     latency_us          unsigned integer
nl    line_digest         byte string of 32: SHA-256 of the record's NCSA line (no newline)
pv    prev                byte string of 32: the previous record's leaf hash (zeros for seq 0)
====  ==================  =====================================================

Two keys are not in the request: ``nl`` commits the record to its line in
``access.log`` (so the Merkle tree authenticates that file too, and the audit checks a
line by hashing it), and ``pv`` chains each record to the one before, so the audit can
name the first record that changed. In the canonical key order (shorter keys first,
then bytewise) every record ends with the same 143-byte layout, ``nl``, ``pv``, ``vd``:
the audit frames records and reads both hashes from raw bytes (:data:`TAIL`).

Decoding accepts exactly that and nothing else: a bounded size
(:data:`~mlspec_attest.formats.limits.MAX_LOG_RECORD_BYTES`), no tags, no indefinite
lengths, no duplicate keys, no unknown or missing key, no value of another type, no
non-finite float, no trailing bytes, and (for a lone record) the canonical encoding.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import re
from datetime import UTC, datetime
from typing import Any, Final

import cbor2
from msgspec import Struct

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.limits import MAX_JSON_DEPTH, MAX_LOG_RECORD_BYTES, too_large
from mlspec_attest.formats.rfc3339 import parse_rfc3339
from mlspec_attest.log.canonical import MapEncoder
from mlspec_attest.log.ncsa import line_of_map

VERSION = 1
ZERO_PREV = "0" * 64
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", re.ASCII)
#: The integers CBOR holds without a bignum tag (a record holds no other).
INT_RANGE: Final = (-(2**64), 2**64 - 1)

#: key -> (field name, the Python types its CBOR value decodes to)
FIELDS: dict[str, tuple[str, tuple[type, ...]]] = {
    "v": ("version", (int,)),
    "n": ("seq", (int,)),
    "t": ("time", (str,)),
    "r": ("request_id", (str,)),
    "c": ("client", (str,)),
    "u": ("user", (str,)),
    "m": ("method", (str,)),
    "p": ("path", (str,)),
    "h": ("protocol", (str,)),
    "s": ("status", (int,)),
    "b": ("bytes_sent", (int,)),
    "f": ("referer", (str, type(None))),
    "a": ("user_agent", (str, type(None))),
    "mn": ("model", (str,)),
    "mv": ("model_version", (str,)),
    "md": ("model_digest", (str,)),
    "vd": ("vsa_digest", (str,)),
    "id": ("input_digest", (str,)),
    "in": ("input", (bytes,)),
    "o": ("output", (object,)),
    "l": ("latency_us", (int,)),
    "nl": ("line_digest", (bytes,)),
    "pv": ("prev", (bytes,)),
}
KEYS = frozenset(FIELDS) - {"in"}
KEYS_WITH_INPUT = frozenset(FIELDS)
_ENCODER = MapEncoder((KEYS, KEYS_WITH_INPUT))  # cbor2's canonical form, faster
#: The keys of a record without input in encoding order, and the encoder of such a
#: record's values in that order (:func:`encode_checked_values`).
KEY_ORDER, _encode_values = _ENCODER.values_encoder(KEYS)
_UNSIGNED = ("n", "b", "l")

#: The last 143 bytes of every record (canonical order ends ``nl``, ``pv``, ``vd``):
#: marker, then offsets from the record's end of the line digest and of prev.
TAIL_SIZE = 37 + 37 + 69
VSA_MARK = b"\x62vd\x78\x40"  # text key "vd", then a 64-byte text header
LINE_MARK = b"\x62nl\x58\x20"  # text key "nl", then a 32-byte byte string header
PREV_MARK = b"\x62pv\x58\x20"
MAP_HEADS = (b"\xb6", b"\xb7")  # a map of 22 keys (no input) or 23 (with input)


class RecordError(MalformedDocumentError):
    """A record that is not exactly what this module writes."""


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds: ``2025-01-02T03:04:05.000006Z``."""
    if moment.tzinfo is None:
        raise ValueError("the time of a record must be timezone-aware")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def clean_text(value: str) -> str:
    """``value`` as valid Unicode, so CBOR can hold it: a byte that was not UTF-8 (a
    header or path byte decoded with ``surrogateescape``) becomes the text ``\\xHH`` of
    that byte; any other unpaired surrogate, ``\\xHH`` escapes of its UTF-8 form."""
    text = str(value)
    if text.isascii():
        return text
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")
    return data.decode("utf-8", "backslashreplace")


class InferenceRecord(Struct, frozen=True):
    """One inference request as the log keeps it (see the module docstring for the keys)."""

    seq: int
    time: str
    request_id: str
    client: str
    user: str
    method: str
    path: str
    protocol: str
    status: int
    bytes_sent: int
    referer: str | None
    user_agent: str | None
    model: str
    model_version: str
    model_digest: str
    vsa_digest: str
    input_digest: str
    input: bytes | None
    output: Any
    latency_us: int
    line_digest: str
    prev: str

    @property
    def timestamp(self) -> datetime:
        return parse_rfc3339(self.time)

    def to_map(self) -> dict[str, Any]:
        """The CBOR map (before encoding)."""
        m: dict[str, Any] = {"v": VERSION}
        for key, (name, _) in FIELDS.items():
            if key == "v":
                continue
            value = getattr(self, name)
            if key == "in" and value is None:
                continue
            m[key] = bytes.fromhex(value) if key in ("pv", "nl") else value
        return m

    def line(self) -> str:
        """The record's line in ``access.log`` (without the newline)."""
        return line_of_map(self.to_map())

    def to_cbor(self) -> bytes:
        """The record's exact bytes: its Merkle leaf."""
        return encode_map(self.to_map())

    def to_json(self) -> dict[str, Any]:
        """The fields by name, as JSON (``input`` in base64)."""
        doc = {name: getattr(self, name) for key, (name, _) in FIELDS.items() if key != "v"}
        doc["input"] = None if self.input is None else base64.b64encode(self.input).decode()
        return doc


def encode_map(m: dict[str, Any], *, output_normalized: bool = False) -> bytes:
    """Deterministic CBOR of a record map, refused unless :func:`check_map` accepts it
    (its output is not walked again when it came from
    :func:`~mlspec_attest.log.output.normalize_output`)."""
    check_map(m, output=not output_normalized)
    return encode_checked(m)


def check_request_values(
    request_id: str,
    status: int,
    bytes_sent: int,
    latency_us: int,
    digests: tuple[str, str] | None,
) -> None:
    """What :func:`check_map` would refuse among the values a server hands the writer
    (the writer makes every other field itself, in the form the map needs); ``digests``
    None when the caller checked them already."""
    numbers = (status, bytes_sent, latency_us)
    if any(type(v) is not int for v in numbers):
        raise RecordError("log record: status, bytes_sent and latency_us must be integers")
    if not (0 <= bytes_sent < 2**63 and 0 <= latency_us < 2**63 and 100 <= status <= 999):
        raise RecordError(
            "log record: seq, bytes_sent and latency_us must be unsigned, status 100-999"
        )
    if digests is not None and not all(_HEX64.fullmatch(d) for d in digests):
        raise RecordError("log record: model_digest and vsa_digest must be 64 lowercase hex")
    if not request_id:
        raise RecordError("log record: request_id is empty")


def encode_checked(m: dict[str, Any]) -> bytes:
    """Deterministic CBOR of a record map already known to be valid, within the size bound."""
    return _bounded(_ENCODER.encode(m))


def encode_checked_values(values: tuple[Any, ...]) -> bytes:
    """:func:`encode_checked` of the record without input whose values, in
    :data:`KEY_ORDER`, are ``values`` (no map made)."""
    return _bounded(_encode_values(values))


def _bounded(data: bytes) -> bytes:
    if len(data) > MAX_LOG_RECORD_BYTES:
        raise RecordError(too_large("inference record", MAX_LOG_RECORD_BYTES, "a log record"))
    return data


def _refuse_tag(*_: object) -> Any:
    raise RecordError("CBOR tags are not allowed in a log record")


#: Every tag refused: cbor2's semantic tags by number, any other through the tag hook.
_NO_TAGS = dict.fromkeys(
    (0, 1, 2, 3, 4, 5, 24, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004),
    _refuse_tag,
)
_NO_TAGS[55799] = _refuse_tag
DECODER_OPTIONS: dict[str, Any] = {
    "semantic_decoders": _NO_TAGS,
    "tag_hook": _refuse_tag,
    "max_depth": MAX_JSON_DEPTH + 1,
    "allow_indefinite": False,
    "allow_duplicate_keys": False,
    "strict_hashable_types": True,
    "str_errors": "strict",
}


def decode_record(data: bytes, *, what: str = "log record") -> InferenceRecord:
    """One record from exactly its bytes (strict, bounded, canonical)."""
    if len(data) > MAX_LOG_RECORD_BYTES:
        raise RecordError(too_large(what, MAX_LOG_RECORD_BYTES, "a log record"))
    stream = io.BytesIO(data)
    try:
        m = cbor2.CBORDecoder(stream, **DECODER_OPTIONS).decode()
    except (cbor2.CBORDecodeError, RecordError, RecursionError) as exc:
        raise RecordError(f"{what}: not a valid CBOR record ({_reason(exc)})") from exc
    if stream.tell() != len(data):
        raise RecordError(f"{what}: {len(data) - stream.tell()} bytes after the record")
    record = record_from_map(m, what=what)
    if cbor2.dumps(m, canonical=True) != data:
        raise RecordError(f"{what}: not in the deterministic encoding the log writes")
    check_line_digest(m, what=what)
    return record


def check_line_digest(m: dict[str, Any], *, what: str = "log record") -> str:
    """The record's line, once its ``nl`` is the SHA-256 of it (RecordError if not)."""
    line = line_of_map(m)
    if hashlib.sha256(line.encode()).digest() != m["nl"]:
        raise RecordError(f"{what}: line_digest is not the digest of the record's line")
    return line


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, RecordError):
        return cause.message
    return str(exc) or type(exc).__name__


def record_from_map(m: Any, *, what: str = "log record", check: bool = True) -> InferenceRecord:
    """The record of a decoded map, once :func:`check_map` accepts it (``check=False``
    for a map that was just checked)."""
    if check:
        check_map(m, what=what)
    values = {name: m.get(key) for key, (name, _) in FIELDS.items() if key != "v"}
    values["prev"] = m["pv"].hex()
    values["line_digest"] = m["nl"].hex()
    return InferenceRecord(**values)


def check_map(m: Any, *, what: str = "log record", output: bool = True) -> None:
    """Refuse (RecordError) a map that is not exactly a version-1 record (``output=False``
    leaves out the walk of an output
    :func:`~mlspec_attest.log.output.normalize_output` made)."""
    if type(m) is not dict:
        raise RecordError(f"{what}: not a CBOR map")
    keys = m.keys()
    if keys != KEYS and keys != KEYS_WITH_INPUT:
        missing = sorted(KEYS - keys)
        unknown = sorted((k for k in keys if k not in FIELDS), key=repr)
        raise RecordError(f"{what}: missing keys {missing}, unknown keys {unknown}")
    for key, value in m.items():
        name, types = FIELDS[key]
        if types != (object,) and type(value) not in types:
            raise RecordError(f"{what}: {name} ({key}) is a {type(value).__name__}")
    if m["v"] != VERSION:
        raise RecordError(f"{what}: version {m['v']} is not {VERSION}")
    _check_values(m, what)
    if output:
        _check_json(m["o"], what)


def _check_values(m: dict[str, Any], what: str) -> None:
    if any(not 0 <= m[k] < 2**63 for k in _UNSIGNED) or not 100 <= m["s"] <= 999:
        raise RecordError(
            f"{what}: seq, bytes_sent and latency_us must be unsigned, status 100-999"
        )
    if not _TIME.fullmatch(m["t"]):
        raise RecordError(f"{what}: time {m['t'][:40]!r} is not RFC 3339 UTC with microseconds")
    try:
        parse_rfc3339(m["t"])
    except ValueError as exc:
        raise RecordError(f"{what}: time {exc}") from exc
    if not (_HEX64.fullmatch(m["md"]) and _HEX64.fullmatch(m["vd"])):
        raise RecordError(f"{what}: model_digest and vsa_digest must be 64 lowercase hex")
    if not (m["id"].startswith("sha256:") and _HEX64.fullmatch(m["id"], 7)):
        raise RecordError(f"{what}: input_digest must be sha256:<64 lowercase hex>")
    if len(m["pv"]) != 32 or len(m["nl"]) != 32:
        raise RecordError(f"{what}: prev and line_digest must be 32 bytes")
    if not m["r"]:
        raise RecordError(f"{what}: request_id is empty")


def _check_json(value: Any, what: str) -> None:
    """A JSON-compatible value: null, booleans, finite numbers, text, arrays, maps with
    text keys, nested at most MAX_JSON_DEPTH deep (iteratively)."""
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        node, depth = todo.pop()
        kind = type(node)
        if kind is float:
            if not math.isfinite(node):
                raise RecordError(f"{what}: output holds a non-finite number")
        elif kind is int:
            if not INT_RANGE[0] <= node <= INT_RANGE[1]:
                raise RecordError(f"{what}: output holds an integer beyond 64 bits")
        elif kind is list or kind is dict:
            if depth > MAX_JSON_DEPTH:
                raise RecordError(f"{what}: output nests deeper than {MAX_JSON_DEPTH}")
            if kind is dict:
                if any(type(k) is not str for k in node):
                    raise RecordError(f"{what}: output has a map key that is not text")
                node = node.values()
            todo.extend((child, depth + 1) for child in node)
        elif not (kind is str or kind is bool or node is None):
            raise RecordError(f"{what}: output holds a {kind.__name__}, not a JSON value")
