"""The ``--baseline`` attestation (verify/baseline.py): each refusal as the whole record.

A baseline is an evaluate attestation of another run, signed for real; each test edits
and re-signs it (or signs it with another key) and reads it with the verifier's loader,
asserting check, stage, message, expected, found, remedy and source of every failure,
and the note and metrics of a baseline that is taken.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.jsonio import canonical, load_file
from mlspec_attest.policy import load_signed_policy
from mlspec_attest.verify.accepted import Baseline
from mlspec_attest.verify.baseline import BaselineLoader
from mlspec_attest.verify.report import Check, Failure, VerificationReport
from mlspec_attest.verify.signers import SignerLookup

from .cli.conftest import Cli, cli
from .mlpipeline import MLPipeline
from .sigstore.instance import SigstoreInstance, sigstore_instance, sigstore_instance_factory
from .sigstore.test_keyless import Workspace, make_workspace
from .support import KeyPair, Pipeline
from .test_mlchecks_failures import Statement, mlspec, resign
from .test_verify_failures_admission import SHARED_IDENTITY_POLICY

# Fixtures of the keyless cases: the in-process CLI and the loopback Sigstore instance.
__all__ = ["cli", "sigstore_instance", "sigstore_instance_factory"]

NOT_SIGNED = "baseline attestation is not signed by a functionary of its stage"
NOT_SIGNED_REMEDY = "pass the evaluate/test attestation of the baseline model from a verified run"
REFUSED_EXPECTED = (
    "the evaluate/test attestation of the baseline model from an earlier, verified run"
)
REFUSED_REMEDY = (
    "pass baseline with the attestation of the same stage from the run "
    "that produced the model in production"
)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> MLPipeline:
    """An ML policy that requires policy digests (no stage signed: a baseline needs none)."""
    return MLPipeline(tmp_path_factory.mktemp("baseline-strict"), keys)


@pytest.fixture(scope="module")
def lenient(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> MLPipeline:
    return MLPipeline(tmp_path_factory.mktemp("baseline-lenient"), keys, require_digest=False)


def _load(ml: MLPipeline, path: Path) -> tuple[Baseline | None, VerificationReport]:
    signed = load_signed_policy(ml.signed_policy_path)
    report = VerificationReport(signed.policy.name, signed.digest, ml.run_id, "now")
    loader = BaselineLoader(SignerLookup(signed.policy), ml.run_id, report)
    return loader.load(path), report


def _baseline(ml: MLPipeline, tmp_path: Path, signer: KeyPair | None = None) -> Path:
    made = ml.baseline_bundle({"metrics": {"mae": 48.5}}, signer=signer)
    path = tmp_path / "baseline.sigstore.json"
    path.write_bytes(made.read_bytes())
    made.unlink()
    return path


def test_a_baseline_is_taken_with_its_metrics_and_a_note(
    strict: MLPipeline, tmp_path: Path
) -> None:
    path = _baseline(strict, tmp_path)
    baseline, report = _load(strict, path)
    assert report.failures == []
    assert baseline == Baseline("evaluate", "baseline-run", {"mae": 48.5})
    assert report.notes == [f"baseline: evaluate of run baseline-run ({path})"]


def test_a_bound_baseline_is_taken_when_the_policy_does_not_require_binding(
    lenient: MLPipeline, tmp_path: Path
) -> None:
    path = _baseline(lenient, tmp_path)
    baseline, report = _load(lenient, path)
    assert report.failures == []
    assert baseline is not None and baseline.run_id == "baseline-run"


def test_an_unbound_baseline_is_refused_even_when_the_policy_does_not_require_binding(
    lenient: MLPipeline, tmp_path: Path
) -> None:
    """Stages may go unbound under this policy; a baseline may not: bound to no policy, it
    could come from any pipeline the stage's functionary ever signed for (finding 2)."""
    path = _baseline(lenient, tmp_path)
    resign(path, lenient.key("evaluator"), lambda s: mlspec(s).pop("policyDigest", None))
    baseline, report = _load(lenient, path)
    assert baseline is None
    assert report.failures == [
        _refused(
            path,
            "it is not bound to a policy; a baseline must be bound to the policy being "
            "verified (or be named by the policy's rollback.summary)",
        )
    ]


