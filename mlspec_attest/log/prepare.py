"""``RecordMaker``: a request's record map, made and checked before any file is touched.

The values a server hands the log are turned into the record's fields here (text made
valid Unicode, the user id hashed unless user ids are logged, the body's digest, the
output as plain JSON types) and checked; what only the writer knows (seq, the previous
leaf, the line's digest, and the time unless given) is added when the map is committed
(:meth:`mlspec_attest.log.writer.InferenceLog.commit`). The in-process writer and the
writer process's client (:mod:`mlspec_attest.log.process`) both prepare through this
class, so a record is made one way whoever writes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, NotRequired, TypedDict, Unpack

from mlspec_attest.errors import UsageError
from mlspec_attest.formats.limits import MAX_ACCESS_LOG_LINE_BYTES, too_large
from mlspec_attest.log.ncsa import line_of, line_of_map
from mlspec_attest.log.output import normalize_output
from mlspec_attest.log.record import (
    KEY_ORDER,
    VERSION,
    RecordError,
    check_request_values,
    clean_text,
    encode_checked,
    encode_checked_values,
    format_time,
)


class RequestValues(TypedDict):
    """What a server hands the log for one request: the keywords of
    :meth:`RecordMaker.prepare` (and so of every log's ``append``)."""

    request_id: str
    client: str
    user: str | None
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
    body: bytes
    output: object
    latency_us: int
    time: NotRequired[datetime | int | None]


class RecordMaker:
    """Makes record maps; ``log_inputs`` keeps request bodies, ``log_user_ids`` keeps user
    ids in clear (else their sha256).

    A map is made in two steps, so that a writer process's client does the first (cheap,
    and everything that can refuse a value) and the writer the second: :meth:`fields`
    turns the server's values into :data:`Fields` (the body's digest, the user id as it
    will be logged, the output as plain JSON types, the values checked) and
    :meth:`record_map` turns those into the record's map. :meth:`prepare` is both."""

    log_inputs: bool = False
    log_user_ids: bool = False
    _checked: tuple[str, str] = ("", "")  # the last digests found well formed, as hex
    _given: object = None  # ... and the objects they were given as
    _given_vsa: object = None

    def prepare(self, **values: Unpack[RequestValues]) -> dict[str, Any]:
        """The checked record map of one request, without what :meth:`commit` assigns
        (seq, prev, line digest, and the time unless ``time`` is given). BadInputError
        for a value a record cannot hold. Touches no file."""
        return record_map(self.fields(values))

    def fields(self, values: RequestValues, now: int | None = None) -> Fields:
        """One request's values (the keywords of :meth:`prepare`), checked and reduced to
        what its record keeps (see the class docstring). ``time``: a timezone-aware
        datetime, nanoseconds since the epoch, or None (then ``now``, nanoseconds since
        the epoch, or if None the writer's clock at commit)."""
        if len(values) > _REQUIRED_COUNT and not values.keys() <= _KEYS:
            unknown = sorted(values.keys() - _KEYS)
            raise UsageError(f"log record: unexpected keyword argument {unknown[0]!r}")
        try:
            row = tuple([values[key] for key in ROW_KEYS])  # type: ignore[literal-required]
        except KeyError as exc:
            raise UsageError(f"log record: missing keyword argument {exc}") from None
        return self.fields_of_row(row, _time_of(values.get("time"), now))

    def fields_of_row(self, row: RequestRow, now: str | int | None) -> Fields:
        """:meth:`fields` of the values as a :data:`RequestRow` (what the middleware hands
        over: no map to build or to look up) with the record's time ``now`` (nanoseconds
        since the epoch, the record's form of a time, or None: the writer's clock at
        commit). Called for every request a server answers: kept lean."""
        (
            request_id, client, user, method, path, protocol, status, sent, referer,
            user_agent, model, model_version, model_digest, vsa_digest, body, output,
            latency,
        ) = row  # fmt: skip
        if model_digest is not self._given or vsa_digest is not self._given_vsa:
            self._check_digests(model_digest, vsa_digest)
        if not (
            type(status) is int
            and type(sent) is int
            and type(latency) is int
            and 100 <= status <= 999
            and 0 <= sent < _U63
            and 0 <= latency < _U63
            and request_id
        ):
            check_request_values(request_id, status, sent, latency, None)  # names what
        return (
            now, request_id, client, self._user(user) if user else "-", method, path,
            protocol, status, sent, referer, user_agent, model, model_version,
            self._checked[0], self._checked[1], hashlib.sha256(body).hexdigest(),
            bytes(body) if self.log_inputs else None, normalize_output(output), latency,
        )  # fmt: skip

    def _check_digests(self, model_digest: str, vsa_digest: str) -> None:
        """Check the model's and the summary's digests, and remember them: a server hands
        the same two objects with every request, so they are checked once."""
        digests = (_hex(model_digest), _hex(vsa_digest))
        check_request_values("-", 200, 0, 0, digests)
        self._checked, self._given, self._given_vsa = digests, model_digest, vsa_digest

    def _user(self, user: str | None) -> str:
        if not user:
            return "-"
        if self.log_user_ids:
            return clean_text(user)
        return "sha256:" + hashlib.sha256(clean_text(user).encode()).hexdigest()


_KEYS: Final = frozenset(RequestValues.__annotations__)
_REQUIRED_COUNT: Final = len(_KEYS) - 1  # all but "time"
_U63: Final = 2**63

#: The keys of :class:`RequestValues` but ``time``, in the order of a :data:`RequestRow`.
ROW_KEYS: Final = tuple(key for key in RequestValues.__annotations__ if key != "time")

#: One request's values as a tuple, in the order of :data:`ROW_KEYS` (the middleware's
#: hand-over: :meth:`RecordMaker.fields_of_row`).
RequestRow = tuple[Any, ...]

#: What :meth:`RecordMaker.fields` makes: (time, request id, client, user as logged,
#: method, path, protocol, status, bytes sent, referer, user agent, model, model version,
#: model digest, VSA digest, input digest (hex), raw input or None, output, latency).
#: Plain values only, so it can be journaled (:mod:`mlspec_attest.log.journal`).
Fields = tuple[Any, ...]

FIELD_COUNT: Final = 19


def record_map(fields: Fields) -> dict[str, Any]:
    """The record map of :meth:`RecordMaker.fields`' values: text made valid Unicode, the
    time in the record's form (absent: the writer's clock at commit)."""
    (
        time, request_id, client, user, method, path, protocol, status, bytes_sent, referer,
        user_agent, model, model_version, model_digest, vsa_digest, input_digest, raw,
        output, latency_us,
    ) = fields  # fmt: skip
    texts = (request_id, client, method, path, protocol, model, model_version)
    optional = (referer, user_agent)
    if not _clean_already(texts, optional):
        request_id, client, method, path, protocol, model, model_version = map(clean_text, texts)
        referer, user_agent = (None if t is None else clean_text(t) for t in optional)
    m: dict[str, Any] = {
        "v": VERSION, "r": request_id, "c": client, "u": user, "m": method, "p": path,
        "h": protocol, "s": status, "b": bytes_sent, "f": referer, "a": user_agent,
        "mn": model, "mv": model_version, "md": model_digest, "vd": vsa_digest,
        "id": "sha256:" + input_digest, "o": output, "l": latency_us,
    }  # fmt: skip
    if raw is not None:
        m["in"] = raw
    if time is not None:
        m["t"] = time if isinstance(time, str) else time_of_ns(time)
    return m


_SEVEN_TEXTS: Final = (str,) * 7


def _clean_already(texts: tuple[Any, ...], optional: tuple[Any, ...]) -> bool:
    """Whether :func:`~mlspec_attest.log.record.clean_text` would leave every text as it
    is: each exactly a ``str`` (or, for ``optional``, None) and all of it ASCII. True for
    almost every request, whose texts are then checked in one pass, not one by one."""
    if tuple(map(type, texts)) != _SEVEN_TEXTS:
        return False
    extra = [t for t in optional if t is not None]
    return all(type(t) is str for t in extra) and "".join((*texts, *extra)).isascii()


def _time_of(time: datetime | int | None, now: int | None) -> str | int | None:
    """A given time checked now (its record form), nanoseconds kept; if none, ``now``."""
    if time is None:
        return now
    if type(time) is int:
        return time
    try:
        return format_time(time)  # type: ignore[arg-type]
    except (ValueError, AttributeError, OverflowError, TypeError) as exc:
        raise RecordError(f"time {time!r}: {exc}") from exc


def time_of_ns(ns: int) -> str:
    """The record's time of ``ns`` nanoseconds since the epoch (microseconds kept)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return f"{_second(seconds)}.{rest // 1000:06d}Z"


@lru_cache(maxsize=16)
def _second(seconds: int) -> str:
    """``2025-01-02T03:04:05``: the second a record's time falls in (requests come in
    runs within one second; the date is formatted once per second)."""
    return format_time(datetime.fromtimestamp(seconds, UTC))[:19]


def _hex(digest: str) -> str:
    """A digest as the record holds it: bare lowercase hex (a ``sha256:`` prefix dropped)."""
    text = digest if type(digest) is str else str(digest)
    return text[7:] if text[:7] == "sha256:" else text


#: Gives the map to write in place of one over the size bound (and why it was).
Substitute = Callable[[dict[str, Any], RecordError], dict[str, Any]]


def encoded_record(m: dict[str, Any], seq: int, prev: bytes, now: str) -> tuple[bytes, bytes]:
    """The record of map ``m`` and its line, once the writer's fields are set (seq, the
    previous leaf, the time unless ``m`` has one, the line's digest). RecordError if the
    record is over the size bound."""
    m["n"], m["pv"] = seq, prev
    m.setdefault("t", now)
    line = _bounded_line(line_of_map(m).encode())
    m["nl"] = hashlib.sha256(line).digest()
    return encode_checked(m), line


def _bounded_line(line: bytes) -> bytes:
    """A record's line within the bound every reader of ``access.log`` keeps: escaping
    grows client text and outputs (a control character takes 4 bytes, a quote in an
    output's JSON more), so a record within its own bound may still render too long a line."""
    if len(line) > MAX_ACCESS_LOG_LINE_BYTES:
        raise RecordError(too_large("access.log line", MAX_ACCESS_LOG_LINE_BYTES, "a log line"))
    return line


#: The keys of the values :func:`encoded_fields` hands the encoder, in its order.
_VALUE_KEYS: Final = ("a", "b", "c", "f", "h", "l", "m", "n", "o", "p", "r", "s", "t", "u", "v",
                      "id", "md", "mn", "mv", "nl", "pv", "vd")  # fmt: skip
if _VALUE_KEYS != KEY_ORDER:  # the record's keys changed: encoded_fields must follow
    raise ImportError(f"log record keys {KEY_ORDER} are not those encoded_fields writes")


def encoded_fields(fields: Fields, seq: int, prev: bytes, now: str) -> tuple[bytes, bytes]:
    """``encoded_record(record_map(fields), seq, prev, now)``, byte for byte, without the
    map when none is needed: how the writer process writes each journaled request (a
    record with its input, or with text to clean, takes the map's way)."""
    (
        time, request_id, client, user, method, path, protocol, status, sent, referer,
        agent, model, version, model_digest, vsa_digest, input_digest, raw, output, latency,
    ) = fields  # fmt: skip
    texts = (request_id, client, method, path, protocol, model, version)
    if raw is not None or not _clean_already(texts, (referer, agent)):
        return encoded_record(record_map(fields), seq, prev, now)
    if time is not None:
        now = time if isinstance(time, str) else time_of_ns(time)
    digest = "sha256:" + input_digest
    line = line_of(
        client, user, method, path, protocol, referer, agent, request_id, model, version,
        now, status, sent, vsa_digest, digest, output, latency, seq,
    ).encode()  # fmt: skip
    _bounded_line(line)
    data = encode_checked_values((
        agent, sent, client, referer, protocol, latency, method, seq, output, path,
        request_id, status, now, user, VERSION, digest, model_digest, model, version,
        hashlib.sha256(line).digest(), prev, vsa_digest,
    ))  # fmt: skip
    return data, line
