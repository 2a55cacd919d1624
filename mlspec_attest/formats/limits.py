"""Every bound on parsing untrusted input, in one place (docs/formats.md, "Limits").

Anything mlspec-attest reads may come from an attacker: a bundle dropped into a
run folder, a policy from a pull request, a model signature shipped with a
model. Each limit below keeps one kind of input from costing unbounded memory,
CPU or stack, and is generous enough that no legitimate document comes near
it. Exceeding a limit is bad input (exit 3) with a message naming the limit,
never a crash.

:func:`read_limited` is the one way to read such a file: it never reads more
than its limit (so ``/dev/zero`` or a file that grows while read cannot exhaust
memory), and maps every OS error to a clear bad-input error.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO, Final

from mlspec_attest.errors import BadInputError, MalformedDocumentError

KiB: Final = 1024
MiB: Final = 1024 * KiB
GiB: Final = 1024 * MiB

# ------------------------------------------------------------------ sizes
MAX_JSON_BYTES: Final = 64 * MiB
"""Any JSON document without a narrower limit below (trust roots, in-toto links,
``--detail`` files, JSON Lines records). The bound on what one parse may cost:
Python objects take roughly ten times the text size."""

MAX_POLICY_BYTES: Final = 1 * MiB
"""A policy YAML file. The 13-stage lifecycle template is 15 KiB; an embedded
Sigstore trusted root adds about 10 KiB."""

MAX_DSSE_PAYLOAD_BYTES: Final = 32 * MiB
"""The decoded payload of a DSSE envelope (a statement or a signed policy). A
statement names every material and product file it lists one by one, as an
OpenSSF model signature names every model file and an in-toto DSSE link every
artifact: about 200,000 files at 150 bytes each."""

MAX_BUNDLE_BYTES: Final = 48 * MiB
"""A Sigstore bundle or bare DSSE envelope file (stage attestations, signed
policies, OMS ``model.sig``): the base64 of the largest payload (4/3 of
:data:`MAX_DSSE_PAYLOAD_BYTES`, 42.7 MiB) plus a certificate chain and
transparency-log entries."""

MAX_DSSE_SIGNATURES: Final = 64
"""Signatures in one DSSE envelope. A Sigstore bundle carries one, a policy one
per owner; each costs a verification per trusted key, so a flood of them would
cost CPU rather than memory."""

MAX_MANIFEST_BYTES: Final = MAX_JSON_BYTES
"""A directory manifest read back from the store (about 570,000 files). Only a
signer can make one large (it is fetched by the digest the signature covers),
but parsing costs about 14 times its size in memory, and the verifier reads it
only to list the files of a mismatch: a larger one is reported as unreadable,
the verdict is the same."""

MAX_METRICS_BYTES: Final = 8 * MiB
"""A ``sign --metrics`` document. Its metrics and slices go into the signed
statement, so it must fit well inside :data:`MAX_DSSE_PAYLOAD_BYTES`."""

MAX_OBJECTIVES_BYTES: Final = 1 * MiB
"""An objectives YAML or JSON document (launch criteria): a few KiB in practice."""

MAX_DATA_SCHEMA_BYTES: Final = 4 * MiB
"""A data schema (YAML or JSON): one entry per column with up to a few enum
values; 4 MiB is some 20,000 columns."""

MAX_INTOTO_METADATA_BYTES: Final = MAX_JSON_BYTES
"""A legacy in-toto layout or link (``verify --policy LAYOUT``). ``in-toto-run``
records one entry per file, so links of large directories are large."""

MAX_BLOB_BYTES: Final = 1 * GiB
"""Default bound on a content-addressed blob read back from the store (manifests,
objectives documents). Callers that know the size from signed content pass a
tighter or larger bound (a row digest set: 32 bytes per attested row). Only
regular files are read: a blob replaced by ``/dev/zero`` or a FIFO is absent."""

MAX_RUN_MARKER_BYTES: Final = 4 * KiB
"""``current-run`` holds one run id (at most 128 characters) and a newline."""

MAX_SHARDS: Final = 2**18
"""Most byte-range shards one hashing job may split its files into. The shard size
can come from a signed DigestSet (``sha256-sharded-1``): without this bound one
insider could make every gate re-hashing a model build one job per byte. With
model-signing's 1 GB default this allows 256 TiB."""

