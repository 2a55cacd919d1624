"""Checkpoints cost the auditor one verification each at most: a note carrying the trusted
key's signature line many times is refused unverified, and many checkpoint files of one
content (links to one note) are verified once."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlspec_attest.errors import SignatureVerificationError
from mlspec_attest.log import checkpoint as checkpoint_module
from mlspec_attest.log.audit import log_key, verify_log
from mlspec_attest.log.findings import Kind
from mlspec_attest.log.note import open_note
from mlspec_attest.signing.keys import LocalKeySigner
from tests.log.conftest import ORIGIN, WriteLog


def test_a_note_signed_twice_by_the_trusted_key_is_refused(
    tmp_path: Path, write_log: WriteLog, signer: LocalKeySigner
) -> None:
    directory = tmp_path / "log"
    write_log(directory, 3)
    text = (directory / "checkpoint").read_bytes()
    key = log_key(directory, signer.public_key, None, ORIGIN)
    assert open_note(text, key).text  # once: verified
    signature_line = text.rstrip(b"\n").rsplit(b"\n", 1)[1] + b"\n"
    with pytest.raises(SignatureVerificationError, match="2 signatures by key"):
        open_note(text + signature_line, key)


def test_many_links_to_one_checkpoint_cost_one_verification(
    tmp_path: Path, write_log: WriteLog, signer: LocalKeySigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "log"
    write_log(directory, 3)
    for n in range(1, 201):  # misnamed links: each a bad-checkpoint finding, all one content
        (directory / "checkpoints" / f"{1000 + n}.checkpoint").symlink_to(directory / "checkpoint")
    calls: list[int] = []
    real = checkpoint_module.verify_checkpoint

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("mlspec_attest.log.files.verify_checkpoint", counted)
    audit = verify_log(directory, signer.public_key, origin=ORIGIN)
    assert not audit.ok and {f.kind for f in audit.problems} == {Kind.BAD_CHECKPOINT}
    assert len(calls) <= 3  # size 0, size 3 and the links' one content, not 200 more