def test_an_unreadable_baseline(strict: MLPipeline, tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text("{not json")
    baseline, report = _load(strict, path)
    assert baseline is None
    [failure] = report.failures
    assert failure.message.startswith(f"baseline unreadable: {path}")
    assert failure == Failure(Check.BASELINE, None, failure.message, source=str(path))


def test_a_baseline_whose_payload_is_no_stage_statement(strict: MLPipeline, tmp_path: Path) -> None:
    path = _baseline(strict, tmp_path)
    resign(path, strict.key("evaluator"), lambda s: s["predicate"]["byproducts"].clear())
    baseline, report = _load(strict, path)
    assert baseline is None
    [failure] = report.failures
    assert failure.message.startswith(f"baseline unreadable: {path}: ")
    assert failure == Failure(Check.BASELINE, None, failure.message, source=str(path))


@pytest.mark.parametrize("signer", ["intruder", "ml-engineer"])
def test_a_baseline_not_signed_by_a_functionary_of_its_stage(
    strict: MLPipeline, tmp_path: Path, signer: str
) -> None:
    key = strict.keys["intruder"] if signer == "intruder" else strict.key(signer)
    path = _baseline(strict, tmp_path, key)
    baseline, report = _load(strict, path)
    assert baseline is None
    assert report.failures == [
        Failure(
            Check.BASELINE,
            "evaluate",
            NOT_SIGNED,
            expected="a signature by evaluator",
            found="none valid",
            remedy=NOT_SIGNED_REMEDY,
            source=str(path),
        )
    ]
    assert report.notes == []


def test_a_baseline_of_a_stage_the_policy_does_not_have(strict: MLPipeline, tmp_path: Path) -> None:
    path = _baseline(strict, tmp_path)

    def rename(statement: Statement) -> None:
        statement["predicate"]["name"] = "notes"
        mlspec(statement)["stage"] = "notes"

    resign(path, strict.key("evaluator"), rename)
    baseline, report = _load(strict, path)
    assert baseline is None
    assert report.failures == [
        Failure(
            Check.BASELINE,
            "notes",
            NOT_SIGNED,
            expected="a signature by a functionary of the policy",
            found="none valid",
            remedy=NOT_SIGNED_REMEDY,
            source=str(path),
        )
    ]


def test_a_keyless_baseline_names_why_it_does_not_verify(
    strict: MLPipeline, tmp_path: Path
) -> None:
    path = _baseline(strict, tmp_path)
    doc: dict[str, Any] = Bundle.from_json(load_file(path)).to_json()
    doc["verificationMaterial"] = {"certificate": {"rawBytes": "AAAA"}, "tlogEntries": []}
    path.write_bytes(canonical(doc))
    baseline, report = _load(strict, path)
    assert baseline is None
    assert report.failures == [
        Failure(
            Check.BASELINE,
            "evaluate",
            NOT_SIGNED,
            expected="a signature by evaluator",
            found="signed keyless (a Sigstore certificate), but the policy names no Sigstore "
            "identities",
            remedy=NOT_SIGNED_REMEDY,
            source=str(path),
        )
    ]


def _refused(
    path: Path, problem: str, stage: str = "evaluate", run: str = "baseline-run"
) -> Failure:
    return Failure(
        Check.BASELINE,
        stage,
        f"baseline refused: {problem}",
        expected=REFUSED_EXPECTED,
        found=f"{stage} of run {run}",
        remedy=REFUSED_REMEDY,
        source=str(path),
    )


def test_every_reason_a_signed_baseline_cannot_stand_is_reported(
    strict: MLPipeline, tmp_path: Path
) -> None:
    path = _baseline(strict, tmp_path)

    def everything(statement: Statement) -> None:
        meta = mlspec(statement)
        meta["kind"] = "test"
        meta["runId"] = strict.run_id
        del meta["policyDigest"]

    resign(path, strict.key("evaluator"), everything, payload_type="text/plain")
    baseline, report = _load(strict, path)
    assert baseline is None
    assert report.failures == [
        _refused(path, problem, run=strict.run_id)
        for problem in (
            "payloadType 'text/plain' is not in-toto",
            "it is a 'test' attestation; stage 'evaluate' is 'evaluate'",
            "it comes from the run being verified (a run is no baseline for itself)",
            "it is not bound to a policy, and this policy requires that",
        )
    ]
    assert report.notes == []


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda s: mlspec(s).update(kind="test"),
            "it is a 'test' attestation; stage 'evaluate' is 'evaluate'",
        ),
        (
            lambda s: mlspec(s).pop("policyDigest"),
            "it is not bound to a policy, and this policy requires that",
        ),
    ],
)
def test_one_reason_alone(strict: MLPipeline, tmp_path: Path, edit: Any, problem: str) -> None:
    path = _baseline(strict, tmp_path)
    resign(path, strict.key("evaluator"), edit)
    baseline, report = _load(strict, path)
    assert baseline is None
    assert report.failures == [_refused(path, problem)]


