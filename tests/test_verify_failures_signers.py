"""Who signed (verify/signers.py), at the edges the honest pipelines do not reach.

* two functionaries sharing one key: the one allowed to sign the claimed stage is the
  signer, whatever the order of the policy;
* a keyless bundle under a policy that has a Sigstore trust root but no Sigstore
  functionary: refused before any verification, the trust root named in the record;
* the time the transparency log vouches for bounds the signed finish time of a keyless
  stage attestation (the lookup keeps it per attestation file for admission).

Real keys, real signatures, the loopback Sigstore instance for keyless signing.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlspec_attest.attestation.signers import KeylessOptions, stage_signer
from mlspec_attest.attestation.stage import StageRecord, sign_stage
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.policy import load_signed_policy
from mlspec_attest.policy.signed import SignedPolicy
from mlspec_attest.store.ledger import AttestationStore, StoredAttestation
from mlspec_attest.verify.admission import Admission
from mlspec_attest.verify.report import Check, Failure, VerificationReport
from mlspec_attest.verify.signers import SignerLookup

from .cli.conftest import Cli, cli
from .sigstore.instance import SigstoreInstance, sigstore_instance, sigstore_instance_factory
from .sigstore.test_keyless import POLICY as KEYLESS_POLICY
from .sigstore.test_keyless import make_workspace
from .support import ASSETS_DIR, VERIFY_NOW, KeyPair, Pipeline

# Fixtures of the keyless cases: the in-process CLI and the loopback Sigstore instance.
__all__ = ["cli", "sigstore_instance", "sigstore_instance_factory"]


def _admission(signed: SignedPolicy, run_id: str) -> tuple[Admission, VerificationReport]:
    report = VerificationReport(signed.policy.name, signed.digest, run_id, "now")
    return Admission(signed, SignerLookup(signed.policy), run_id, VERIFY_NOW, report), report


def _stored(path: Path) -> StoredAttestation:
    return StoredAttestation(path, Bundle.from_json(json.loads(path.read_bytes())))


# -- a key two functionaries share --------------------------------------------------------
@pytest.fixture(scope="module")
def shared_key(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> Pipeline:
    """The honest run under a policy whose first functionary, ``archivist``, holds the
    data engineer's key but may sign no stage."""
    p = Pipeline(tmp_path_factory.mktemp("shared"), keys)
    text = p.policy_text(expires="2099-01-01T00:00:00Z").replace(
        "functionaries:\n  data-engineer:",
        "functionaries:\n  archivist:\n    key: keys/data-engineer.pub\n  data-engineer:",
        1,
    )
    p.policy_yaml.write_text(text)
    p.sign_policy()
    assert list(p.signed.policy.functionaries)[:2] == ["archivist", "data-engineer"]
    return p.run()


def test_a_shared_key_signs_as_the_functionary_allowed_for_the_stage(
    shared_key: Pipeline,
) -> None:
    report = shared_key.verify()
    assert report.failures == []
    assert [(s.name, list(s.signers)) for s in report.stages][:2] == [
        ("ingest", ["data-engineer"]),
        ("split", ["data-engineer"]),
    ]


@pytest.mark.parametrize(
    ("claimed", "signer"),
    [
        ("ingest", "data-engineer"),
        ("split", "data-engineer"),
        ("train", "archivist"),
        (None, "archivist"),
    ],
)
def test_the_lookup_of_a_shared_key(shared_key: Pipeline, claimed: str | None, signer: str) -> None:
    lookup = SignerLookup(shared_key.signed.policy)
    bundle = _stored(shared_key.bundle_path("ingest")).bundle
    assert bundle is not None
    found = lookup.by_key(bundle, claimed)
    assert found is not None and found.name == signer
    assert found.keyid == shared_key.keys["data-engineer"].keyid


def test_the_lookup_tries_only_the_key_the_hint_names(shared_key: Pipeline) -> None:
    lookup = SignerLookup(shared_key.signed.policy)
    bundle = _stored(shared_key.bundle_path("train", "ml-engineer")).bundle
    assert bundle is not None
    found = lookup.by_key(bundle, "train")
    assert found is not None and found.name == "ml-engineer"
    doc = bundle.to_json()
    doc["verificationMaterial"]["publicKey"]["hint"] = shared_key.keys["ml-reviewer"].keyid
    assert lookup.by_key(Bundle.from_json(doc), "train") is None
    doc["verificationMaterial"]["publicKey"]["hint"] = "0" * 64  # names nobody: all are tried
    found = lookup.by_key(Bundle.from_json(doc), "train")
    assert found is not None and found.name == "ml-engineer"


