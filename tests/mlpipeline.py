"""A small real ML pipeline for the ML verification checks (objectives, separation, leakage ...).

Stages: objectives -> validate -> split -> train -> evaluate -> test, each a real
file-producing step signed with a real key through :func:`sign_stage`. The only
fake is the clock (:class:`tests.support.FakeClock`), so ordering never depends
on timing. Each ``sign_<stage>`` method takes the knobs a test needs to cheat.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlspec_attest.attestation.stage import SignedStage, StageRecord, sign_stage
from mlspec_attest.evidence.dataschema import validate_dataset
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.policy import load_policy_yaml, load_signed_policy, sign_policy
from mlspec_attest.policy.signed import SignedPolicy
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.pipeline import verify_pipeline
from mlspec_attest.verify.report import Check, Failure, VerificationReport

from .support import POLICY_EXPIRES, VERIFY_NOW, FakeClock, KeyPair, checks_of, indent_pem

#: functionary name in the policy -> key pair of the session ``keys`` fixture
FUNCTIONARY_KEYS: dict[str, str] = {
    "product-owner": "ml-reviewer",
    "data-engineer": "data-engineer",
    "ml-engineer": "ml-engineer",
    "evaluator": "release-engineer",
}
#: stage -> the functionary that signs it
STAGE_SIGNERS: dict[str, str] = {
    "objectives": "product-owner",
    "validate": "data-engineer",
    "split": "data-engineer",
    "train": "ml-engineer",
    "evaluate": "evaluator",
    "test": "evaluator",
}

OBJECTIVES_YAML = """\
apiVersion: mlspec-attest/v1
kind: Objectives
metadata:
  name: diabetes-progression
  version: "2026.1"
criteria:
  - id: holdback-mae
    stage: test
    metric: mae
    max: 60
  - id: holdback-r2
    stage: test
    metric: r2
    min: 0.3
  - id: sex-gap
    stage: test
    gap:
      family: sex
      metric: mae
      max: 8
      minCount: 20
  - id: validation-every-sex
    stage: evaluate
    eachSlice:
      family: sex
      metric: mae
      max: 65
      minCount: 20
  - id: beats-mean-baseline
    stage: evaluate
    expr: 'metrics["mae"] < metrics["baseline_mae"]'
"""

#: a ``change`` criterion: only evaluable with ``--baseline``
CHANGE_CRITERION = """\
  - id: no-regression
    stage: evaluate
    change:
      metric: mae
      direction: lower-is-better
      maxWorsening: 1.0
"""

DATA_SCHEMA: dict[str, Any] = {
    "apiVersion": "mlspec-attest/v1",
    "kind": "DataSchema",
    "name": "diabetes-features",
    "version": "3",
    "columns": [
        {"name": "age", "type": "integer", "min": 18, "max": 90},
        {"name": "bmi", "type": "number", "min": 10, "max": 60},
        {"name": "sex", "type": "string", "enum": ["F", "M"]},
        {"name": "target", "type": "integer", "min": 0},
    ],
    "additionalColumns": False,
}

EVALUATE_METRICS: dict[str, Any] = {
    "metrics": {"mae": 49.0, "r2": 0.41, "baseline_mae": 70.0},
    "slices": {
        "sex": {
            "F": {"count": 40, "metrics": {"mae": 47.0}},
            "M": {"count": 38, "metrics": {"mae": 51.0}},
        }
    },
}

TEST_METRICS: dict[str, Any] = {
    "metrics": {"mae": 50.0, "r2": 0.45},
    "slices": {
        "sex": {
            "F": {"count": 60, "metrics": {"mae": 48.0}},
            "M": {"count": 55, "metrics": {"mae": 53.0}},
            # too few rows to count for the gap (minCount 20): a wild value is ignored
            "X": {"count": 3, "metrics": {"mae": 95.0}},
        }
    },
}

POLICY_TEMPLATE = """\
apiVersion: mlspec-attest/v1
kind: Policy
metadata:
  name: ml-checks
expires: "{expires}"
functionaries:
{functionaries}
stages:
  - name: objectives
    kind: objectives
    functionaries: [product-owner]
  - name: validate
    kind: validate
    functionaries: [data-engineer]
    after: [objectives]
  - name: split
    kind: split
    functionaries: [data-engineer]
    after: [validate]
  - name: train
    kind: train
    functionaries: [ml-engineer]
    after: [split]
  - name: evaluate
    kind: evaluate
    functionaries: [evaluator]
    after: [train]
  # deliberately not ordered after evaluate: the separation rule must catch it
  - name: test
    kind: test
    functionaries: [evaluator]
    after: [train]
requirePolicyDigest: {require_digest}
objectives:
  stage: objectives
separation:
  split: split
  evaluate: evaluate
  test: test
leakage:
  stage: split
  tolerance: {tolerance}
  pairs: [[train, holdback], [train, validation], [validation, holdback]]
dataValidation:
  stage: validate
  schema: diabetes-features
  version: "{schema_version}"
  forbidDeprecated: true
  trainStage: train
