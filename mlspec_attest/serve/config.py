"""A server's configuration: what the middleware enforces and what ``/varz`` shows."""

from __future__ import annotations

import re
from typing import Final

from msgspec import Struct

from mlspec_attest.errors import UsageError
from mlspec_attest.formats import limits

#: An HTTP header name (RFC 9110 token), the form ``user_header`` must take.
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
#: Who may write the inference log (:attr:`ServeConfig.log_writer`).
LOG_WRITERS: Final = ("journal", "process", "inline")
#: The most threads a server may give its model's ``predict``.
MAX_PREDICT_THREADS: Final = 64


def check_thread_count(threads: int) -> int:
    """``threads`` if it is a usable count of predict threads (0 to
    :data:`MAX_PREDICT_THREADS`; 0 runs ``predict`` on the event loop)."""
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise UsageError(f"predict_threads must be a whole number: {threads!r}")
    if not 0 <= threads <= MAX_PREDICT_THREADS:
        raise UsageError(
            f"predict_threads must be between 0 (on the event loop) and "
            f"{MAX_PREDICT_THREADS}: {threads}"
        )
    return threads


class ServeConfig(Struct, frozen=True):
    """How a server runs. Every field is shown by ``/varz``; none may hold a secret
    (the log's signing key is given to the log, never here)."""

    host: str | None = None
    port: int | None = None
    log_dir: str | None = None
    """Where the inference log is written (shown; the log itself is the caller's)."""
    log_inputs: bool = False
    """Whether the log keeps request bodies as sent (else their digests)."""
    log_user_ids: bool = False
    """Whether the log keeps user ids as sent (else their digests)."""
    max_body_bytes: int = limits.MAX_INFER_BODY_BYTES
    """The largest inference request body accepted (413 beyond)."""
    user_header: str = "X-User-Id"
    """The request header that names the user of an inference request."""
    log_writer: str = "journal"
    """Who writes the inference log: ``process`` (a writer process of its own, records
    grouped; the serving process only hands values over) or ``inline`` (the serving
    process, one record at a time: less latency for a lone request, more CPU per
    request). Either way no request is answered before its record is written."""
    predict_threads: int = 1
    """How many threads run the model's ``predict`` (0: on the event loop); see
    :mod:`mlspec_attest.serve.predict_threads`."""

    def __post_init__(self) -> None:
        check_thread_count(self.predict_threads)
        if self.log_writer not in LOG_WRITERS:
            raise UsageError(
                f"log_writer must be one of {', '.join(LOG_WRITERS)}: {self.log_writer!r}"
            )
        if not _HEADER_NAME.fullmatch(self.user_header):
            raise UsageError(f"user_header {self.user_header!r} is not an HTTP header name")
        if not 0 < self.max_body_bytes <= limits.MAX_INFER_BODY_BYTES:
            raise UsageError(
                f"max_body_bytes must be between 1 and {limits.MAX_INFER_BODY_BYTES} "
                f"(limits.MAX_INFER_BODY_BYTES): {self.max_body_bytes}"
            )

    def varz(self) -> dict[str, object]:
        """The configuration as ``/varz`` shows it."""
        return {
            "host": self.host,
            "port": self.port,
            "log_dir": self.log_dir,
            "log_inputs": "as sent" if self.log_inputs else "digest",
            "log_user_ids": "as sent" if self.log_user_ids else "digest",
            "max_body_bytes": self.max_body_bytes,
            "user_header": self.user_header,
            "log_writer": self.log_writer,
            "predict_threads": self.predict_threads,
        }
