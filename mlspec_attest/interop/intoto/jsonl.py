"""``.intoto.jsonl``: one DSSE envelope per line, the bundle format of witness, Archivista,
GUAC and the SLSA GitHub generator.

Each line is the compact (RFC 8785) JSON of one envelope, exactly the
``dsseEnvelope`` of a stored Sigstore bundle, so every signature still verifies.
The bundle's ``verificationMaterial`` is not carried: a consumer finds the key
by the signature's ``keyid`` (mlspec-attest's key id, the SHA-256 of the SPKI
PEM). Reading also accepts a line holding a whole Sigstore bundle.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from msgspec import Struct

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.bundle import Bundle, is_bundle
from mlspec_attest.formats.dsse import Envelope
from mlspec_attest.formats.fsutil import atomic_write
from mlspec_attest.formats.jsonio import canonical, loads_strict
from mlspec_attest.formats.limits import MAX_JSON_BYTES, read_limited
from mlspec_attest.store.ledger import AttestationStore

JSONL_SUFFIX = ".intoto.jsonl"


def dumps_jsonl(envelopes: Iterable[Envelope]) -> bytes:
    """The ``.intoto.jsonl`` bytes of ``envelopes`` (one canonical JSON envelope a line)."""
    return b"".join(canonical(e.to_json()) + b"\n" for e in envelopes)


def write_jsonl(envelopes: Iterable[Envelope], path: Path) -> int:
    """Write ``envelopes`` to ``path`` atomically; return how many were written."""
    items = list(envelopes)
    atomic_write(path, dumps_jsonl(items))
    return len(items)


def parse_jsonl(data: bytes, *, what: str = "jsonl") -> list[Envelope]:
    """Parse ``.intoto.jsonl`` bytes; blank lines are skipped, anything else must be an envelope."""
    out: list[Envelope] = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        label = f"{what}: line {number}"
        doc = loads_strict(line, what=label)
        if is_bundle(doc):
            out.append(Bundle.from_json(doc, what=label).envelope)
        else:
            out.append(Envelope.from_json(doc, what=label))
    return out


def read_jsonl(path: Path) -> list[Envelope]:
    """Read an ``.intoto.jsonl`` file: every DSSE envelope in it, in order (none verified)."""
    data = read_limited(path, MAX_JSON_BYTES, what=str(path), kind="a JSON Lines file")
    return parse_jsonl(data, what=str(path))


class JsonlExport(Struct, frozen=True):
    """What :func:`export_jsonl` wrote: the file and the bundles it came from."""

    path: Path
    run_id: str
    sources: tuple[str, ...]


def export_jsonl(store: AttestationStore, out: Path, *, run_id: str | None = None) -> JsonlExport:
    """Write every stored stage envelope of one run to ``out`` as ``.intoto.jsonl``.

    Nothing is verified (the envelopes keep their signatures; consumers verify).
    An unreadable bundle stops the export rather than being silently left out.
    """
    run = store.resolve_run(run_id)
    envelopes: list[Envelope] = []
    sources: list[str] = []
    for stored in store.attestations(run):
        if stored.bundle is None:
            raise MalformedDocumentError(
                f"{stored.path}: {stored.error}",
                remedy="remove or re-sign the damaged attestation, then export again",
            )
        envelopes.append(stored.bundle.envelope)
        sources.append(stored.path.name)
    write_jsonl(envelopes, out)
    return JsonlExport(out, run, tuple(sources))
