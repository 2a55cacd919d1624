"""Admission (verify/admission.py): every refusal, as the whole record the report carries.

Each path by which a stored attestation is refused is provoked with real keys and real
signatures (a statement edited and signed again by a functionary's key, a payload
altered after signing, a hint naming another key, a keyless bundle from the loopback
Sigstore instance), and the test asserts the failure record field by field: check,
stage, message, expected, found, remedy and source. The CLI prints those fields (and
``--json`` carries them), so a change in any of them is a change of behaviour.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.policy import load_signed_policy
from mlspec_attest.policy.signed import SignedPolicy
from mlspec_attest.store.ledger import StoredAttestation
from mlspec_attest.verify.accepted import AcceptedAttestation
from mlspec_attest.verify.admission import Admission, claimed_stage
from mlspec_attest.verify.report import Check, Failure, VerificationReport
from mlspec_attest.verify.signers import SignerLookup

from .cli.conftest import Cli, cli
from .sigstore.instance import (
    OIDC_ISSUER,
    SigstoreInstance,
    sigstore_instance,
    sigstore_instance_factory,
)
from .sigstore.test_keyless import POLICY as KEYLESS_POLICY
from .sigstore.test_keyless import Workspace, make_workspace
from .support import VERIFY_NOW, KeyPair, Pipeline

# Fixtures of the keyless case: the in-process CLI and the loopback Sigstore instance.
__all__ = ["cli", "sigstore_instance", "sigstore_instance_factory"]

RESIGN = "re-sign the stage; do not edit attestation files"
TRAIN_SIGNERS = "a signature by ml-engineer, ml-reviewer"
Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def signed_run(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> Pipeline:
    """The honest four-stage run (read only: every test builds its bundles beside it)."""
    return Pipeline(tmp_path_factory.mktemp("admission"), keys).run()


@pytest.fixture(scope="module")
def strict_run(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> Pipeline:
    """A run whose policy says ``requirePolicyDigest: true``."""
    p = Pipeline(tmp_path_factory.mktemp("strict"), keys)
    p.policy_yaml.write_text(
        p.policy_text(expires="2099-01-01T00:00:00Z").replace(
            "expires:", "requirePolicyDigest: true\nexpires:", 1
        )
    )
    p.sign_policy()
    assert p.signed.policy.require_policy_digest
    return p.run()


def _admit(
    p: Pipeline, stored: StoredAttestation, *, run_id: str = "run-a"
) -> tuple[AcceptedAttestation | None, VerificationReport]:
    signed = load_signed_policy(p.signed_policy_path)
    report = VerificationReport(signed.policy.name, signed.digest, run_id, "now")
    admission = Admission(signed, SignerLookup(signed.policy), run_id, VERIFY_NOW, report)
    return admission.accept(stored), report


def _stored(p: Pipeline, stage: str, role: str | None = None) -> StoredAttestation:
    path = p.bundle_path(stage, role)
    return StoredAttestation(path, Bundle.from_json(json.loads(path.read_bytes())))


def _statement(p: Pipeline, stage: str) -> dict[str, Any]:
    bundle = _stored(p, stage).bundle
    assert bundle is not None
    doc: dict[str, Any] = json.loads(bundle.envelope.payload)
    return doc


def _signed(
    p: Pipeline,
    payload: bytes,
    role: str,
    *,
    name: str,
    payload_type: str = INTOTO_PAYLOAD_TYPE,
    hint: str | None = "own",
) -> StoredAttestation:
    """``payload`` signed for real by ``role``'s key, as the bundle file ``name``."""
    key = p.keys[role]
    envelope = Envelope.sign(payload, payload_type, [key.signer], keyid_hint=False)
    bundle = Bundle.for_public_key(envelope, key.keyid)
    doc = bundle.to_json()
    if hint is None:
        del doc["verificationMaterial"]["publicKey"]
    elif hint != "own":
        doc["verificationMaterial"]["publicKey"]["hint"] = hint
    path = p.root / "forged" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(canonical(doc))
    return StoredAttestation(path, Bundle.from_json(json.loads(path.read_bytes())))


def _edited(p: Pipeline, stage: str, role: str, edit: Edit, *, name: str) -> StoredAttestation:
    """The stage's statement, edited, then signed again by ``role`` (a valid signature)."""
    statement = _statement(p, stage)
    edit(statement)
    return _signed(p, canonical(statement), role, name=name)