def test_a_baseline_that_is_json_but_no_bundle_names_its_file(
    strict: MLPipeline, tmp_path: Path
) -> None:
    path = tmp_path / "baseline.json"
    path.write_text("[]")
    baseline, report = _load(strict, path)
    assert baseline is None
    assert report.failures == [
        Failure(
            Check.BASELINE,
            None,
            f"baseline unreadable: {path}: expected a JSON object",
            source=str(path),
        )
    ]


# -- who signed it: the same lookup as for stage attestations ------------------------------
def test_a_baseline_signed_with_a_shared_key_is_the_allowed_functionarys(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """Under a policy whose first functionary holds the data engineer's key but may sign no
    stage, a split attestation of another run signed with that key is a baseline."""
    p = Pipeline(tmp_path / "p", keys)
    text = p.policy_text(expires="2099-01-01T00:00:00Z").replace(
        "functionaries:\n  data-engineer:",
        "functionaries:\n  archivist:\n    key: keys/data-engineer.pub\n  data-engineer:",
        1,
    )
    p.policy_yaml.write_text(text)
    p.sign_policy()
    p.sign("ingest", run_id="run-old")
    p.sign("split", run_id="run-old")
    path = p.bundle_path("split", run_id="run-old")
    signed = load_signed_policy(p.signed_policy_path)
    report = VerificationReport(signed.policy.name, signed.digest, "run-new", "now")
    baseline = BaselineLoader(SignerLookup(signed.policy), "run-new", report).load(path)
    assert report.failures == []
    assert baseline == Baseline("split", "run-old", {})


def _keyless_load(ws: Workspace, path: Path) -> tuple[Baseline | None, list[Failure]]:
    signed = load_signed_policy(ws.signed_policy)
    report = VerificationReport(signed.policy.name, signed.digest, "run-2", "now")
    return BaselineLoader(SignerLookup(signed.policy), "run-2", report).load(path), report.failures


def test_keyless_baselines(
    tmp_path: Path, sigstore_instance: SigstoreInstance, keys: dict[str, KeyPair], cli: Cli
) -> None:
    root = tmp_path / "pipeline"
    (root / "data").mkdir(parents=True)
    (root / "data/raw.csv").write_text("x,y\n1,2\n3,4\n")
    (root / "model.bin").write_bytes(b"\x00weights\x01")
    ws = make_workspace(root, SHARED_IDENTITY_POLICY, sigstore_instance, keys, cli)
    runs = ws.store / "runs" / "run-1"

    # alice is the first functionary (auditor, no stage) and data-engineer: ingest is hers
    ws.sign("ingest", "alice@example.com", products=("data/raw.csv",))
    [ingest] = runs.glob("ingest.*.sigstore.json")
    baseline, failures = _keyless_load(ws, ingest)
    assert failures == []
    assert baseline == Baseline("ingest", "run-1", {})

    # a verified identity the train stage does not allow
    ws.sign("train", "alice@example.com", materials=("data/raw.csv",), products=("model.bin",))
    [train] = runs.glob("train.*.sigstore.json")
    baseline, failures = _keyless_load(ws, train)
    assert baseline is None
    assert failures == [
        Failure(
            Check.BASELINE,
            "train",
            NOT_SIGNED,
            expected="a signature by trainer",
            found="none valid",
            remedy=NOT_SIGNED_REMEDY,
            source=str(train),
        )
    ]

    # a certificate that is none: the reason names the file
    doc = json.loads(train.read_bytes())
    doc["verificationMaterial"]["certificate"]["rawBytes"] = "AAAA"
    train.write_bytes(canonical(doc))
    baseline, failures = _keyless_load(ws, train)
    assert baseline is None
    [failure] = failures
    assert failure.found.startswith(f"{train}: ")
    assert failure == Failure(
        Check.BASELINE,
        "train",
        NOT_SIGNED,
        expected="a signature by trainer",
        found=failure.found,
        remedy=NOT_SIGNED_REMEDY,
        source=str(train),
    )
