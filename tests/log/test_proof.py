"""Inclusion and consistency proofs: made from the log, checked offline with the key alone."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.errors import BadInputError, ExitCode, MalformedDocumentError, UsageError
from mlspec_attest.log.files import LATEST
from mlspec_attest.log.proof import (
    ProofError,
    consistency_proof,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key
from tests.log import tamper
from tests.log.conftest import ORIGIN, WriteLog


@pytest.fixture
def log(tmp_path: Path, write_log: WriteLog) -> Path:
    directory = tmp_path / "log"
    write_log(directory, 13, checkpoint_every=4)
    return directory


@pytest.mark.parametrize("i", [0, 1, 6, 12])
def test_inclusion_proof_round_trip(log: Path, signer: LocalKeySigner, i: int) -> None:
    proof = inclusion_proof(log, f"req-{i:04d}", public_key=signer.public_key)
    assert proof.index == i and proof.checkpoint.size == 13 and proof.record.seq == i
    doc = proof.to_json()
    checked = verify_inclusion(doc, signer.public_key)
    assert checked.record == proof.record and checked.path == proof.path
    assert verify_inclusion(doc, signer.public_key, key_name=ORIGIN, origin=ORIGIN).index == i


def test_unverified_proof_is_still_checkable(log: Path, signer: LocalKeySigner) -> None:
    doc = inclusion_proof(log, "req-0003").to_json()
    assert verify_inclusion(doc, signer.public_key).index == 3


def _mutations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, edit in [
        (
            "path bit",
            lambda d: d["auditPath"].__setitem__(
                0, ("0" if d["auditPath"][0][0] != "0" else "1") + d["auditPath"][0][1:]
            ),
        ),
        ("index", lambda d: d.__setitem__("leafIndex", d["leafIndex"] + 1)),
        ("size", lambda d: d.__setitem__("treeSize", d["treeSize"] - 1)),
        ("record field", lambda d: d["record"].__setitem__("status", 500)),
        ("request id", lambda d: d.__setitem__("requestId", "req-9999")),
        ("path dropped", lambda d: d["auditPath"].pop()),
        (
            "checkpoint",
            lambda d: d.__setitem__("checkpoint", d["checkpoint"].replace("\n13\n", "\n12\n")),
        ),
        ("cbor", lambda d: d.__setitem__("recordCbor", d["recordCbor"][:-8] + "AAAAAAA=")),
    ]:
        bad = copy.deepcopy(doc)
        edit(bad)
        out.append((name, bad))
    return out


def test_any_change_to_a_proof_is_refused(log: Path, signer: LocalKeySigner) -> None:
    doc = inclusion_proof(log, "req-0006").to_json()
    for name, bad in _mutations(doc):
        with pytest.raises((ProofError, MalformedDocumentError)):
            verify_inclusion(bad, signer.public_key)
            pytest.fail(name)
    with pytest.raises(ProofError, match="no signature by key"):
        verify_inclusion(doc, generate_key(KeyType.ED25519).public_key, key_name=ORIGIN)
    with pytest.raises(MalformedDocumentError, match="not a"):
        verify_inclusion({"schemaVersion": "x"}, signer.public_key)


def test_proving_a_missing_or_unsigned_request(
    tmp_path: Path, write_log: WriteLog, signer: LocalKeySigner
) -> None:
    directory = tmp_path / "log"
    write_log(directory, 7, checkpoint_every=5, close=False)
    with pytest.raises(BadInputError, match="no record of request 'nope'"):
        inclusion_proof(directory, "nope")
    with pytest.raises(ProofError, match="after the latest checkpoint"):
        inclusion_proof(directory, "req-0006", public_key=signer.public_key)
    assert inclusion_proof(directory, "req-0004").index == 4


def test_proof_refused_when_the_log_does_not_match_its_checkpoint(
    log: Path, signer: LocalKeySigner
) -> None:
    tamper.replace_in_record(log, 2, b"python-httpx", b"Python-httpx")
    with pytest.raises(ProofError, match="do not give the root"):
        inclusion_proof(log, "req-0005", public_key=signer.public_key)


def test_a_repeated_request_id_is_refused_unless_chosen_by_seq(
    tmp_path: Path, signer: LocalKeySigner
) -> None:
    from mlspec_attest.log.writer import InferenceLog
    from tests.log.conftest import request

    with InferenceLog.open(tmp_path / "log", signer, origin=ORIGIN, checkpoint_interval_s=0) as w:
        for i in range(4):
            w.append(**request(i, request_id="same"))
    # ids are the clients' (X-Request-Id): an earlier request may reuse a victim's id
    with pytest.raises(UsageError, match=r"names 4 records \(seq 0, 1, 2, 3\)") as info:
        inclusion_proof(tmp_path / "log", "same")
    assert info.value.exit_code == ExitCode.USAGE
    proof = inclusion_proof(tmp_path / "log", "same", seq=2, public_key=signer.public_key)
    assert proof.index == 2 and verify_inclusion(proof.to_json(), signer.public_key).record.seq == 2


def test_consistency_proofs(log: Path, signer: LocalKeySigner) -> None:
    for old, new in [(0, 4), (4, 8), (4, 13), (8, 12), (12, None), (13, None)]:
        proof = consistency_proof(log, old, new, public_key=signer.public_key)
        doc = proof.to_json()
        checked = verify_consistency(doc, signer.public_key)
        assert (checked.old.size, checked.new.size) == (old, new or 13)
    doc = consistency_proof(log, 4, 12).to_json()
    bad = copy.deepcopy(doc)
    bad["consistencyPath"][0] = "00" * 32
    with pytest.raises(ProofError, match="two histories"):
        verify_consistency(bad, signer.public_key)
    swapped = {**doc, "oldCheckpoint": doc["newCheckpoint"], "newCheckpoint": doc["oldCheckpoint"]}
    with pytest.raises(ProofError):
        verify_consistency(swapped, signer.public_key)
    with pytest.raises(BadInputError, match="file not found"):
        consistency_proof(log, 5, 12)


def test_a_forged_latest_checkpoint_is_refused(log: Path, signer: LocalKeySigner) -> None:
    (log / LATEST).write_text((log / LATEST).read_text().replace("\n13\n", "\n14\n"))
    with pytest.raises(Exception, match="does not verify"):
        inclusion_proof(log, "req-0001", public_key=signer.public_key)
