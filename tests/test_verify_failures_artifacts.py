"""Deploy artifacts (verify/artifacts.py): every refusal as the whole record, and each summary.

The honest four-stage run of tests/support.py is verified against deploy paths that are
missing, not given, of other bytes, a file where a directory was attested (and the other
way round), a directory with one file changed, and against copies of the store without
the package attestation, without the manifest blob, or with a package attestation
(signed for real) whose digest this verifier cannot recompute.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.attestation.stage import StageRecord, sign_stage
from mlspec_attest.digest.artifact import digest_path
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.formats.jsonio import canonical, load_file
from mlspec_attest.interop.oms.signature import KeyTrust, oms_evidence
from mlspec_attest.policy import load_signed_policy
from mlspec_attest.policy.signed import parse_signed_policy
from mlspec_attest.signing.keys import load_private_key, load_public_key
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.oms_evidence import check_oms_evidence
from mlspec_attest.verify.pipeline import verify_pipeline
from mlspec_attest.verify.report import ArtifactSummary, Check, Failure, VerificationReport

from .interop.test_oms_evidence import workspace
from .support import VERIFY_NOW, KeyPair, Pipeline

# The model-signing case's fixture: a model, its OMS signature and a one-stage policy.
__all__ = ["workspace"]

MISMATCH_REMEDY = (
    "do not deploy: the bytes on disk are not the attested ones; rebuild through the pipeline"
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> Pipeline:
    """The honest run (read only: tests copy what they change)."""
    return Pipeline(tmp_path_factory.mktemp("deploy"), keys).run()


def _verify(
    p: Pipeline, artifacts: dict[str, Path], store: AttestationStore | None = None
) -> VerificationReport:
    return verify_pipeline(
        load_signed_policy(p.signed_policy_path),
        [p.keys["owner"].public],
        store or p.store,
        run_id=p.run_id,
        artifacts=artifacts,
        now=VERIFY_NOW,
    )


def _attested(p: Pipeline, stage: str, product: str) -> dict[str, str]:
    doc = json.loads(p.bundle_path(stage).read_bytes())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    [subject] = [s for s in statement["subject"] if s["name"] == product]
    digest: dict[str, str] = subject["digest"]
    return digest


def _copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    return dst


def test_honest_deploy_artifacts_are_summarised_in_role_order(run: Pipeline) -> None:
    paths = run.deploy_artifacts()
    report = _verify(run, {"train-data": paths["train-data"], "model": paths["model"]})
    assert report.failures == []
    assert report.artifacts == [
        ArtifactSummary(
            "model",
            str(paths["model"]),
            "ok",
            _attested(run, "package", "dist/model"),
            attested=_attested(run, "package", "dist/model"),
        ),
        ArtifactSummary(
            "train-data",
            str(paths["train-data"]),
            "ok",
            _attested(run, "split", "data/split/train.csv"),
            attested=_attested(run, "split", "data/split/train.csv"),
        ),
    ]


def test_a_required_artifact_not_given(run: Pipeline) -> None:
    paths = run.deploy_artifacts()
    report = _verify(run, {"train-data": paths["train-data"]})
    assert report.failures == [
        Failure(
            Check.ARTIFACT_MISSING,
            "package",
            "deploy artifact 'model' was not supplied",
            expected="artifacts['model'] (product dist/model of package)",
            found="not given",
            remedy="pass artifacts['model'] to verify the bytes you deploy",
        )
    ]
    # Not given, but what the pipeline attested is still known (a FAILED summary names it).
    assert report.artifacts[0] == ArtifactSummary(
        "model", None, "not-checked", attested=_attested(run, "package", "dist/model")
    )
    assert report.artifacts[1].status == "ok"


def test_an_optional_artifact_not_given_is_not_a_failure(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    p = Pipeline(tmp_path / "optional", keys)
    p.policy_yaml.write_text(
        p.policy_text(expires="2099-01-01T00:00:00Z").replace(
            "      product: dist/model\n", "      product: dist/model\n      required: false\n", 1
        )
    )
    p.sign_policy()
    assert not p.signed.policy.deploy["model"].required
    p.run()
    report = _verify(p, {"train-data": p.deploy_artifacts()["train-data"]})
    assert report.failures == []
    assert report.artifacts == [
        ArtifactSummary(
            "model", None, "not-checked", attested=_attested(p, "package", "dist/model")
        ),
        ArtifactSummary(
            "train-data",
            str(p.deploy_artifacts()["train-data"]),
            "ok",
            _attested(p, "split", "data/split/train.csv"),
            attested=_attested(p, "split", "data/split/train.csv"),
        ),
    ]


def test_a_path_that_is_not_there(run: Pipeline, tmp_path: Path) -> None:
    paths = run.deploy_artifacts()
    gone = tmp_path / "no-model"
    report = _verify(run, {**paths, "model": gone})
    [failure] = report.failures
    assert failure.message.startswith("deploy artifact 'model': ")
    assert str(gone) in failure.message
    assert failure == Failure(
        Check.ARTIFACT_MISSING,
        "package",
        failure.message,
        expected=f"a readable file or directory at {gone}",
        found="missing",
        remedy="pass the path of the artifact you are about to deploy",
    )
    assert report.artifacts[0] == ArtifactSummary(
        "model", str(gone), "missing", attested=_attested(run, "package", "dist/model")
    )


def test_a_file_of_other_bytes(run: Pipeline, tmp_path: Path) -> None:
    paths = run.deploy_artifacts()
    other = _copy(paths["train-data"], tmp_path / "train.csv")
    other.write_bytes(other.read_bytes() + b"99,99.9,999\n")
    actual = hashlib.sha256(other.read_bytes()).hexdigest()
    attested = _attested(run, "split", "data/split/train.csv")
    report = _verify(run, {**paths, "train-data": other})
    assert report.failures == [
        Failure(
            Check.ARTIFACT_MISMATCH,
            "split",
            f"deploy artifact 'train-data' at {other} differs from what 'split' attested",
            expected=f"sha256 {attested['sha256']}",
            found=f"sha256 {actual}; file content differs",
            remedy=MISMATCH_REMEDY,
        )
    ]
    assert report.artifacts[1] == ArtifactSummary(
        "train-data",
        str(other),
        "mismatch",
        {"sha256": actual},
        attested=_attested(run, "split", "data/split/train.csv"),
    )


def test_a_file_where_a_directory_was_attested_and_the_other_way_round(
    run: Pipeline, tmp_path: Path
) -> None:
    paths = run.deploy_artifacts()
    a_file = _copy(paths["train-data"], tmp_path / "model-file")
    a_dir = _copy(paths["model"], tmp_path / "data-dir")
    model = _attested(run, "package", "dist/model")
    key = "sha256"  # the scheme's key; a directory also records "manifest-sha256"
    assert set(model) == {key, "manifest-sha256"}
    file_digest = digest_path(a_file).digest_set()
    dir_digest = digest_path(a_dir).digest_set()
    report = _verify(run, {"model": a_file, "train-data": a_dir})
    assert report.failures == [
        Failure(
            Check.ARTIFACT_MISMATCH,
            "package",
            f"deploy artifact 'model' at {a_file} differs from what 'package' attested",
            expected=f"{key} {model[key]}",
            found=f"{key} {file_digest['sha256']}; attested a directory, found a file",
            remedy=MISMATCH_REMEDY,
        ),
        Failure(
            Check.ARTIFACT_MISMATCH,
            "split",
            f"deploy artifact 'train-data' at {a_dir} differs from what 'split' attested",
            expected=f"sha256 {_attested(run, 'split', 'data/split/train.csv')['sha256']}",
            found=f"sha256 {dir_digest[key]}; attested a file, found a directory",
            remedy=MISMATCH_REMEDY,
        ),
    ]
    assert [(a.status, a.digest, a.files) for a in report.artifacts] == [
        ("mismatch", file_digest, None),
        ("mismatch", dir_digest, None),
    ]


def test_a_directory_with_one_file_changed(run: Pipeline, tmp_path: Path) -> None:
    paths = run.deploy_artifacts()
    model = _copy(paths["model"], tmp_path / "model")
    (model / "config.json").write_bytes(b'{"max_depth": 5}\n')
    attested = _attested(run, "package", "dist/model")
    key = "sha256"
    actual = digest_path(model).digest_set()
    report = _verify(run, {**paths, "model": model})
    [failure] = report.failures
    assert failure == Failure(
        Check.ARTIFACT_MISMATCH,
        "package",
        f"deploy artifact 'model' at {model} differs from what 'package' attested",
        expected=f"{key} {attested[key]}",
        found=f"{key} {actual[key]}; changed: config.json",
        remedy=MISMATCH_REMEDY,
    )
    assert failure.found.endswith("; changed: config.json")
    summary = report.artifacts[0]
    assert (summary.status, summary.digest) == ("mismatch", actual)
    assert summary.files == {"added": [], "removed": [], "changed": ["config.json"]}


def _store_copy(p: Pipeline, tmp_path: Path) -> AttestationStore:
    return AttestationStore(_copy(p.store_path, tmp_path / "store"))


def test_a_directory_whose_manifest_is_not_in_the_store(run: Pipeline, tmp_path: Path) -> None:
    paths = run.deploy_artifacts()
    store = _store_copy(run, tmp_path)
    attested = _attested(run, "package", "dist/model")
    (store.root / "blobs" / "sha256" / attested["manifest-sha256"]).unlink()
    model = _copy(paths["model"], tmp_path / "model")
    (model / "MANIFEST").write_bytes(b"weights.bin\n")
    report = _verify(run, {**paths, "model": model}, store)
    mismatches = [f for f in report.failures if f.check is Check.ARTIFACT_MISMATCH]
    assert [f.found.split("; ", 1)[1] for f in mismatches] == [
        "directory content differs (attested manifest not in store)"
    ]
    assert report.artifacts[0].files is None


def test_a_model_whose_stage_has_no_valid_attestation(run: Pipeline, tmp_path: Path) -> None:
    paths = run.deploy_artifacts()
    store = _store_copy(run, tmp_path)
    [package] = store.run_dir(run.run_id).glob("package.*")
    package.unlink()
    report = _verify(run, paths, store)
    assert [f for f in report.failures if f.check is Check.ARTIFACT_MISMATCH] == [
        Failure(
            Check.ARTIFACT_MISMATCH,
            "package",
            "deploy artifact 'model' was not compared: stage 'package' has no verified attestation",
            expected="product dist/model in a valid package attestation",
            found="stage package not verified",
            remedy="fix the stage failures above first",
        )
    ]
    assert report.artifacts[0] == ArtifactSummary(
        "model",
        str(paths["model"]),
        "stage-not-verified",
        digest_path(paths["model"]).digest_set(),
    )
    causes = {f.check: why for f, why in report.classified_failures()}
    assert causes[Check.STAGE_MISSING] == ""  # the root cause: nothing was attested
    assert causes[Check.ARTIFACT_MISMATCH] == "stage 'package' was not verified"


def _resign_package(p: Pipeline, store: AttestationStore, edit: Any) -> None:
    [path] = store.run_dir(p.run_id).glob("package.*")
    doc = json.loads(path.read_bytes())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    edit(statement)
    key = p.keys["release-engineer"]
    envelope = Envelope.sign(canonical(statement), INTOTO_PAYLOAD_TYPE, [key.signer])
    path.write_bytes(canonical(Bundle.for_public_key(envelope, key.keyid).to_json()))


def test_a_digest_this_verifier_cannot_recompute(run: Pipeline, tmp_path: Path) -> None:
    store = _store_copy(run, tmp_path)

    def md5(statement: dict[str, Any]) -> None:
        for subject in statement["subject"]:
            subject["digest"] = {"sha1": "0" * 40, "md5": "0" * 32}

    _resign_package(run, store, md5)
    report = _verify(run, run.deploy_artifacts(), store)
    [failure] = [f for f in report.failures if f.check is Check.ARTIFACT_MISMATCH]
    assert failure.message.startswith("deploy artifact 'model': ")
    assert len(failure.message) > len("deploy artifact 'model': ")
    assert failure == Failure(
        Check.ARTIFACT_MISMATCH,
        "package",
        failure.message,
        expected="a digest this verifier can recompute",
        found="md5, sha1",
        remedy="re-sign the artifact with sha256, blake2b or blake3",
    )
    assert report.artifacts[0] == ArtifactSummary(
        "model",
        str(run.deploy_artifacts()["model"]),
        "mismatch",
        attested={"sha1": "0" * 40, "md5": "0" * 32},
    )


def test_a_directory_whose_stored_manifest_is_no_manifest(run: Pipeline, tmp_path: Path) -> None:
    """A package attestation (signed for real) naming, as its directory's manifest, a blob
    of the store that is not a manifest."""
    paths = run.deploy_artifacts()
    store = _store_copy(run, tmp_path)
    other = store.put_blob(b'{"not": "a manifest"}')

    def renamed(statement: dict[str, Any]) -> None:
        [subject] = [s for s in statement["subject"] if s["name"] == "dist/model"]
        subject["digest"]["manifest-sha256"] = other

    _resign_package(run, store, renamed)
    model = _copy(paths["model"], tmp_path / "model")
    (model / "MANIFEST").write_bytes(b"weights.bin\n")
    report = _verify(run, {**paths, "model": model}, store)
    [mismatch] = [f for f in report.failures if f.check is Check.ARTIFACT_MISMATCH]
    assert mismatch.found.endswith("; directory content differs (stored manifest unreadable)")
    assert report.artifacts[0].files is None


def test_a_digest_too_finely_sharded_to_recompute(run: Pipeline, tmp_path: Path) -> None:
    """A signed shard size of one byte over a model of 300 000 bytes: more shards than the
    engine makes for a signed document."""
    store = _store_copy(run, tmp_path)

    def sharded(statement: dict[str, Any]) -> None:
        [subject] = [s for s in statement["subject"] if s["name"] == "dist/model"]
        subject["digest"] = {"sha256-sharded-1": "0" * 64, "md5": "0" * 32}

    _resign_package(run, store, sharded)
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x01" * 300_000)
    report = _verify(run, {**run.deploy_artifacts(), "model": model}, store)
    [failure] = [f for f in report.failures if f.check is Check.ARTIFACT_MISMATCH]
    prefix = "deploy artifact 'model' cannot be re-hashed as attested: "
    assert failure.message.startswith(prefix)
    assert "300000 shards of 1 bytes" in failure.message
    assert failure == Failure(
        Check.ARTIFACT_MISMATCH,
        "package",
        failure.message,
        expected="a digest this verifier can recompute within its limits",
        found="md5, sha256-sharded-1",
        remedy=failure.remedy,
    )
    assert failure.remedy.startswith("use a larger shard size")
    assert report.artifacts[0] == ArtifactSummary(
        "model", str(model), "mismatch", attested={"sha256-sharded-1": "0" * 64, "md5": "0" * 32}
    )


class _Progress:
    def __init__(self) -> None:
        self.tasks: list[tuple[str, int, int | None]] = []
        self.hashed = 0

    def begin(self, label: str, files: int, total_bytes: int | None) -> None:
        self.tasks.append((label, files, total_bytes))

    def advance(self, nbytes: int, files: int = 0) -> None:
        self.hashed += nbytes

    def end(self) -> None:
        pass


def test_rehashing_reports_its_progress(run: Pipeline) -> None:
    paths = run.deploy_artifacts()
    progress = _Progress()
    report = verify_pipeline(
        load_signed_policy(run.signed_policy_path),
        [run.keys["owner"].public],
        run.store,
        run_id=run.run_id,
        artifacts=paths,
        now=VERIFY_NOW,
        progress=progress,
    )
    assert report.failures == []
    size = sum(p.stat().st_size for p in paths["model"].rglob("*") if p.is_file())
    size += paths["train-data"].stat().st_size
    assert progress.tasks and progress.hashed == size


def test_a_served_model_the_recorded_model_signing_signature_does_not_cover(
    workspace: Path,
) -> None:
    evidence = oms_evidence(
        workspace / "dist/model", workspace / "model.sig", KeyTrust.from_file(workspace / "oms.pub")
    )
    forged = copy.deepcopy(evidence)
    forged["manifestDigest"] = {"sha256": "0" * 64}  # evidence about some other model
    record = StageRecord(
        stage="package", products=[workspace / "dist/model"], details={"omsSignature": forged}
    )
    sign_stage(
        record,
        load_private_key(workspace / "release.key"),
        AttestationStore(workspace / "store"),
        base_dir=workspace,
    )
    model = workspace / "dist/model"
    report = verify_pipeline(
        parse_signed_policy(load_file(workspace / "policy.signed.json")),
        [load_public_key(workspace / "owner.pub")],
        AttestationStore(workspace / "store"),
        artifacts={"model": model},
    )
    [problem] = check_oms_evidence(forged, model)
    assert report.failures == [
        Failure(
            Check.OMS_SIGNATURE,
            "package",
            f"model at {model} does not match the model-signing signature recorded at package: "
            f"{problem}",
            expected="the model the recorded OMS signature covers",
            found=problem,
            remedy="serve exactly the signed model directory",
        )
    ]


def test_a_valid_package_attestation_without_the_deploy_product(
    run: Pipeline, tmp_path: Path
) -> None:
    store = _store_copy(run, tmp_path)

    def renamed(statement: dict[str, Any]) -> None:
        for subject in statement["subject"]:
            subject["name"] = subject["name"].replace("dist/model", "dist/other")

    _resign_package(run, store, renamed)
    paths = run.deploy_artifacts()
    report = _verify(run, paths, store)
    assert [f for f in report.failures if f.check is Check.ARTIFACT_MISMATCH] == [
        Failure(
            Check.ARTIFACT_MISMATCH,
            "package",
            "deploy artifact 'model': stage 'package' attests no product 'dist/model'",
            expected="product dist/model in a valid package attestation",
            found="none",
            remedy="fix the stage failures above first",
        )
    ]
    assert report.artifacts[0].status == "mismatch"
