"""The ML checks' refusals that need a validly signed but wrong record.

``sign`` never writes these records wrong, so each case signs the stage for real, edits
its statement and signs it again with the same functionary's key: the signature holds,
the claim is what the case needs. Later stages are signed after the edit, so they
record the edited attestation as their predecessor and nothing but the case's check
fires.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.verify.report import Check

from .mlpipeline import (
    CHANGE_CRITERION,
    OBJECTIVES_YAML,
    STAGE_SIGNERS,
    MakeML,
    MLPipeline,
    only,
)
from .support import KeyPair, checks_of

Statement = dict[str, Any]


def resign(
    path: Path,
    signer: KeyPair,
    mutate: Callable[[Statement], None],
    *,
    payload_type: str = INTOTO_PAYLOAD_TYPE,
) -> None:
    """Edit the statement of a stored bundle and sign it again with ``signer``."""
    doc = json.loads(path.read_bytes())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    mutate(statement)
    envelope = Envelope.sign(canonical(statement), payload_type, [signer.signer], keyid_hint=False)
    path.write_bytes(canonical(Bundle.for_public_key(envelope, signer.keyid).to_json()))


def mlspec(statement: Statement) -> dict[str, Any]:
    meta: dict[str, Any] = statement["predicate"]["byproducts"]["mlspec"]
    return meta


def run_editing(ml: MLPipeline, stage: str, mutate: Callable[[Statement], None]) -> MLPipeline:
    """The whole pipeline, with ``stage``'s statement edited (and re-signed) right after it."""
    for name, functionary in STAGE_SIGNERS.items():
        signed = getattr(ml, f"sign_{name}")()
        if name == stage:
            resign(signed.path, ml.key(functionary), mutate)
    return ml


# -- objectives ------------------------------------------------------------------------
def test_an_objectives_stage_without_its_record_is_refused(ml: MLPipeline) -> None:
    def drop(statement: Statement) -> None:
        del mlspec(statement)["details"]["objectives"]

    [failure] = only(run_editing(ml, "objectives", drop).verify(), Check.OBJECTIVES_DOCUMENT)
    assert failure.stage == "objectives"
    assert failure.message == "the objectives attestation records no objectives document"
    assert failure.expected == "details.objectives with the document's sha256"


def test_an_objectives_record_of_other_bytes_than_the_product_is_refused(
    ml: MLPipeline,
) -> None:
    def other(statement: Statement) -> None:
        mlspec(statement)["details"]["objectives"]["sha256"] = "ab" * 32

    report = run_editing(ml, "objectives", other).verify()
    [failure] = only(report, Check.OBJECTIVES_DOCUMENT)
    assert failure.message == "the objectives record does not match the stage's products"
    assert failure.expected == f"product objectives.yaml with sha256 {'ab' * 8}…"
    product = hashlib.sha256((ml.ws / "objectives.yaml").read_bytes()).hexdigest()
    assert failure.found == f"sha256:{product[:16]}…"
    assert report.objectives == []


def _point_at(digest: str) -> Callable[[Statement], None]:
    def edit(statement: Statement) -> None:
        mlspec(statement)["details"]["objectives"]["sha256"] = digest
        for subject in statement["subject"]:
            if subject["name"] == "objectives.yaml":
                subject["digest"] = {"sha256": digest}

    return edit


def test_an_objectives_document_missing_from_the_store_is_refused(ml: MLPipeline) -> None:
    report = run_editing(ml, "objectives", _point_at("cd" * 32)).verify()
    [failure] = only(report, Check.OBJECTIVES_DOCUMENT)
    assert failure.message == "the signed objectives document is not in the store"
    assert failure.expected == f"blobs/sha256/{'cd' * 32}"


@pytest.mark.parametrize("document", [b"kind: Objectives\ncriteria: 7\n", b"\xff\xfe not text"])
def test_an_invalid_signed_objectives_document_is_refused(ml: MLPipeline, document: bytes) -> None:
    digest = ml.store.put_blob(document)
    report = run_editing(ml, "objectives", _point_at(digest)).verify()
    [failure] = only(report, Check.OBJECTIVES_DOCUMENT)
    assert failure.message.startswith("the signed objectives document is invalid: ")
    assert failure.remedy == "fix the objectives document and re-run the pipeline"