MAX_MODEL_BYTES: Final = 64 * GiB
"""All the files of one model the serving gate reads and hashes (``serve.gate``): it
holds them in memory for the loader (or streams them into the verified copy), so
a model directory padded with data cannot exhaust memory or disk. The largest
open-weight models that fit one server's memory are a few dozen GiB; a caller
serving a larger one passes its own bound."""

MAX_MODEL_CARD_BYTES: Final = 1 * MiB
"""The ``model-card.json`` of a model package (name, version, features): a few KiB."""

MAX_KEY_BYTES: Final = 64 * KiB
"""A PEM key file. An RSA-4096 private key is 3.3 KiB; a key file is never
a certificate bundle."""

MAX_CERTIFICATES_BYTES: Final = 1 * MiB
"""A PEM file of trusted certificates (``--certificate-chain``): a certificate is
1-2 KiB, so this holds hundreds."""

MAX_INFER_BODY_BYTES: Final = 8 * MiB
"""The body of one inference request to the server (Open Inference Protocol v2 or v1
JSON). Refused with 413 before it is read when its Content-Length says more, and once
more than this has arrived when it does not. 8 MiB is about 500,000 numbers: far more
than a tabular batch needs, and each request's body is held in memory until it is logged."""

MAX_REQUEST_ID_BYTES: Final = 128
"""An ``X-Request-Id`` header a client sends: a longer one (or one with anything but
letters, digits and ``._:-``) is replaced by a generated UUID, never echoed. A UUID is
36 characters; a W3C trace id 32."""

MAX_USER_ID_BYTES: Final = 256
"""The user-id header of an inference request (``X-User-Id`` by default): it goes into
the inference log, so a longer one is refused (400) rather than logged cut short."""

MAX_LOG_RECORD_BYTES: Final = 16 * MiB
"""One inference-log record (CBOR) in ``records.cbor``. A record holds the request's
metadata, the output and, only when the writer logs inputs, the request body, which the
server bounds at :data:`MAX_INFER_BODY_BYTES` (8 MiB); the writer refuses a larger
record rather than write one its own audit would refuse."""

MAX_DATA_LINE_CHARS: Final = 16 * MiB
"""One line of a CSV or TSV data file, in characters. Python's ``csv`` module takes a
file a line at a time, so a line is held whole before any field limit applies: a 2 MB
gzip file of one 2 GiB line without a newline took 3 GB and died (exit 70). A quoted
field may span lines; each line is bounded."""

MAX_ACCESS_LOG_LINE_BYTES: Final = 64 * MiB
"""One line of the inference log's ``access.log``. The line carries the output as
escaped JSON, at most about four times the record's size in the worst case."""

MAX_CHECKPOINT_BYTES: Final = 1 * MiB
"""A signed note: a log checkpoint with its signatures. A checkpoint body is about
100 bytes and an Ed25519 signature line about 150; the bound leaves room for the
signed-note limit of signatures below even at post-quantum sizes (~7 KiB each)."""

MAX_NOTE_SIGNATURES: Final = 100
"""Signature lines in one signed note (the spec requires accepting at least 16; Go's
``golang.org/x/mod/sumdb/note`` accepts 100). Each costs a comparison, and one
verification when it names the trusted key."""

# ------------------------------------------------------------------ structure
MAX_JSON_DEPTH: Final = 64
"""Nesting of arrays and objects in JSON. A bundle nests 6 deep, a stage
statement with its ML metadata about 10. The bound keeps every recursive
walker (the JSON parser, JSON Schema validation, RFC 8785 canonicalization,
``copy.deepcopy``) far from Python's recursion limit of 1000 frames."""

MAX_INFER_JSON_DEPTH: Final = 8
"""Nesting of an inference request body. An Open Inference Protocol request nests 5
deep (request, inputs, tensor, rows, row), a v1 request 4; anything deeper is refused
(400) before it is parsed."""

MAX_YAML_DEPTH: Final = MAX_JSON_DEPTH
"""Nesting of mappings and sequences in YAML. A YAML policy becomes the signed
JSON payload, so it may not nest deeper than JSON reading accepts."""

# YAML anchors and aliases (``&name`` / ``*name``, and ``<<:`` merge keys) are
# refused outright in every YAML document mlspec-attest reads (policies,
# objectives, data schemas), rather than counted: a few aliases stacked on each
# other expand into billions of nodes ("billion laughs"), none of our documents
# needs them, and a signed policy is JSON without them anyway.