# -- a trust root without Sigstore functionaries ------------------------------------------
def test_a_keyless_bundle_under_a_policy_without_sigstore_functionaries(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    p = Pipeline(tmp_path / "p", keys)
    shutil.copy(
        ASSETS_DIR / "sigstore/trust/sigstore-4.5.1-embedded/production/trusted_root.json",
        p.root / "trusted_root.json",
    )
    p.policy_yaml.write_text(
        p.policy_text(expires="2099-01-01T00:00:00Z").replace(
            "stages:\n", "trust:\n  sigstore:\n    trustedRoot: trusted_root.json\nstages:\n", 1
        )
    )
    signed = p.sign_policy()
    trust = signed.policy.sigstore_trust
    assert trust is not None and trust.source
    p.sign("ingest")
    doc = json.loads(p.bundle_path("ingest").read_bytes())
    doc["verificationMaterial"] = {"certificate": {"rawBytes": "AAAA"}, "tlogEntries": []}
    stored = StoredAttestation(Path("ingest.keyless.sigstore.json"), Bundle.from_json(doc))
    admission, report = _admission(signed, "run-a")
    assert admission.accept(stored) is None
    assert report.failures == [
        Failure(
            Check.SIGNATURE,
            "ingest",
            "keyless signature does not verify: signed keyless (a Sigstore certificate), "
            "but the policy names no Sigstore identities",
            expected="a signature by data-engineer, certified and logged by the policy's "
            f"Sigstore instance ({trust.source})",
            found="a bundle that fails offline Sigstore verification",
            remedy="sign with a functionary key, or add the signer's Sigstore identity and "
            "trust.sigstore to the policy",
            source="ingest.keyless.sigstore.json",
        )
    ]


# -- the log's time bounds the signed finish ----------------------------------------------
@pytest.mark.parametrize("finished", ["2025-01-01T00:00:00Z", "2090-01-01T00:00:00Z"])
def test_a_keyless_stage_may_not_finish_after_its_signature_was_logged(
    tmp_path: Path,
    sigstore_instance: SigstoreInstance,
    keys: dict[str, KeyPair],
    cli: Cli,
    finished: str,
) -> None:
    root = tmp_path / "pipeline"
    (root / "data").mkdir(parents=True)
    (root / "data/raw.csv").write_text("x,y\n1,2\n3,4\n")
    ws = make_workspace(root, KEYLESS_POLICY, sigstore_instance, keys, cli)
    signed = load_signed_policy(ws.signed_policy)
    signer = stage_signer(
        keyless=KeylessOptions(
            identity_token=sigstore_instance.token("alice@example.com"),
            trust_config=sigstore_instance.trust_config_path,
        )
    )
    record = StageRecord(
        "ingest",
        products=[root / "data/raw.csv"],
        policy_digest=signed.digest,
        started_on=finished,
    )
    result = sign_stage(
        record,
        signer,
        AttestationStore(ws.store),
        run_id="run-1",
        base_dir=root,
        clock=lambda: finished,
    )
    path = Path(result.path)
    [entry] = json.loads(path.read_bytes())["verificationMaterial"]["tlogEntries"]
    logged = datetime.fromtimestamp(int(entry["integratedTime"]), tz=UTC)
    admission, report = _admission(signed, "run-1")
    accepted = admission.accept(_stored(path))
    if finished < format_rfc3339(logged):
        assert report.failures == []
        assert accepted is not None and accepted.functionary.name == "data-engineer"
        return
    assert accepted is None
    assert report.failures == [
        Failure(
            Check.SIGNED_TIME,
            "ingest",
            "signed times are inconsistent: claims to have finished after its signature was logged",
            expected=f"finishedOn at most {format_rfc3339(logged)} (+ skew)",
            found=finished,
            remedy="check the signing machine's clock and re-sign the stage",
            source=path.name,
        )
    ]
