"""Support for the orchestrator tests: the example pipeline and an independent check of a run.

The Airflow, Prefect and KFP tests run the runnable examples of examples/integrations/
(ingest -> train -> evaluate over mini_pipeline.py) and then prove what was signed:
the library's own verifier passes the run against the signed policy, and every material
and product digest in the signed statements equals the sha256 of the file, computed
here with hashlib (not by mlspec-attest).
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from mlspec_attest.policy import load_signed_policy
from mlspec_attest.signing.keys import load_public_key
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.pipeline import verify_pipeline
from mlspec_attest.verify.report import VerificationReport
from tests.support import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "examples" / "integrations"
OWNER_PUB = PROJECT_ROOT / "keys-example" / "owner.pub"


def example(name: str) -> ModuleType:
    """Import ``examples/integrations/<name>.py`` (its directory on sys.path, as when run)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


def statements(store: Path, run_id: str) -> dict[str, dict[str, Any]]:
    """stage -> the in-toto statement signed for it in ``run_id``."""
    out: dict[str, dict[str, Any]] = {}
    for bundle in sorted((store / "runs" / run_id).glob("*.sigstore.json")):
        payload = json.loads(bundle.read_bytes())["dsseEnvelope"]["payload"]
        statement = json.loads(base64.b64decode(payload))
        out[statement["predicate"]["name"]] = statement
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify_run(
    work: Path, run_id: str, *, deploy: Path | None = Path("model/model.json")
) -> VerificationReport:
    """The library's verification of one run of an example pipeline against
    ``work/policy.signed.json``, re-hashing ``work/<deploy>`` as the model to deploy."""
    return verify_pipeline(
        load_signed_policy(work / "policy.signed.json"),
        [load_public_key(OWNER_PUB)],
        AttestationStore(work / "store"),
        run_id=run_id,
        artifacts={"model": work / deploy} if deploy else None,
    )


def assert_signed_as_declared(work: Path, run_id: str) -> None:
    """The run verifies, and each stage signed exactly its declared inputs and outputs
    with the digests of the files now in ``work``."""
    mp = example("mini_pipeline")
    report = verify_run(work, run_id)
    assert report.passed, [str(f) for f in report.failures]
    signed = statements(work / "store", run_id)
    assert sorted(signed) == sorted(mp.STAGES)
    for stage, (_key, inputs, outputs) in mp.STAGES.items():
        predicate = signed[stage]["predicate"]
        materials = {m["name"]: m["digest"]["sha256"] for m in predicate["materials"]}
        products = {s["name"]: s["digest"]["sha256"] for s in signed[stage]["subject"]}
        assert materials == {p: sha256(work / p) for p in inputs.values()}
        assert products == {p: sha256(work / p) for p in outputs.values()}
        mlspec = predicate["byproducts"]["mlspec"]
        assert mlspec["runId"] == run_id
        assert mlspec["roles"] == {**inputs, **outputs}