# -- separation ------------------------------------------------------------------------
def test_a_split_without_a_holdback_role_cannot_prove_separation(ml: MLPipeline) -> None:
    def unrole(statement: Statement) -> None:
        del mlspec(statement)["roles"]["holdback"]

    report = run_editing(ml, "split", unrole).verify()
    [failure] = [f for f in report.failures if f.check is Check.HOLDBACK_NOT_TESTED]
    assert (failure.stage, failure.message) == ("split", "split records no 'holdback' product")
    assert failure.found == "roles ['train', 'validation']"
    # the leakage proof still names the hold-back file, which no longer has its role
    assert checks_of(report) == {Check.HOLDBACK_NOT_TESTED, Check.LEAKAGE}


def test_separation_needs_split_evaluate_and_test(make_ml: MakeML) -> None:
    ml = make_ml()
    for name in STAGE_SIGNERS:
        if name != "evaluate":
            getattr(ml, f"sign_{name}")()
    report = ml.verify()
    [failure] = [f for f in report.failures if f.check is Check.HOLDBACK_NOT_TESTED]
    assert failure.stage == "test"
    assert failure.message == "cannot prove evaluation/test separation"
    assert failure.found == "missing: evaluate"
    assert Check.STAGE_MISSING in checks_of(report)


# -- leakage ---------------------------------------------------------------------------
def test_a_split_without_a_leakage_proof_is_refused(ml: MLPipeline) -> None:
    def unprove(statement: Statement) -> None:
        del mlspec(statement)["details"]["leakage"]

    report = run_editing(ml, "split", unprove).verify()
    leakage = [f for f in report.failures if f.check is Check.LEAKAGE]
    assert [(f.stage, f.message, f.expected) for f in leakage] == [
        (
            "split",
            "the split attestation carries no leakage proof",
            "details.leakage with per-split row digest sets",
        )
    ]
    # without the proof the hold-back rows are unknown: what later stages read is unproven;
    # and the policy's requirement on the hold-back size has nothing to read
    assert checks_of(report) == {Check.LEAKAGE, Check.HOLDBACK_EVIDENCE, Check.REQUIREMENT}
    [requirement] = [f for f in report.failures if f.check is Check.REQUIREMENT]
    assert requirement.message.startswith("requirement 'holdback-large-enough' not met: ")


# -- baseline --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def with_change(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> MLPipeline:
    root = tmp_path_factory.mktemp("mlchecks-failures")
    return MLPipeline(root, keys, objectives=OBJECTIVES_YAML + CHANGE_CRITERION).run()


def _baseline_refusal(ml: MLPipeline, path: Path) -> str:
    report = ml.verify(baseline=path)
    assert checks_of(report) == {Check.BASELINE, Check.OBJECTIVE}
    [failure] = [f for f in report.failures if f.check is Check.BASELINE]
    assert failure.source == str(path)
    return failure.message


def test_a_baseline_of_another_kind_than_its_stage_is_refused(with_change: MLPipeline) -> None:
    path = with_change.baseline_bundle({"metrics": {"mae": 48.5}})

    def rekind(statement: Statement) -> None:
        mlspec(statement)["kind"] = "test"

    resign(path, with_change.key("evaluator"), rekind)
    assert _baseline_refusal(with_change, path) == (
        "baseline refused: it is a 'test' attestation; stage 'evaluate' is 'evaluate'"
    )


def test_a_baseline_bound_to_no_policy_is_refused_when_the_policy_requires_it(
    with_change: MLPipeline,
) -> None:
    path = with_change.baseline_bundle({"metrics": {"mae": 48.5}})

    def unbind(statement: Statement) -> None:
        del mlspec(statement)["policyDigest"]

    resign(path, with_change.key("evaluator"), unbind)
    assert _baseline_refusal(with_change, path) == (
        "baseline refused: it is not bound to a policy, and this policy requires that"
    )


def test_a_baseline_of_another_payload_type_is_refused(with_change: MLPipeline) -> None:
    path = with_change.baseline_bundle({"metrics": {"mae": 48.5}})
    resign(path, with_change.key("evaluator"), lambda s: None, payload_type="text/plain")
    assert _baseline_refusal(with_change, path) == (
        "baseline refused: payloadType 'text/plain' is not in-toto"
    )
