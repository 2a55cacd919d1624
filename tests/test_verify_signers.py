"""Who signed an attestation: one lookup, for stage attestations and the ``--baseline`` alike.

``verify/signers.py`` decides which policy functionary signed a bundle; admission (stage
attestations) and the baseline both ask it, so a signature that would not admit a
stage attestation does not admit a baseline either (docs/verification.md, § 8a). Before
the two were one, the baseline ignored the ``publicKey.hint``: a baseline whose hint
named one functionary while another's key had signed it was accepted, where the same
bundle as a stage attestation was refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.policy import load_signed_policy
from mlspec_attest.policy.model import Functionary, Policy
from mlspec_attest.store.ledger import StoredAttestation
from mlspec_attest.verify.admission import Admission
from mlspec_attest.verify.report import Check, VerificationReport
from mlspec_attest.verify.signers import SignerLookup, prefer_allowed

from .mlpipeline import CHANGE_CRITERION, OBJECTIVES_YAML, MLPipeline
from .support import VERIFY_NOW, KeyPair, checks_of


@pytest.fixture(scope="module")
def with_change(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> MLPipeline:
    root = tmp_path_factory.mktemp("signers")
    return MLPipeline(root, keys, objectives=OBJECTIVES_YAML + CHANGE_CRITERION).run()


def _hint(ml: MLPipeline, hint: str) -> str:
    if hint == "own":
        return ""
    if hint == "unknown":
        return "0" * 64
    return ml.key(hint).keyid  # another functionary's key id


def _baseline(ml: MLPipeline, signer: str, hint: str, tmp_path: Path) -> Path:
    """An evaluate attestation of another run signed by ``signer``, its hint rewritten.

    The hint sits outside the signed envelope: rewriting it leaves the signature valid.
    """
    key = ml.keys["intruder"] if signer == "intruder" else ml.key(signer)
    signed = ml.baseline_bundle({"metrics": {"mae": 48.5}}, signer=key)
    doc = json.loads(signed.read_bytes())
    if _hint(ml, hint):
        doc["verificationMaterial"]["publicKey"]["hint"] = _hint(ml, hint)
    out = tmp_path / f"baseline-{signer}-{hint}.sigstore.json"
    out.write_bytes(canonical(doc))
    return out


def _admitted_as_stage(ml: MLPipeline, path: Path) -> bool:
    """The bundle, read as a stage attestation of its own run: does admission take it?"""
    signed = load_signed_policy(ml.signed_policy_path)
    report = VerificationReport(signed.policy.name, signed.digest, "baseline-run", "now")
    admission = Admission(signed, SignerLookup(signed.policy), "baseline-run", VERIFY_NOW, report)
    stored = StoredAttestation(path, Bundle.from_json(json.loads(path.read_bytes())))
    return admission.accept(stored) is not None


def _admitted_as_baseline(ml: MLPipeline, path: Path) -> bool:
    report = ml.verify(baseline=path)
    return Check.BASELINE not in checks_of(report)


@pytest.mark.parametrize(
    ("signer", "hint", "admitted"),
    [
        ("evaluator", "own", True),
        ("evaluator", "unknown", True),  # a hint naming no functionary: every key is tried
        ("evaluator", "ml-engineer", False),  # a hint naming another functionary: refused
        ("evaluator", "product-owner", False),
        ("ml-engineer", "own", False),  # known, but may not sign evaluate
        ("ml-engineer", "evaluator", False),
        ("ml-engineer", "unknown", False),
        ("intruder", "own", False),
        ("intruder", "evaluator", False),
    ],
)
def test_a_baseline_is_signed_exactly_when_a_stage_attestation_would_be(
    with_change: MLPipeline, tmp_path: Path, signer: str, hint: str, admitted: bool
) -> None:
    path = _baseline(with_change, signer, hint, tmp_path)
    assert _admitted_as_stage(with_change, path) is admitted
    assert _admitted_as_baseline(with_change, path) is admitted


def test_a_rehinted_baseline_names_the_signature_check(
    with_change: MLPipeline, tmp_path: Path
) -> None:
    path = _baseline(with_change, "evaluator", "ml-engineer", tmp_path)
    report = with_change.verify(baseline=path)
    assert checks_of(report) == {Check.BASELINE, Check.OBJECTIVE}
    [failure] = [f for f in report.failures if f.check is Check.BASELINE]
    assert failure.message == "baseline attestation is not signed by a functionary of its stage"
    assert failure.expected == "a signature by evaluator"
    assert failure.found == "none valid"
    assert failure.stage == "evaluate"
    assert failure.source == str(path)


# -- the lookup itself -----------------------------------------------------------------
def _policy(ml: MLPipeline) -> Policy:
    return load_signed_policy(ml.signed_policy_path).policy


def test_prefer_allowed_takes_the_first_allowed_candidate(with_change: MLPipeline) -> None:
    policy = _policy(with_change)
    people = policy.functionaries
    evaluate, train = policy.stage("evaluate"), policy.stage("train")
    candidates: list[Functionary] = [people["ml-engineer"], people["evaluator"]]
    assert prefer_allowed(candidates, evaluate) == people["evaluator"]
    assert prefer_allowed(candidates, train) == people["ml-engineer"]
    # nobody allowed, or no stage: the first candidate (admission then refuses it by name)
    assert prefer_allowed(candidates, policy.stage("objectives")) == people["ml-engineer"]
    assert prefer_allowed(candidates, None) == people["ml-engineer"]
    with pytest.raises(IndexError):
        prefer_allowed([], evaluate)


def test_allowed_names_and_known_keys(with_change: MLPipeline) -> None:
    lookup = SignerLookup(_policy(with_change))
    assert lookup.allowed_names("evaluate") == "evaluator"
    assert lookup.allowed_names("no-such-stage") == "a functionary of the policy"
    assert lookup.allowed_names(None) == "a functionary of the policy"
    assert lookup.knows_key(with_change.key("evaluator").keyid)
    assert not lookup.knows_key("0" * 64)
    assert not lookup.knows_key(None)
    assert not lookup.knows_key("")
