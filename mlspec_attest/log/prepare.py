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
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from mlspec_attest.log.record import (
    RecordError,
    check_request_values,
    clean_text,
    format_time,
    normalize_output,
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
    time: NotRequired[datetime | None]


class RecordMaker:
    """Makes record maps; ``log_inputs`` keeps request bodies, ``log_user_ids`` keeps user
    ids in clear (else their sha256)."""

    log_inputs: bool = False
    log_user_ids: bool = False

    def prepare(
        self,
        *,
        request_id: str,
        client: str,
        user: str | None,
        method: str,
        path: str,
        protocol: str,
        status: int,
        bytes_sent: int,
        referer: str | None,
        user_agent: str | None,
        model: str,
        model_version: str,
        model_digest: str,
        vsa_digest: str,
        body: bytes,
        output: object,
        latency_us: int,
        time: datetime | None = None,
    ) -> dict[str, Any]:
        """The checked record map of one request, without what :meth:`commit` assigns
        (seq, prev, line digest, and the time unless ``time`` is given). BadInputError
        for a value a record cannot hold. Touches no file: a writer process's clients
        prepare, the process commits."""
        m: dict[str, Any] = {
            "v": 1, "r": clean_text(request_id), "c": clean_text(client),
            "u": self._user(user), "m": clean_text(method), "p": clean_text(path),
            "h": clean_text(protocol), "s": status, "b": bytes_sent,
            "f": None if referer is None else clean_text(referer),
            "a": None if user_agent is None else clean_text(user_agent),
            "mn": clean_text(model), "mv": clean_text(model_version),
            "md": _hex(model_digest), "vd": _hex(vsa_digest),
            "id": "sha256:" + hashlib.sha256(body).hexdigest(),
            "o": normalize_output(output), "l": latency_us,
        }  # fmt: skip
        check_request_values(m["r"], status, bytes_sent, latency_us, (m["md"], m["vd"]))
        if self.log_inputs:
            m["in"] = bytes(body)
        if time is not None:
            try:
                m["t"] = format_time(time)
            except (ValueError, AttributeError, OverflowError) as exc:
                raise RecordError(f"time {time!r}: {exc}") from exc
        return m

    def _user(self, user: str | None) -> str:
        if not user:
            return "-"
        if self.log_user_ids:
            return clean_text(user)
        return "sha256:" + hashlib.sha256(clean_text(user).encode()).hexdigest()


def _hex(digest: str) -> str:
    """A digest as the record holds it: bare lowercase hex (a ``sha256:`` prefix dropped)."""
    text = str(digest)
    return text[7:] if text.startswith("sha256:") else text
