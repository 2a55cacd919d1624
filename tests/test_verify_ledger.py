"""A report that proves what was checked: every check the policy asked for, with its
evidence, pass or fail; and on a deny the root causes before their consequences."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mlspec_attest.verify.report import VerificationReport

from .mlpipeline import MLPipeline
from .support import Pipeline


def runs(report: VerificationReport) -> list[dict[str, Any]]:
    return list(report.to_json()["checks"])


def one(report: VerificationReport, check: str, stage: str | None = None) -> dict[str, Any]:
    [entry] = [c for c in runs(report) if c["check"] == check and c["stage"] == stage]
    return entry


def test_a_pass_lists_every_check_with_its_evidence(ml: MLPipeline) -> None:
    report = ml.run().verify()
    assert report.passed, [str(f) for f in report.failures]
    assert {c["result"] for c in runs(report)} == {"pass"}
    assert one(report, "policy-signature")["evidence"] == {
        "digest": report.policy_digest,
        "ownerKeys": [ml.keys["owner"].keyid],
    }
    stages = [c["stage"] for c in runs(report) if c["check"] == "stage"]
    assert stages == [s.name for s in ml.signed.policy.stages]
    train = one(report, "stage", "train")["evidence"]
    assert train["threshold"].endswith(f"of {len(train['functionaries'])}")
    assert train["signedBy"] and all(
        a["digest"].startswith("sha256:") for a in train["attestations"]
    )
    assert one(report, "ordering")["evidence"]["after"]["train"]
    leakage = one(report, "leakage", "split")["evidence"]
    assert leakage["tolerance"] == 0 and leakage["pairs"]
    assert (
        set(leakage["overlaps"]) >= set(leakage["pairs"]) and max(leakage["overlaps"].values()) == 0
    )
    assert one(report, "separation")["evidence"]["test"] == "test"
    assert one(report, "data-validation", "validate")["evidence"]["schema"] == "diabetes-features"
    objectives = [c for c in runs(report) if c["check"] == "objective"]
    assert objectives and all(
        c["evidence"]["bound"] and c["evidence"]["observed"]
        for c in objectives
        if c["evidence"]["kind"] != "expr"
    )
    requirements = [c["evidence"]["id"] for c in runs(report) if c["check"] == "requirement"]
    assert requirements == [r.id for r in ml.signed.policy.requirements]


def test_rules_and_deploy_artifacts_show_what_they_compared(honest: Pipeline) -> None:
    report = honest.verify()
    assert report.passed
    rules = {c["stage"]: c for c in runs(report) if c["check"] == "artifact-rules"}
    assert list(rules) == ["ingest", "split", "train", "package"]
    assert rules["train"]["evidence"]["materials"][0].startswith("MATCH data/split/train.csv")
    assert {c["result"] for c in rules.values()} == {"pass"}
    model = one(report, "deploy-artifact", "package")
    assert model["result"] == "pass" and model["evidence"]["status"] == "ok"
    assert any(k.startswith("sha256") for k in model["evidence"]["digest"])


def test_a_failed_check_is_marked_where_it_failed(ml: MLPipeline) -> None:
    report = ml.run(split={"parameters": {"shuffle": True}}).verify()
    failed = [(c["check"], c["evidence"].get("id")) for c in runs(report) if c["result"] == "fail"]
    assert failed == [("requirement", "split-is-seeded")]


def test_a_run_under_another_policy_names_the_root_cause_first(honest: Pipeline) -> None:
    """The issue's case: the policy was edited after the run, so every attestation is
    bound to another policy; that is the cause, not the missing stages or artifacts."""
    honest.write_policy(expires="2099-06-30T00:00:00Z")
    honest.sign_policy()
    report = honest.verify(artifacts=honest.deploy_artifacts())
    failures = report.to_json()["failures"]
    causes = [f["cause"] for f in failures]
    assert causes == sorted(causes, key=lambda c: c != "root")  # roots first
    roots = [f for f in failures if f["cause"] == "root"]
    assert roots and {f["check"] for f in roots} == {"policy-digest"}
    consequences = [f for f in failures if f["cause"] == "consequence"]
    assert {f["check"] for f in consequences} >= {"stage-missing", "artifact-mismatch"}
    assert all(f["because"] for f in consequences)
    assert {a["status"] for a in report.to_json()["artifacts"]} == {"stage-not-verified"}
    not_run = [c for c in runs(report) if c["result"] == "not-run"]
    assert {c["check"] for c in not_run} >= {"artifact-rules"}


def test_each_entry_carries_exactly_its_evidence(ml: MLPipeline) -> None:
    report = ml.run().verify()
    doc = report.to_json()
    policy = ml.signed.policy
    assert one(report, "policy-expired") == {
        "check": "policy-expired", "stage": None, "result": "pass",
        "evidence": {"expires": policy.to_json()["expires"]},
    }  # fmt: skip
    summary = next(s for s in report.stages if s.name == "train")
    stage = policy.stage("train")
    assert stage is not None
    assert one(report, "stage", "train") == {
        "check": "stage", "stage": "train", "result": "pass",
        "evidence": {
            "kind": "train", "required": True, "threshold": "1 of 1",
            "functionaries": ["ml-engineer"], "signedBy": list(summary.signers),
            "attestations": [{"file": f, "digest": d} for f, d in summary.inputs],
        },
    }  # fmt: skip
    assert one(report, "ordering")["evidence"] == {
        "after": {s.name: list(s.after) for s in policy.stages if s.after}
    }
    sep = policy.separation
    assert sep is not None
    assert one(report, "separation")["evidence"] == {
        "split": "split", "evaluate": "evaluate", "test": "test",
        "notReadBy": list(sep.not_read_by), "holdbackRole": sep.holdback_role,
    }  # fmt: skip
    rule = policy.data_validation
    assert rule is not None
    assert one(report, "data-validation", "validate")["evidence"] == {
        "schema": "diabetes-features", "version": rule.version,
        "forbidDeprecated": True, "trainStage": "train",
    }  # fmt: skip
    leakage = one(report, "leakage", "split")["evidence"]
    assert leakage["recomputed"] == "from the stored row digest sets (equal to the attested counts)"
    assert leakage["pairs"] == ["holdback|train", "train|validation", "holdback|validation"]
    objective = next(c for c in runs(report) if c["check"] == "objective")
    result = report.objectives[0]
    assert objective == {
        "check": "objective", "stage": result.stage, "result": "pass",
        "evidence": {
            "id": result.id, "kind": result.kind, "bound": result.threshold,
            "observed": dict(result.observed), "message": result.message,
            "evidence": result.evidence,
        },
    }  # fmt: skip
    requirement = next(c for c in runs(report) if c["check"] == "requirement")
    assert requirement["stage"] is None and requirement["evidence"]["kind"] == "expr"
    assert [c["check"] for c in doc["checks"]][:2] == ["policy-signature", "policy-expired"]


def test_a_failure_marks_only_the_entry_it_belongs_to(ml: MLPipeline) -> None:
    report = ml.run(evaluate={"metrics": {"mae": 80.0, "r2": 0.1, "baseline_mae": 70.0}}).verify()
    failed = {(c["check"], c["stage"]) for c in runs(report) if c["result"] == "fail"}
    assert failed and all(check == "objective" for check, _ in failed)
    assert one(report, "stage", "evaluate")["result"] == "pass"


def test_what_could_not_run_says_why(ml: MLPipeline) -> None:
    ml.run()
    [validate] = ml.store.run_dir(ml.run_id).glob("validate.*")
    validate.unlink()
    report = ml.verify()
    validation = one(report, "data-validation", "validate")
    assert validation["result"] == "not-run"
    assert validation["evidence"]["why"] == "stage 'validate' was not verified"
    assert one(report, "stage", "validate")["result"] == "fail"


def test_an_absent_optional_stage_is_listed_as_not_run(honest: Pipeline) -> None:
    text = honest.policy_yaml.read_text().replace(
        "  - name: package\n    kind: package\n",
        "  - name: package\n    kind: package\n    required: false\n",
    )
    honest.policy_yaml.write_text(text)
    honest.sign_policy()
    for path in honest.store.run_dir(honest.run_id).glob("*.sigstore.json"):
        if path.name.startswith("package."):
            path.unlink()
    report = honest.verify()
    entry = one(report, "stage", "package")
    assert entry["result"] == "not-run"
    assert entry["evidence"]["why"] == "optional, not run"
    assert entry["evidence"]["required"] is False and entry["evidence"]["signedBy"] == []
    assert one(report, "artifact-rules", "package")["result"] == "not-run"
    roles = [c["evidence"]["role"] for c in runs(report) if c["check"] == "deploy-artifact"]
    assert roles == ["model", "train-data"]


def test_leakage_of_an_unverified_split_is_not_run(ml: MLPipeline) -> None:
    ml.run()
    [split] = ml.store.run_dir(ml.run_id).glob("split.*")
    split.unlink()
    entry = one(ml.verify(), "leakage", "split")
    assert entry == {
        "check": "leakage", "stage": "split", "result": "not-run",
        "evidence": {"why": "stage 'split' was not verified"},
    }  # fmt: skip


def test_a_policy_wide_check_fails_when_a_stage_breaks_it(pipeline: Pipeline) -> None:
    pipeline.sign("ingest")
    pipeline.clock.current = datetime(2025, 1, 1, tzinfo=UTC)  # split "started" before ingest ended
    pipeline.sign("split")
    pipeline.clock.current = datetime(2025, 7, 1, tzinfo=UTC)
    pipeline.sign_all_signers("train")
    pipeline.sign("package", via_api=True)
    report = pipeline.verify()
    assert [(f.check.value, f.stage) for f in report.failures] == [("ordering", "split")]
    assert one(report, "ordering")["result"] == "fail"  # policy-wide, failed at a stage
    assert one(report, "stage", "split")["result"] == "pass"
    rules = one(report, "artifact-rules", "package")["evidence"]
    assert rules == {
        "materials": ["MATCH model WITH PRODUCTS FROM train", "DISALLOW *"],
        "products": ["CREATE dist/model", "DISALLOW *"],
    }