MAX_SAFE_INTEGER: Final = 2**53 - 1
"""Largest integer magnitude accepted in JSON (I-JSON, RFC 7493 §2.2): every
JSON parser, including JavaScript's and RFC 8785 canonicalization, represents it
exactly. Sigstore writes its int64 fields (``logIndex``, ``integratedTime``) as
strings, so bundles are unaffected. Longer literals never reach the quadratic
cost of converting them: anything over 16 digits is refused unread, and where
the bound is lifted Python's own 4300-digit cap applies."""


def bounded_lines(text: IO[str], what: str, limit: int = MAX_DATA_LINE_CHARS) -> Iterator[str]:
    """The lines of ``text`` (as its iteration gives them), refusing one longer than
    ``limit`` characters before more of it is read."""
    while line := text.readline(limit + 1):
        if len(line) > limit and not line.endswith(("\n", "\r")):
            raise BadInputError(
                f"{what}: a line longer than {format_size(limit)} characters",
                remedy="split the data into rows of reasonable size",
            )
        yield line


def format_size(size: int) -> str:
    """``1 MiB``, ``64 KiB``, ``10 bytes``: a limit as people write it."""
    for unit, name in ((GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} bytes"


def too_large(what: str, limit: int, kind: str) -> str:
    """The one wording of an oversize error."""
    return f"{what}: larger than {format_size(limit)}, the limit for {kind}"


def read_limited(
    path: Path,
    limit: int,
    *,
    what: str,
    kind: str,
    error: Callable[[str], BadInputError] = MalformedDocumentError,
    regular_only: bool = False,
) -> bytes:
    """The bytes of ``path``, refusing more than ``limit`` of them.

    A file whose size is over the limit is refused before reading; the read
    itself also stops after ``limit + 1`` bytes, since a FIFO, ``/dev/zero`` or a
    growing file report a smaller size than they deliver. Opening never blocks
    (a FIFO without a writer reads as empty). With ``regular_only``, anything but
    a regular file (a FIFO, a device, a socket) is refused as such, checked with
    ``fstat`` on the open descriptor: for inputs that must be bytes on disk (the
    serving gate's summary). Raises ``error`` (a bad-input error, exit 3) with one
    clear message.
    """
    try:
        with open_for_reading(path) as handle:
            status = os.fstat(handle.fileno())
            if regular_only and not stat.S_ISREG(status.st_mode):
                raise error(not_regular(what, status.st_mode))
            size = status.st_size
            if size > limit:
                raise error(too_large(what, limit, kind))
            data = _read_at_most(handle, limit + 1, size)
    except FileNotFoundError as exc:
        raise error(f"{what}: file not found") from exc
    except IsADirectoryError as exc:
        raise error(f"{what}: cannot read (is a directory, expected a file)") from exc
    except OSError as exc:
        raise error(f"{what}: cannot read ({exc.strerror or exc})") from exc
    if len(data) > limit:
        raise error(too_large(what, limit, kind))
    return data


def not_regular(what: str, mode: int) -> str:
    """The one wording of a refused FIFO, device or socket (``mode``: its ``st_mode``)."""
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    )
    kind = next((name for test, name in kinds if test(mode)), "an unknown kind")
    return f"{what}: not a regular file ({kind}); give the file itself"


def require_regular(
    path: Path, *, what: str, error: Callable[[str], BadInputError] = BadInputError
) -> None:
    """Refuse ``path`` if it names a FIFO, a device or a socket (or a directory): a check
    before a reader that takes any file (a key, a policy, a data file) opens it, by ``stat``,
    so nothing is opened (opening a device can do things). A path that cannot be looked at
    is left to that reader, whose message (not found, permission denied) says more, as is
    a file swapped after this check (the reader opens without blocking).
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise error(not_regular(what, mode))


def open_for_reading(path: Path, *, buffering: int = -1) -> BinaryIO:
    """Open without blocking: a FIFO nobody writes to would otherwise hang ``open`` forever.

    Once open, reads block again as usual, so a pipe with a writer (``<(cmd)``) is read
    whole, and one without reads as empty.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=buffering)
    except BaseException:
        os.close(fd)
        raise


def _read_at_most(handle: BinaryIO, count: int, size_hint: int) -> bytes:
    """Up to ``count`` bytes. The first read is sized by the file's size, so a small
    file never costs a ``count``-sized buffer; more reads follow only if the size lied."""
    first = handle.read(min(size_hint + 1, count))
    parts, total = [first], len(first)
    while first and total < count:
        chunk = handle.read(min(MiB, count - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return first if len(parts) == 1 else b"".join(parts)