requirements:
{requirements}
"""

REQUIREMENTS = """\
  - id: split-is-seeded
    expr: '"seed" in stages.split.parameters'
  - id: holdback-large-enough
    expr: 'stages.split.details.leakage.splits.holdback.rows >= 6'
"""


def raw_rows() -> list[str]:
    """Thirty distinct rows: age, bmi, sex, target."""
    return [
        f"{20 + i},{20.0 + i / 2:.1f},{'FM'[i % 2]},{100 + 7 * i}"
        for i in range(30)  # ages 20..49
    ]


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def csv(path: Path, rows: Sequence[str]) -> Path:
    return write(path, "\n".join(["age,bmi,sex,target", *rows]) + "\n")


class MLPipeline:
    """``root/ws`` artifacts, ``root/store`` attestations, ``root/policy.signed.json`` policy."""

    def __init__(
        self,
        root: Path,
        keys: dict[str, KeyPair],
        *,
        run_id: str = "ml-run",
        objectives: str = OBJECTIVES_YAML,
        tolerance: int = 0,
        require_digest: bool = True,
        schema_version: str = "3",
        requirements: str = REQUIREMENTS,
    ) -> None:
        self.root = root
        self.keys = keys
        self.ws = root / "ws"
        self.ws.mkdir(parents=True, exist_ok=True)
        self.store_path = root / "store"
        self.store = AttestationStore(self.store_path)
        self.run_id = run_id
        self.clock = FakeClock()
        self.objectives_text = objectives
        self.policy_yaml = root / "policy.yaml"
        self.signed_policy_path = root / "policy.signed.json"
        self.signed: SignedPolicy = self.write_policy(
            tolerance=tolerance,
            require_digest=require_digest,
            schema_version=schema_version,
            requirements=requirements,
        )
        self.signed_stages: dict[str, SignedStage] = {}

    # policy ----------------------------------------------------------------
    def key(self, functionary: str) -> KeyPair:
        return self.keys[FUNCTIONARY_KEYS[functionary]]

    def write_policy(
        self,
        *,
        tolerance: int = 0,
        require_digest: bool = True,
        schema_version: str = "3",
        requirements: str = REQUIREMENTS,
    ) -> SignedPolicy:
        functionaries = "\n".join(
            f"  {name}:\n    publicKey: |\n{indent_pem(self.key(name).pem, 6)}"
            for name in FUNCTIONARY_KEYS
        )
        self.policy_yaml.write_text(
            POLICY_TEMPLATE.format(
                expires=POLICY_EXPIRES,
                functionaries=functionaries,
                tolerance=tolerance,
                require_digest="true" if require_digest else "false",
                schema_version=schema_version,
                requirements=requirements.rstrip("\n"),
            )
        )
        policy = load_policy_yaml(self.policy_yaml, now=VERIFY_NOW)
        envelope = sign_policy(policy, [self.keys["owner"].signer])
        self.signed_policy_path.write_bytes(canonical(envelope.to_json()))
        self.signed = load_signed_policy(self.signed_policy_path)
        return self.signed

    # signing ---------------------------------------------------------------
    def sign(
        self,
        stage: str,
        *,
        materials: Sequence[str] = (),
        products: Sequence[str] = (),
        roles: dict[str, str] | None = None,
        splits: dict[str, str] | None = None,
        metrics_file: str | None = None,
        parameters: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
        detail_files: dict[str, str] | None = None,
        started_on: str | None = None,
        signer: KeyPair | None = None,
        bind: bool = True,
        store: AttestationStore | None = None,
        run_id: str | None = None,
    ) -> SignedStage:
        record = StageRecord(
            stage=stage,
            kind=stage,
            materials=[self.ws / m for m in materials],
            products=[self.ws / p for p in products],
            roles={r: self.ws / p for r, p in (roles or {}).items()},
            splits={r: self.ws / p for r, p in (splits or {}).items()},
            parameters=dict(parameters or {}),
            details=dict(details or {}),
            detail_files={n: self.ws / p for n, p in (detail_files or {}).items()},
            metrics_file=self.ws / metrics_file if metrics_file else None,
            policy_digest=self.signed.digest if bind else None,
            started_on=started_on or self.clock(),
        )
        signed = sign_stage(
            record,
            (signer or self.key(STAGE_SIGNERS[stage])).signer,
            store or self.store,
            run_id=run_id or self.run_id,
            base_dir=self.ws,
            clock=self.clock,
            environment={"test": True},
        )
        if store is None:
            self.signed_stages[stage] = signed
        return signed

    def sign_objectives(self, text: str | None = None, **kw: Any) -> SignedStage:
        write(self.ws / "objectives.yaml", text if text is not None else self.objectives_text)
        return self.sign("objectives", products=["objectives.yaml"], **kw)

    def sign_validate(
        self,
        *,
        schema: dict[str, Any] | None = None,
        data_rows: Sequence[str] | None = None,
        inline: bool = False,
        **kw: Any,
    ) -> SignedStage:
        """Validate ``data/raw.csv`` for real and attest the record as ``details.validation``."""
        raw = csv(self.ws / "data/raw.csv", raw_rows() if data_rows is None else data_rows)
        record = validate_dataset(raw, schema or DATA_SCHEMA).to_json()
        write(self.ws / "reports/validation.json", json.dumps(record))
        if inline:
            kw.setdefault("details", {"validation": record})
        else:
            kw.setdefault("detail_files", {"validation": "reports/validation.json"})
        return self.sign(
            "validate", materials=["data/raw.csv"], products=["reports/validation.json"], **kw
        )

    def sign_split(
        self, *, duplicate_row: bool = False, parameters: dict[str, Any] | None = None, **kw: Any
    ) -> SignedStage:
        """18 train, 6 validation, 6 hold-back rows; ``duplicate_row`` leaks one train row."""
        rows = (self.ws / "data/raw.csv").read_text().splitlines()[1:]
        holdback = rows[24:] + ([rows[0]] if duplicate_row else [])
        csv(self.ws / "data/split/train.csv", rows[:18])
        csv(self.ws / "data/split/validation.csv", rows[18:24])
        csv(self.ws / "data/split/holdback.csv", holdback)
        return self.sign(
            "split",
            materials=["data/raw.csv"],
            splits={
                "train": "data/split/train.csv",
                "validation": "data/split/validation.csv",
                "holdback": "data/split/holdback.csv",
            },
            parameters={"seed": 7} if parameters is None else parameters,
            **kw,
        )

    def sign_train(self, *, extra_materials: Sequence[str] = (), **kw: Any) -> SignedStage:
        rows = (self.ws / "data/split/train.csv").read_text().splitlines()
        write(self.ws / "model.bin", bytes(range(256)) + str(len(rows)).encode())
        return self.sign(
            "train",
            materials=["data/split/train.csv", *extra_materials],
            products=["model.bin"],
            roles={"train": "data/split/train.csv", "model": "model.bin"},
            parameters={"max_depth": 4},
            **kw,
        )

    def sign_evaluate(
        self,
        *,
        metrics: dict[str, Any] | None = None,
        data: str = "data/split/validation.csv",
        extra_materials: Sequence[str] = (),
        **kw: Any,
    ) -> SignedStage:
        write(self.ws / "reports/evaluate.json", json.dumps(metrics or EVALUATE_METRICS))
        return self.sign(
            "evaluate",
            materials=["model.bin", data, *extra_materials],
            products=["reports/evaluate.json"],
            roles={"model": "model.bin", "validation": data},
            metrics_file="reports/evaluate.json",
            **kw,
        )

    def sign_test(
        self,
        *,
        metrics: dict[str, Any] | None = None,
        data: str = "data/split/holdback.csv",
        model: str = "model.bin",
        **kw: Any,
    ) -> SignedStage:
        write(self.ws / "reports/test.json", json.dumps(metrics or TEST_METRICS))
        return self.sign(
            "test",
            materials=[model, data],
            products=["reports/test.json"],
            roles={"model": model, "holdback": data},
            metrics_file="reports/test.json",
            **kw,
        )

    def run(self, **overrides: dict[str, Any]) -> MLPipeline:
        """Every stage in order; ``overrides[stage]`` are keyword arguments of its step."""
        for stage in STAGE_SIGNERS:
            getattr(self, f"sign_{stage}")(**overrides.get(stage, {}))
        return self

    # verification ----------------------------------------------------------
    def verify(self, *, baseline: Path | None = None) -> VerificationReport:
        return verify_pipeline(
            load_signed_policy(self.signed_policy_path),
            [self.keys["owner"].public],
            self.store,
            run_id=self.run_id,
            now=VERIFY_NOW,
            baseline=baseline,
        )

    def baseline_bundle(
        self, metrics: dict[str, Any], *, signer: KeyPair | None = None, stage: str = "evaluate"
    ) -> Path:
        """An evaluate attestation of another model, from another run and store."""
        write(self.ws / "baseline/metrics.json", json.dumps(metrics))
        signed = self.sign(
            stage,
            products=["baseline/metrics.json"],
            metrics_file="baseline/metrics.json",
            signer=signer,
            store=AttestationStore(self.root / "baseline-store"),
            run_id="baseline-run",
        )
        return signed.path

    def cli_verify_args(self, *extra: str) -> list[str]:
        return [
            "verify",
            "--policy",
            str(self.signed_policy_path),
            "--policy-key",
            str(self.keys["owner"].pub_path),
            "--store",
            str(self.store_path),
            "--run-id",
            self.run_id,
            *extra,
        ]


MakeML = Callable[..., "MLPipeline"]


def only(report: VerificationReport, check: Check) -> list[Failure]:
    """The failures of ``check``; asserts no other check fired."""
    assert checks_of(report) == {check}, [str(f) for f in report.failures]
    return [f for f in report.failures if f.check is check]
