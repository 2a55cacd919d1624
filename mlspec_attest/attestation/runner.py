"""Run a stage's command, passing its output through while hashing it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from typing import IO

from msgspec import Struct

from mlspec_attest.errors import BadInputError


class CommandResult(Struct, frozen=True):
    argv: tuple[str, ...]
    returncode: int
    stdout_sha256: str
    stderr_sha256: str


def _pump(source: IO[bytes], sink: IO[bytes] | None, digest: hashlib._Hash) -> None:
    for chunk in iter(lambda: source.read1(65536), b""):  # type: ignore[attr-defined]
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)
            sink.flush()


def run_command(
    argv: list[str], *, echo: bool = True, stdout_to_stderr: bool = False
) -> CommandResult:
    """Run ``argv`` (no shell), tee its stdout/stderr, and digest both streams.

    ``stdout_to_stderr`` keeps our own stdout clean for one JSON document.
    """
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError as exc:
        raise BadInputError(f"stage command not found: {argv[0]!r}") from exc
    except PermissionError as exc:
        raise BadInputError(f"stage command not executable: {argv[0]!r}") from exc
    out_digest, err_digest = hashlib.sha256(), hashlib.sha256()
    assert proc.stdout is not None and proc.stderr is not None
    threads = [
        threading.Thread(
            target=_pump,
            args=(
                proc.stdout,
                (sys.stderr.buffer if stdout_to_stderr else sys.stdout.buffer) if echo else None,
                out_digest,
            ),
        ),
        threading.Thread(
            target=_pump, args=(proc.stderr, sys.stderr.buffer if echo else None, err_digest)
        ),
    ]
    for t in threads:
        t.start()
    returncode = proc.wait()
    for t in threads:
        t.join()
    return CommandResult(tuple(argv), returncode, out_digest.hexdigest(), err_digest.hexdigest())
