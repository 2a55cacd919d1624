"""A log rolled back (its newer checkpoints removed, its records and lines cut back to an
older checkpoint, or rewritten after it) verifies on its own: nothing in the directory
remembers the newer checkpoints. An auditor who kept one (a witness's copy, an earlier
audit's) names it with ``known``/``--known-checkpoint`` and the rollback is found."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlspec_attest.log.audit import verify_log
from mlspec_attest.log.findings import Kind
from mlspec_attest.signing.keys import LocalKeySigner, write_key_pair
from tests.cli.conftest import Cli
from tests.log import tamper
from tests.log.conftest import ORIGIN, WriteLog


def rolled_back(directory: Path, kept: Path, to: int) -> None:
    """Keep the newest checkpoint at ``kept``, then roll the log back to ``to`` records."""
    shutil.copy(directory / "checkpoint", kept)
    for numbered in (directory / "checkpoints").iterdir():
        if int(numbered.name.split(".")[0]) > to:
            numbered.unlink()
    shutil.copy(directory / "checkpoints" / f"{to}.checkpoint", directory / "checkpoint")
    tamper.write_records(directory, tamper.raw_records(directory)[:to])
    tamper.write_lines(directory, tamper.lines(directory)[:to])


def test_a_rollback_passes_alone_and_is_found_with_a_kept_checkpoint(
    tmp_path: Path, write_log: WriteLog, signer: LocalKeySigner
) -> None:
    directory = tmp_path / "log"
    write_log(directory, 20, checkpoint_every=5)
    kept = tmp_path / "witnessed.checkpoint"
    rolled_back(directory, kept, 10)
    alone = verify_log(directory, signer.public_key, origin=ORIGIN)
    assert (alone.ok, alone.records, alone.findings) == (True, 10, ())  # nothing remembers 20
    audit = verify_log(directory, signer.public_key, origin=ORIGIN, known=[kept])
    assert not audit.ok
    assert [f.kind for f in audit.problems] == [Kind.TRUNCATED_SIGNED]


def test_a_kept_checkpoint_of_an_honest_log_changes_nothing_and_a_foreign_one_is_refused(
    tmp_path: Path, write_log: WriteLog, signer: LocalKeySigner, cli: Cli
) -> None:
    directory = tmp_path / "log"
    write_log(directory, 12, checkpoint_every=5)
    older = tmp_path / "seen-at-10.checkpoint"
    shutil.copy(directory / "checkpoints" / "10.checkpoint", older)
    audit = verify_log(directory, signer.public_key, origin=ORIGIN, known=[older])
    assert (audit.ok, audit.records, audit.signed) == (True, 12, 12)
    other = tmp_path / "other"
    write_log(other, 3)
    forged = tmp_path / "3.checkpoint"
    shutil.copy(other / "checkpoint", forged)
    (forged).write_bytes((forged).read_bytes().replace(b"\n3\n", b"\n13\n", 1))
    audit = verify_log(directory, signer.public_key, origin=ORIGIN, known=[forged])
    assert [f.kind for f in audit.problems] == [Kind.BAD_CHECKPOINT]  # not signed as it reads
    _, public = write_key_pair(signer, tmp_path / "key")
    result = cli(
        "log", "verify", str(directory), "--key", str(public), "--known-checkpoint", str(older)
    )
    assert result.code == 0, result.err
