"""The attestation store: signed stage bundles per run, manifests by content address.

Layout (docs/formats.md)::

    STORE/
      .lock                                    flock taken while sign picks a run
      current-run                              run id used when none is given
      runs/<run-id>/<stage>.<keyid8>.sigstore.json
      runs/<run-id>/<stage>.<keyid8>.<sha16>.sigstore.json   a further one, same stage and key
      blobs/sha256/<hex>                       content-addressed documents (manifests ...)

Every write is atomic (hidden temp file + fsync + link or rename). Attestations
and blobs are created, never replaced, so nothing already stored can be lost by
a later write, a concurrent one, a kill or a full disk. Readers skip hidden
files, which is all a killed writer can leave behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from msgspec import Struct

from mlspec_attest.errors import BadInputError, MlspecError, StoreError, UsageError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.fsutil import atomic_write, create_once, exclusive_lock
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.jsonio import canonical, load_file, loads_strict
from mlspec_attest.formats.limits import (
    MAX_BLOB_BYTES,
    MAX_BUNDLE_BYTES,
    MAX_RUN_MARKER_BYTES,
    read_limited,
)
from mlspec_attest.formats.stages import check_name, check_stage_name

DEFAULT_STORE = Path(".mlspec/attestations")
STORE_ENV = "MLSPEC_ATTEST_STORE"
MAX_RUN_ID = 128
RUN_ID_CHARS = "A-Za-z0-9_.:-"
"""What a run id may hold (a regular expression character class), starting with a letter or digit."""
RUN_ID_RE = re.compile(rf"^[A-Za-z0-9][{RUN_ID_CHARS}]{{0,{MAX_RUN_ID - 1}}}$")
BUNDLE_SUFFIX = ".sigstore.json"
LOCK_NAME = ".lock"
_RUN_ID_REMEDY = "use letters, digits and . _ : - (at most 128 characters)"


def default_store_path() -> Path:
    env = os.environ.get(STORE_ENV)
    return Path(env) if env else DEFAULT_STORE


def open_store(path: Path | None) -> AttestationStore:
    """The store at ``path``, else the environment's (``MLSPEC_ATTEST_STORE``) or the default."""
    return AttestationStore(path or default_store_path())


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus 48 random bits."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + os.urandom(6).hex()


def check_run_id(run_id: str) -> str:
    return check_name(run_id, "run id", RUN_ID_RE, _RUN_ID_REMEDY)


class StoredAttestation(Struct, frozen=True):
    """One bundle file from the store; ``error`` is set when it could not be parsed."""

    path: Path
    bundle: Bundle | None
    error: str | None = None

    @property
    def payload_digest(self) -> str | None:
        """``sha256:<hex>`` of the signed payload: how other records name this attestation."""
        if self.bundle is None:
            return None
        return "sha256:" + hashlib.sha256(self.bundle.envelope.payload).hexdigest()

    def claimed_stage(self) -> str | None:
        """The stage the payload names, read without trusting it (messages, predecessor records)."""
        if self.bundle is None:
            return None
        try:
            name = loads_strict(self.bundle.envelope.payload)["predicate"]["name"]
        except (MlspecError, KeyError, TypeError):
            return None
        return name if isinstance(name, str) else None


