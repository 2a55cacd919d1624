"""Rollback: only to a target whose own summary passes the gate, and the one the policy names."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mlspec_attest.errors import GateDeniedError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.vsa import Result
from mlspec_attest.serve.rollback import check_rollback
from mlspec_attest.serve.vsa_check import GateCheck

from .test_gate_support import (
    make_model_dir,
    stranger,
    summary_for,
    trust,
    write_signed,
)


def _digest(vsa: Path) -> str:
    return hashlib.sha256(
        Bundle.from_json(json.loads(vsa.read_bytes())).envelope.payload
    ).hexdigest()


def _checks(exc: pytest.ExceptionInfo[GateDeniedError]) -> list[str]:
    return [r.check.value for r in exc.value.reasons]  # type: ignore[attr-defined]


@pytest.fixture
def target(tmp_path: Path) -> tuple[Path, Path]:
    model = make_model_dir(tmp_path / "release-0.9.3")
    return model, write_signed(tmp_path / "old.vsa.json", summary_for(model))


TRUST = trust()


def test_a_passing_target_is_ready(target: tuple[Path, Path]) -> None:
    model, vsa = target
    ready = check_rollback(vsa, model, TRUST, pinned=None)
    assert ready.checked.digest == _digest(vsa)
    assert ready.to_json()["summary"] == f"sha256:{_digest(vsa)}"
    assert ready.to_json()["files"] == 3


def test_the_pinned_target_passes_and_another_is_refused(
    target: tuple[Path, Path], tmp_path: Path
) -> None:
    model, vsa = target
    assert check_rollback(vsa, model, TRUST, pinned=_digest(vsa)).checked.digest == _digest(vsa)
    with pytest.raises(GateDeniedError) as info:
        check_rollback(vsa, model, TRUST, pinned="0" * 64)
    assert _checks(info) == [GateCheck.ROLLBACK_TARGET.value]
    assert info.value.reasons[0].expected == "sha256:" + "0" * 64  # type: ignore[attr-defined]


def test_a_failed_target_is_refused(tmp_path: Path) -> None:
    model = make_model_dir(tmp_path / "bad")
    vsa = write_signed(tmp_path / "failed.vsa.json", summary_for(model, result=Result.FAILED))
    with pytest.raises(GateDeniedError) as info:
        check_rollback(vsa, model, TRUST, pinned=_digest(vsa))
    assert GateCheck.RESULT.value in _checks(info)


def test_a_target_signed_by_a_stranger_is_refused(tmp_path: Path) -> None:
    model = make_model_dir(tmp_path / "m")
    vsa = write_signed(tmp_path / "forged.vsa.json", summary_for(model), stranger())
    with pytest.raises(GateDeniedError) as info:
        check_rollback(vsa, model, TRUST, pinned=None)
    assert GateCheck.SIGNATURE.value in _checks(info)


def test_a_target_whose_files_changed_is_refused(target: tuple[Path, Path]) -> None:
    model, vsa = target
    (model / "docs" / "README.md").write_text("changed\n")
    with pytest.raises(GateDeniedError) as info:
        check_rollback(vsa, model, TRUST, pinned=_digest(vsa))
    assert GateCheck.MODEL_DIGEST.value in _checks(info)
