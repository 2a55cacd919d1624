"""Helpers of the gate tests: real keys, real signed summaries, real model packages.

Nothing here fakes signing or hashing; the only fake is the clock (``NOW``), passed to
the gate as its ``now``. Imported by tests/serve/test_gate*.py, test_vsa_check*.py,
test_loaders*.py and tests/cli/test_gate_cmd.py.
"""

from __future__ import annotations

import base64
import json
import pickle
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from msgspec.structs import replace
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from mlspec_attest.digest.artifact import digest_path
from mlspec_attest.formats.bundle import sign_to_bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.statement import ResourceDescriptor
from mlspec_attest.formats.vsa import InputAttestation, Level, Result, VerificationSummary
from mlspec_attest.serve.vsa_check import GateExpectations, VerifierTrust
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key, write_key_pair

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
"""The gate's clock in these tests."""
POLICY_DIGEST = "ab" * 32
RESOURCE_URI = "https://models.example.com/iris"
RUN_ID = "run-2026-06-01"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@cache
def verifier() -> LocalKeySigner:
    """The trusted verifier's key (one per test session)."""
    return generate_key(KeyType.ED25519)


@cache
def stranger() -> LocalKeySigner:
    """A key nobody trusts."""
    return generate_key(KeyType.ED25519)


def trust() -> VerifierTrust:
    """The gate's trust in these tests: the verifier's key, nothing else."""
    return VerifierTrust(keys=(verifier().public_key,))


def expectations() -> GateExpectations:
    """What these tests' deployment expects of a summary (its policy, resource, a day)."""
    return GateExpectations(
        policy_digest=POLICY_DIGEST, resource_uri=RESOURCE_URI, max_age=timedelta(days=1), now=NOW
    )


def write_keys(signer: LocalKeySigner, directory: Path, name: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return write_key_pair(signer, directory / name)


def subject_digest(model: Path) -> dict[str, str]:
    """What ``verify`` records for a deploy artifact: the one digest engine's DigestSet."""
    return digest_path(model).digest_set()


def summary_for(model: Path | None, **changes: Any) -> VerificationSummary:
    """A PASSED summary covering ``model`` as its ``model`` subject; ``changes`` override."""
    subjects = (ResourceDescriptor("model", subject_digest(model)),) if model is not None else ()
    summary = VerificationSummary(
        subjects=subjects or (ResourceDescriptor("dataset", {"sha256": "cd" * 32}),),
        resource_uri=RESOURCE_URI,
        policy_uri="policies/iris.signed.json",
        policy_digest=POLICY_DIGEST,
        time_verified=NOW - timedelta(hours=1),
        result=Result.PASSED,
        levels=(Level.SIGNED_CHAIN.value, Level.DEPLOY_DIGESTS.value),
        inputs=(InputAttestation("train", f"runs/{RUN_ID}/train.sigstore.json", "ef" * 32),),
        verifier_version={"mlspec-attest": "0.1.0"},
        details={"runId": RUN_ID, "policy": "iris"},
    )
    return replace(summary, **changes)


def signed(summary: VerificationSummary | bytes, signer: LocalKeySigner | None = None) -> bytes:
    """The bundle ``verify --vsa-out`` writes: the summary's payload signed into a bundle."""
    payload = summary if isinstance(summary, bytes) else summary.to_payload()
    bundle, _ = sign_to_bundle(payload, INTOTO_PAYLOAD_TYPE, signer or verifier())
    return json.dumps(bundle.to_json()).encode()


def write_signed(
    path: Path, summary: VerificationSummary, signer: LocalKeySigner | None = None
) -> Path:
    path.write_bytes(signed(summary, signer))
    return path


def tamper_payload(bundle: bytes, mutate: Callable[[dict[str, Any]], None]) -> bytes:
    """The bundle with its payload changed after signing (the signature is kept)."""
    doc = json.loads(bundle)
    payload = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    mutate(payload)
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    return json.dumps(doc).encode()


@cache
def _iris_model() -> bytes:
    x, y = load_iris(return_X_y=True)
    return pickle.dumps(LogisticRegression(max_iter=500).fit(x, y))


def iris_rows() -> list[list[float]]:
    x, _ = load_iris(return_X_y=True)
    return [list(map(float, x[i])) for i in (0, 60, 120)]


def make_model_dir(path: Path, *, card: bool = True) -> Path:
    """A real scikit-learn model package: model.pkl and model-card.json (and a README)."""
    path.mkdir(parents=True)
    (path / "model.pkl").write_bytes(_iris_model())
    if card:
        card_doc = {"name": "iris", "version": "3", "features": FEATURES, "owner": "ml-team"}
        (path / "model-card.json").write_text(json.dumps(card_doc))
    (path / "docs").mkdir()
    (path / "docs" / "README.md").write_text("iris classifier\n")
    return path