def _mlspec(statement: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = statement["predicate"]["byproducts"]["mlspec"]
    return meta


def _altered(p: Pipeline, stage: str, hint: str | None, *, name: str) -> StoredAttestation:
    """The stage's bundle with its payload changed after signing (the signature kept)."""
    doc = json.loads(p.bundle_path(stage).read_bytes())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["predicate"]["environment"] = {"altered": True}
    doc["dsseEnvelope"]["payload"] = base64.b64encode(canonical(statement)).decode()
    if hint is None:
        del doc["verificationMaterial"]["publicKey"]
    elif hint != "own":
        doc["verificationMaterial"]["publicKey"]["hint"] = hint
    path = p.root / "forged" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(canonical(doc))
    return StoredAttestation(path, Bundle.from_json(json.loads(path.read_bytes())))


# -- admitted ---------------------------------------------------------------------------
def test_an_honest_attestation_is_admitted_as_it_is(signed_run: Pipeline) -> None:
    stored = _stored(signed_run, "train", "ml-reviewer")
    accepted, report = _admit(signed_run, stored)
    assert report.failures == [] and report.notes == []
    assert accepted is not None
    assert accepted.statement == StageStatement.from_payload(stored.bundle.envelope.payload)  # type: ignore[union-attr]
    assert accepted.functionary == signed_run.signed.policy.functionaries["ml-reviewer"]
    assert accepted.source == stored.path
    assert accepted.payload_digest == stored.payload_digest
    assert accepted.payload_digest.startswith("sha256:")


# -- the stage an attestation claims, for messages ---------------------------------------
@pytest.mark.parametrize(
    ("name", "claimed"),
    [
        ("train.0123abcd.sigstore.json", "train"),
        ("train", "train"),
        ("split.a.b.c", "split"),
        (".sigstore.json", None),
    ],
)
def test_unreadable_attestation(signed_run: Pipeline, name: str, claimed: str | None) -> None:
    stored = StoredAttestation(Path("/nowhere") / name, None, f"{name}: not JSON")
    assert claimed_stage(stored) == claimed
    accepted, report = _admit(signed_run, stored)
    assert accepted is None
    assert report.failures == [
        Failure(
            Check.ATTESTATION_MALFORMED,
            claimed,
            f"unreadable attestation: {name}: not JSON",
            remedy=RESIGN,
            source=name,
        )
    ]


def test_the_claimed_stage_is_the_payloads_before_the_file_name(signed_run: Pipeline) -> None:
    # An unknown key signed a train statement stored under another stage's file name.
    stored = _signed(
        signed_run,
        canonical(_statement(signed_run, "train")),
        "intruder",
        name="package.ffffffff.sigstore.json",
    )
    assert claimed_stage(stored) == "train"
    _, report = _admit(signed_run, stored)
    assert [(f.check, f.stage, f.expected) for f in report.failures] == [
        (Check.SIGNER_NOT_ALLOWED, "train", TRAIN_SIGNERS)
    ]


# -- who signed it ----------------------------------------------------------------------
def test_a_payload_altered_after_signing_fails_the_signature_of_its_named_key(
    signed_run: Pipeline,
) -> None:
    keyid = signed_run.keys["ml-engineer"].keyid
    stored = _altered(signed_run, "train", "own", name="train.altered.sigstore.json")
    accepted, report = _admit(signed_run, stored)
    assert accepted is None
    assert report.failures == [
        Failure(
            Check.SIGNATURE,
            "train",
            "signature does not verify (payload or signature altered)",
            expected=f"a valid signature by key {keyid[:16]}",
            found="signature invalid over the DSSE payload",
            remedy="the attestation was modified after signing; re-run and re-sign the stage",
            source="train.altered.sigstore.json",
        )
    ]


UNKNOWN_KEY = "sign the stage with a functionary key listed for it in the policy"


@pytest.mark.parametrize(
    ("stage", "hint", "expected", "found"),
    [
        ("train", "f" * 64, TRAIN_SIGNERS, "key " + "f" * 16),
        ("train", "abc", TRAIN_SIGNERS, "key abc"),
        ("train", None, TRAIN_SIGNERS, "key unknown"),
        ("train", "", TRAIN_SIGNERS, "key unknown"),
        ("ingest", "e" * 64, "a signature by data-engineer", "key " + "e" * 16),
    ],
)
def test_a_signature_no_policy_key_verifies(
    signed_run: Pipeline, stage: str, hint: str | None, expected: str, found: str
) -> None:
    stored = _altered(signed_run, stage, hint, name=f"{stage}.unknown.sigstore.json")
    accepted, report = _admit(signed_run, stored)
    assert accepted is None
    assert report.failures == [
        Failure(
            Check.SIGNER_NOT_ALLOWED,
            stage,
            "signed by a key the policy does not know",
            expected=expected,
            found=found,
            remedy=UNKNOWN_KEY,
            source=f"{stage}.unknown.sigstore.json",
        )
    ]


def test_an_intruders_key_is_a_key_the_policy_does_not_know(signed_run: Pipeline) -> None:
    intruder = signed_run.keys["intruder"].keyid
    stored = _edited(signed_run, "ingest", "intruder", lambda s: None, name="x.sigstore.json")
    accepted, report = _admit(signed_run, stored)
    assert accepted is None
    assert report.failures == [
        Failure(
            Check.SIGNER_NOT_ALLOWED,
            "ingest",
            "signed by a key the policy does not know",
            expected="a signature by data-engineer",
            found=f"key {intruder[:16]}",
            remedy=UNKNOWN_KEY,
            source="x.sigstore.json",
        )
    ]


def test_keyless_bundle_against_a_policy_without_sigstore_identities(
    signed_run: Pipeline,
) -> None:
    stored = _stored(signed_run, "ingest")
    assert stored.bundle is not None
    doc = stored.bundle.to_json()
    doc["verificationMaterial"] = {"certificate": {"rawBytes": "AAAA"}, "tlogEntries": []}
    keyless = StoredAttestation(Path("ingest.keyless.sigstore.json"), Bundle.from_json(doc))
    accepted, report = _admit(signed_run, keyless)
    assert accepted is None
    assert report.failures == [
        Failure(
            Check.SIGNATURE,
            "ingest",
            "keyless signature does not verify: signed keyless (a Sigstore certificate), "
            "but the policy names no Sigstore identities",
            expected="a signature by data-engineer, certified and logged by the policy's "
            "Sigstore instance (none named)",
            found="a bundle that fails offline Sigstore verification",
            remedy="sign with a functionary key, or add the signer's Sigstore identity and "
            "trust.sigstore to the policy",
            source="ingest.keyless.sigstore.json",
        )
    ]


# -- what it says -----------------------------------------------------------------------
def test_a_signed_payload_of_another_type(signed_run: Pipeline) -> None:
    payload = canonical(_statement(signed_run, "ingest"))
    stored = _signed(
        signed_run, payload, "data-engineer", name="t.sigstore.json", payload_type="text/plain"
    )
    accepted, report = _admit(signed_run, stored)
    assert accepted is None
    assert report.failures == [
        Failure(
            Check.ATTESTATION_MALFORMED,
            "ingest",
            "payloadType 'text/plain' is not an in-toto statement",
            expected=INTOTO_PAYLOAD_TYPE,
            found="text/plain",
            remedy="only in-toto attestations count as stage evidence",
            source="t.sigstore.json",
        )
    ]


def test_a_signed_payload_that_is_no_stage_statement(signed_run: Pipeline) -> None:
    def drop_metadata(statement: dict[str, Any]) -> None:
        del statement["predicate"]["byproducts"]["mlspec"]

    stored = _edited(signed_run, "split", "data-engineer", drop_metadata, name="s.sigstore.json")
    with pytest.raises(Exception) as raised:
        StageStatement.from_payload(stored.bundle.envelope.payload, what="s.sigstore.json")  # type: ignore[union-attr]
    message = str(getattr(raised.value, "message", raised.value))
    assert message.startswith("s.sigstore.json")
    accepted, report = _admit(signed_run, stored)
    assert accepted is None
    assert report.failures == [
        Failure(
            Check.ATTESTATION_MALFORMED,
            "split",
            message,
            remedy="re-sign the stage with this version of mlspec-attest",
            source="s.sigstore.json",
        )
    ]


def test_a_stage_the_policy_does_not_have_is_ignored_with_a_note(signed_run: Pipeline) -> None:
    def rename(statement: dict[str, Any]) -> None:
        statement["predicate"]["name"] = "notes"
        _mlspec(statement)["stage"] = "notes"

    stored = _edited(signed_run, "ingest", "data-engineer", rename, name="n.sigstore.json")
    accepted, report = _admit(signed_run, stored)
    assert accepted is None
    assert report.failures == []
    assert report.notes == ["n.sigstore.json: stage 'notes' is not in the policy; ignored"]


# -- what it is bound to ----------------------------------------------------------------
OTHER_DIGEST = "sha256:" + "0" * 64


def _run_b(statement: dict[str, Any]) -> None:
    _mlspec(statement)["runId"] = "run-b"


def _kind(statement: dict[str, Any]) -> None:
    _mlspec(statement)["kind"] = "custom"


def _other_policy(statement: dict[str, Any]) -> None:
    _mlspec(statement)["policyDigest"] = OTHER_DIGEST


def _unbound(statement: dict[str, Any]) -> None:
    _mlspec(statement).pop("policyDigest", None)


def _failure(p: Pipeline, case: str, source: str) -> Failure:
    digest = p.signed.digest
    return {
        "signer": Failure(
            Check.SIGNER_NOT_ALLOWED,
            "ingest",
            "signed by 'ml-engineer', who may not sign this stage",
            expected="a signature by data-engineer",
            found="functionary 'ml-engineer'",
            remedy="have an allowed functionary re-sign the stage, or change the policy",
            source=source,
        ),
        "run": Failure(
            Check.RUN_ID,
            "ingest",
            "attestation belongs to another pipeline run",
            expected="run run-a",
            found="run run-b",
            remedy="remove attestations copied from other runs; re-sign the stage in this run",
            source=source,
        ),
        "unbound": Failure(
            Check.POLICY_DIGEST,
            "ingest",
            "attestation is not bound to a policy, and this policy requires it",
            expected=digest,
            found="no policyDigest",
            remedy="sign the stage with policy (or MLSPEC_ATTEST_POLICY)",
            source=source,
        ),
        "other-policy": Failure(
            Check.POLICY_DIGEST,
            "ingest",
            "attestation was made for a different policy",
            expected=digest,
            found=OTHER_DIGEST,
            remedy="re-sign the stage with policy pointing at the current signed policy",
            source=source,
        ),
        "kind": Failure(
            Check.STAGE_KIND,
            "ingest",
            "stage kind differs from the policy",
            expected="ingest",
            found="custom",
            remedy="sign with kind='ingest'",
            source=source,
        ),
    }[case]


@pytest.mark.parametrize(
    ("strict", "role", "edits", "cases"),
    [
        (False, "ml-engineer", [], ["signer"]),
        (False, "data-engineer", [_run_b], ["run"]),
        (False, "data-engineer", [_kind], ["kind"]),
        (False, "data-engineer", [_other_policy], ["other-policy"]),
        (True, "data-engineer", [_other_policy], ["other-policy"]),
        (False, "data-engineer", [_unbound], []),  # not required: admitted
        (True, "data-engineer", [_unbound], ["unbound"]),
        (True, "data-engineer", [], []),
        # every binding is checked, and each failure reported, not just the first
        (True, "ml-engineer", [_run_b, _unbound, _kind], ["signer", "run", "unbound", "kind"]),
        (False, "ml-engineer", [_run_b, _other_policy], ["signer", "run", "other-policy"]),
    ],
)
def test_bindings(
    signed_run: Pipeline,
    strict_run: Pipeline,
    strict: bool,
    role: str,
    edits: list[Edit],
    cases: list[str],
) -> None:
    p = strict_run if strict else signed_run

    def edit(statement: dict[str, Any]) -> None:
        for one in edits:
            one(statement)

    source = f"ingest.{role}.sigstore.json"
    stored = _edited(p, "ingest", role, edit, name=source)
    accepted, report = _admit(p, stored)
    assert report.failures == [_failure(p, case, source) for case in cases]
    assert (accepted is None) is bool(cases)
    if accepted is not None:
        assert accepted.functionary.name == role
        assert accepted.source == stored.path


def test_admission_reads_the_policy_it_was_given(signed_run: Pipeline) -> None:
    signed: SignedPolicy = load_signed_policy(signed_run.signed_policy_path)
    report = VerificationReport(signed.policy.name, signed.digest, "run-a", "now")
    admission = Admission(signed, SignerLookup(signed.policy), "run-a", VERIFY_NOW, report)
    assert admission.policy is signed.policy
    assert admission.run_id == "run-a" and admission.now == VERIFY_NOW


# -- keyless: the loopback Sigstore instance ----------------------------------------------
def _keyless_admit(ws: Workspace, path: Path) -> tuple[AcceptedAttestation | None, list[Failure]]:
    signed = load_signed_policy(ws.signed_policy)
    report = VerificationReport(signed.policy.name, signed.digest, "run-1", "now")
    admission = Admission(signed, SignerLookup(signed.policy), "run-1", VERIFY_NOW, report)
    stored = StoredAttestation(path, Bundle.from_json(json.loads(path.read_bytes())))
    return admission.accept(stored), report.failures


def test_keyless_refusals(
    tmp_path: Path,
    sigstore_instance: SigstoreInstance,
    sigstore_instance_factory: Callable[[str], SigstoreInstance],
    keys: dict[str, KeyPair],
    cli: Cli,
) -> None:
    root = tmp_path / "pipeline"
    (root / "data").mkdir(parents=True)
    (root / "data/raw.csv").write_text("x,y\n1,2\n3,4\n")
    (root / "model.bin").write_bytes(b"\x00weights\x01")
    ws = make_workspace(root, KEYLESS_POLICY, sigstore_instance, keys, cli)
    trust = load_signed_policy(ws.signed_policy).policy.sigstore_trust
    assert trust is not None
    runs = ws.store / "runs" / "run-1"
    trainer = "a signature by trainer"

    # admitted: alice may sign ingest
    ws.sign("ingest", "alice@example.com", products=("data/raw.csv",))
    [ingest] = runs.glob("ingest.*.sigstore.json")
    accepted, failures = _keyless_admit(ws, ingest)
    assert failures == []
    assert accepted is not None and accepted.functionary.name == "data-engineer"

    # an identity the policy does not know
    ws.sign("train", "eve@example.com", materials=("data/raw.csv",), products=("model.bin",))
    [eve] = runs.glob("train.*.sigstore.json")
    accepted, failures = _keyless_admit(ws, eve)
    assert accepted is None
    assert failures == [
        Failure(
            Check.SIGNER_NOT_ALLOWED,
            "train",
            "signed by a Sigstore identity the policy does not allow",
            expected=trainer,
            found=f"eve@example.com (issuer {OIDC_ISSUER})",
            remedy="sign with an identity listed for the stage, or change the policy",
            source=eve.name,
        )
    ]
    eve.unlink()

    # a bundle certified by another instance
    other = sigstore_instance_factory("other")
    ws.sign(
        "train",
        "bob@example.com",
        instance=other,
        materials=("data/raw.csv",),
        products=("model.bin",),
    )
    [foreign] = runs.glob("train.*.sigstore.json")
    accepted, failures = _keyless_admit(ws, foreign)
    assert accepted is None
    [failure] = failures
    assert failure.message.startswith("keyless signature does not verify: ")
    assert len(failure.message) > len("keyless signature does not verify: ")
    assert failure == Failure(
        Check.SIGNATURE,
        "train",
        failure.message,
        expected=f"{trainer}, certified and logged by the policy's Sigstore instance "
        f"({trust.source})",
        found="a bundle that fails offline Sigstore verification",
        remedy=failure.remedy,
        source=foreign.name,
    )
    assert trust.source and "none named" not in failure.expected
    assert failure.remedy

    # a certificate that is not one: malformed
    doc = json.loads(foreign.read_bytes())
    doc["verificationMaterial"]["certificate"]["rawBytes"] = "AAAA"
    foreign.write_bytes(canonical(doc))
    accepted, failures = _keyless_admit(ws, foreign)
    assert accepted is None
    [failure] = failures
    assert failure.check is Check.ATTESTATION_MALFORMED
    assert failure.message.startswith(f"{foreign.name}: ")
    assert failure == Failure(
        Check.ATTESTATION_MALFORMED, "train", failure.message, remedy=RESIGN, source=foreign.name
    )


SHARED_IDENTITY_POLICY = KEYLESS_POLICY.replace(
    "functionaries:\n  data-engineer:",
    "functionaries:\n  auditor:\n    sigstore:\n      issuer: {issuer}\n"
    "      identity: alice@example.com\n  data-engineer:",
    1,
)


def test_a_shared_keyless_identity_signs_as_the_functionary_allowed_for_the_stage(
    tmp_path: Path, sigstore_instance: SigstoreInstance, keys: dict[str, KeyPair], cli: Cli
) -> None:
    root = tmp_path / "pipeline"
    (root / "data").mkdir(parents=True)
    (root / "data/raw.csv").write_text("x,y\n1,2\n3,4\n")
    ws = make_workspace(root, SHARED_IDENTITY_POLICY, sigstore_instance, keys, cli)
    assert list(load_signed_policy(ws.signed_policy).policy.functionaries)[:2] == [
        "auditor",
        "data-engineer",
    ]
    ws.sign("ingest", "alice@example.com", products=("data/raw.csv",))
    [ingest] = (ws.store / "runs" / "run-1").glob("ingest.*.sigstore.json")
    accepted, failures = _keyless_admit(ws, ingest)
    assert failures == []
    assert accepted is not None and accepted.functionary.name == "data-engineer"