class AttestationStore:
    """Reads and writes one store directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # runs ---------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / check_run_id(run_id)

    def runs(self) -> list[str]:
        base = self.root / "runs"
        if not base.is_dir():
            return []
        # Only names a run id can have: hidden or stray entries are not runs.
        return sorted(p.name for p in base.iterdir() if RUN_ID_RE.fullmatch(p.name) and p.is_dir())

    def current_run(self) -> str | None:
        marker = self.root / "current-run"
        if not marker.exists():
            return None
        try:
            data = read_limited(
                marker, MAX_RUN_MARKER_BYTES, what=str(marker), kind="the current-run marker"
            )
        except BadInputError as exc:
            raise _marker_error(exc.message) from exc
        try:
            value = data.decode("ascii").strip()
        except UnicodeDecodeError:
            raise _marker_error(f"{marker}: not a run id (not ASCII)") from None
        return check_run_id(value) if value else None

    def set_current_run(self, run_id: str) -> None:
        atomic_write(self.root / "current-run", (check_run_id(run_id) + "\n").encode())

    def claim_run(self, *, new_run: bool = False) -> str:
        """The run a ``sign`` without a run id joins: the current run, else a fresh one.

        Reading ``current-run`` and recording a fresh id happen under the store
        lock, so stages signed in parallel all join the one run the first of them
        created instead of each starting its own. ``new_run`` always starts one.
        """
        with exclusive_lock(self.root / LOCK_NAME):
            current = None if new_run else self.current_run()
            if current:
                return current
            fresh = new_run_id()
            self.set_current_run(fresh)
            return fresh

    def resolve_run(self, run_id: str | None) -> str:
        """The run to verify: the given one, else the store's only run.

        The ``current-run`` marker is deliberately not trusted here: anyone who can
        write the store could point it at an older, fully valid run (a downgrade).
        """
        runs = self.runs()
        if run_id:
            check_run_id(run_id)
            if run_id not in runs:
                raise BadInputError(
                    f"store {self.root} has no run {run_id!r}",
                    remedy=f"check {named('run_id_only')} and {named('store')}"
                    + (f" (runs: {', '.join(runs[-5:])})" if runs else ""),
                )
            return run_id
        if not runs:
            raise BadInputError(
                f"store {self.root} holds no attestations",
                remedy=f"pass {named('store')} pointing at the pipeline's store, or sign the stages first",
            )
        if len(runs) == 1:
            return runs[0]
        raise UsageError(
            f"store {self.root} holds {len(runs)} runs; say which one to verify",
            remedy=f"pass {named('run_id_only')} (runs: " + ", ".join(runs[-5:]) + ")",
        )

    # attestations -------------------------------------------------------
    def add(self, run_id: str, stage: str, keyid: str, bundle: Bundle) -> Path:
        """Store ``bundle`` under a new name and return its path; never replace a file.

        The first attestation of a stage by a key is ``<stage>.<keyid8>.sigstore.json``;
        a further one (signed again, or by a parallel process) adds the first 16
        hex digits of its own sha256, so neither is lost and the verifier sees
        both. Storing the very same bytes again is a no-op.
        """
        check_stage_name(stage)
        stem = self.run_dir(run_id) / f"{stage}.{keyid[:8]}"
        return _store_once(stem, bundle, f"the attestation of stage {stage!r}")

    def attestations(self, run_id: str) -> Iterator[StoredAttestation]:
        directory = self.run_dir(run_id)
        if not directory.is_dir():
            raise BadInputError(f"store {self.root} has no run {run_id!r}")
        for path in sorted(directory.iterdir()):
            if path.name.startswith("."):
                continue  # a write in progress (fsutil writes hidden temporaries)
            if not path.is_file():
                # Never silently skipped: whatever is in a run is evidence or a failure.
                yield StoredAttestation(
                    path,
                    None,
                    f"{path.name}: not a regular file (a directory, FIFO, device or dangling link)",
                )
                continue
            try:
                doc = load_file(path, max_bytes=MAX_BUNDLE_BYTES, kind="a Sigstore bundle")
                bundle = Bundle.from_json(doc, what=path.name)
            except MlspecError as exc:
                yield StoredAttestation(path, None, exc.message)
                continue
            yield StoredAttestation(path, bundle)

    # verification summaries --------------------------------------------
    def add_summary(self, digest: str, bundle: Bundle) -> Path:
        """Keep a signed verification summary as ``summaries/<digest>.sigstore.json``.

        ``digest`` is the sha256 hex of its payload. The same payload signed again
        (another verifier key) is kept beside it, never replacing the first.
        """
        stem = self.summary_file(digest).with_name(digest)
        return _store_once(stem, bundle, f"the verification summary {digest}")

    def summary_file(self, digest: str) -> Path:
        """Where the summary whose payload has this sha256 is stored (it may not be)."""
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise UsageError(f"a summary digest must be a lowercase hex sha256, not {digest!r}")
        return self.root / "summaries" / f"{digest}{BUNDLE_SUFFIX}"

    def summary_path(self, digest: str) -> Path | None:
        """The stored summary whose payload has this sha256, if there is one."""
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            return None
        path = self.summary_file(digest)
        return path if path.is_file() else None

    # blobs --------------------------------------------------------------
    def put_blob(self, data: bytes) -> str:
        """Store ``data`` under its sha256 (write-once) and return the hex digest."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.root / "blobs" / "sha256" / digest
        if self.get_blob(digest) is not None:
            return digest
        # A concurrent writer of the same bytes may win the race: that is success.
        if not create_once(path, data) and self.get_blob(digest) is None:
            atomic_write(path, data)  # a corrupted copy (bytes not matching its name): repair
        return digest

    def get_blob(self, digest: str, *, limit: int = MAX_BLOB_BYTES) -> bytes | None:
        """The blob with this sha256, verified, or None if absent, corrupted, not a
        regular file, or larger than ``limit`` bytes (nothing unbounded is ever read)."""
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            return None
        path = self.root / "blobs" / "sha256" / digest
        try:
            if not stat.S_ISREG(path.stat().st_mode):
                return None
            data = read_limited(path, limit, what=f"blob {digest}", kind="a stored blob")
        except (OSError, BadInputError):
            return None
        return data if hashlib.sha256(data).hexdigest() == digest else None


def _store_once(stem: Path, bundle: Bundle, what: str) -> Path:
    """``bundle`` stored as ``<stem>.sigstore.json``, never replacing a file: when that
    name holds other bytes, the name gains the first 16 hex digits of the bundle's own
    sha256 (then all 64). Storing the very same bytes again is a no-op."""
    data = canonical(bundle.to_json())
    digest = hashlib.sha256(data).hexdigest()
    for tail in ("", f".{digest[:16]}", f".{digest}"):
        path = stem.with_name(stem.name + tail + BUNDLE_SUFFIX)
        if create_once(path, data) or _holds(path, data):
            return path
    raise StoreError(f"cannot store {what}: {path} is taken")


def _marker_error(message: str) -> UsageError:
    return UsageError(
        message,
        remedy=f"pass {named('run_id')}, or remove the store's current-run file",
    )


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` already holds exactly ``data`` (storing it again is then a no-op).

    Read as any store file is: bounded (no more than ``data`` plus one byte) and without
    blocking, so a FIFO or a huge file planted at the path is simply not a match.
    """
    try:
        return read_limited(path, len(data), what=str(path), kind="a stored bundle") == data
    except MlspecError:
        return False
