"""The verification engine (verify/pipeline.py): the policy's own checks, usage errors,
the stage summaries and the fail-closed form, each asserted whole.

Real runs of the four-stage pipeline of tests/support.py, verified in-process.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlspec_attest.errors import UsageError, VerificationError
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.policy import load_signed_policy
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.pipeline import PipelineVerifier, require_verified, verify_pipeline
from mlspec_attest.verify.report import Check, Failure, StageSummary

from .support import VERIFY_NOW, KeyPair, Pipeline

EXPIRES = datetime(2099, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> Pipeline:
    """The honest run (read only)."""
    return Pipeline(tmp_path_factory.mktemp("engine"), keys).run()


def _files(p: Pipeline, stage: str, *roles: str) -> tuple[str, ...]:
    return tuple(sorted(p.bundle_path(stage, role).name for role in roles or (None,)))


def _inputs(p: Pipeline, stage: str, *roles: str) -> tuple[tuple[str, str], ...]:
    """(where in the store, sha256 of the signed payload) of each attestation of ``stage``."""
    out = []
    for role in roles or (None,):
        path = p.bundle_path(stage, role)
        payload = base64.b64decode(json.loads(path.read_bytes())["dsseEnvelope"]["payload"])
        out.append(
            (f"runs/{p.run_id}/{path.name}", "sha256:" + hashlib.sha256(payload).hexdigest())
        )
    return tuple(sorted(out))


def test_the_report_of_an_honest_run(run: Pipeline) -> None:
    report = run.verify()
    assert report.passed and report.failures == []
    assert (report.policy_name, report.policy_digest, report.run_id) == (
        "test-pipeline",
        run.signed.digest,
        "run-a",
    )
    assert report.verified_at == format_rfc3339(VERIFY_NOW)
    one = ("data-engineer",)
    assert report.stages == [
        StageSummary("ingest", "ingest", "ok", one, _files(run, "ingest"), _inputs(run, "ingest")),
        StageSummary("split", "split", "ok", one, _files(run, "split"), _inputs(run, "split")),
        StageSummary(
            "train",
            "train",
            "ok",
            ("ml-engineer", "ml-reviewer"),
            _files(run, "train", "ml-engineer", "ml-reviewer"),
            _inputs(run, "train", "ml-engineer", "ml-reviewer"),
        ),
        StageSummary(
            "package",
            "package",
            "ok",
            ("release-engineer",),
            _files(run, "package"),
            _inputs(run, "package"),
        ),
    ]
    assert report.demanded == (
        "MLSPEC_SIGNED_CHAIN",
        "MLSPEC_STAGE_ORDER",
        "MLSPEC_ARTIFACT_FLOW",
        "MLSPEC_DEPLOY_DIGESTS_MATCH",
    )
    assert [a.status for a in report.artifacts] == ["ok", "ok"]


def test_without_a_time_the_verifier_uses_the_clock(run: Pipeline) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    report = run.verify(now=None)
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert report.passed
    verified = datetime.strptime(report.verified_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= verified <= after


def test_a_policy_not_signed_by_every_owner_stops_the_verification(run: Pipeline) -> None:
    signed = load_signed_policy(run.signed_policy_path)
    owner, intruder = run.keys["owner"], run.keys["intruder"]
    report = verify_pipeline(
        signed,
        [owner.public, intruder.public],
        run.store,
        run_id="run-a",
        artifacts=run.deploy_artifacts(),
        now=EXPIRES + timedelta(days=1),  # expired as well: not reported, the policy is untrusted
    )
    assert report.failures == [
        Failure(
            Check.POLICY_SIGNATURE,
            None,
            "the policy is not signed by a required owner key",
            expected=f"a valid signature by key {intruder.keyid[:16]}",
            found="1 signature(s), none valid for that key",
            remedy="re-sign the policy with `policy.signed.sign_policy()`, "
            "or pass the right owner key (owner_keys)",
        )
    ]
    assert report.stages == [] and report.artifacts == []


@pytest.mark.parametrize(
    ("now", "expired"),
    [
        (EXPIRES - timedelta(seconds=1), False),
        (EXPIRES, True),
        (EXPIRES + timedelta(seconds=1), True),
    ],
)
def test_the_policy_expires_at_its_instant(run: Pipeline, now: datetime, expired: bool) -> None:
    report = run.verify(now=now)
    if not expired:
        assert report.failures == []
        return
    # an expired policy is reported, and the verification goes on
    assert report.failures == [
        Failure(
            Check.POLICY_EXPIRED,
            None,
            "the policy has expired",
            expected="now before 2099-01-01T00:00:00Z",
            found=f"now is {format_rfc3339(now)}",
            remedy="renew the policy's 'expires' and have the owner sign it again",
        )
    ]
    assert [s.status for s in report.stages] == ["ok"] * 4


def test_usage_errors(run: Pipeline, tmp_path: Path) -> None:
    signed = load_signed_policy(run.signed_policy_path)
    with pytest.raises(UsageError) as none:
        PipelineVerifier(signed, [], run.store, run_id="run-a")
    assert (
        none.value.message == "at least one owner key (owner_keys) is required to trust the policy"
    )
    with pytest.raises(UsageError) as roles:
        PipelineVerifier(
            signed,
            [run.keys["owner"].public],
            run.store,
            run_id="run-a",
            artifacts={"weights": tmp_path, "model": tmp_path, "extra": tmp_path},
        )
    assert roles.value.message == "artifacts role(s) extra, weights not declared by the policy"
    assert roles.value.remedy == "the policy's deploy roles are: model, train-data"


def test_a_policy_without_deploy_roles_says_so(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    p = Pipeline(tmp_path / "p", keys)
    text = p.policy_text(expires="2099-01-01T00:00:00Z")
    p.policy_yaml.write_text(text[: text.index("deploy:")])
    p.sign_policy()
    p.sign("ingest")
    with pytest.raises(UsageError) as roles:
        PipelineVerifier(
            p.signed, [keys["owner"].public], p.store, run_id="run-a", artifacts={"m": tmp_path}
        )
    assert roles.value.message == "artifacts role(s) m not declared by the policy"
    assert roles.value.remedy == "the policy's deploy roles are: none"
    # the only run of the store is the one verified
    report = verify_pipeline(p.signed, [keys["owner"].public], p.store, now=VERIFY_NOW)
    assert report.run_id == "run-a"


def test_stage_statuses(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    p = Pipeline(tmp_path / "p", keys)
    p.policy_yaml.write_text(
        p.policy_text(expires="2099-01-01T00:00:00Z").replace(
            "  - name: package\n    kind: package\n",
            "  - name: package\n    kind: package\n    required: false\n",
            1,
        )
    )
    p.sign_policy()
    p.sign("ingest")
    p.sign("split")
    p.sign("train", signer="ml-engineer")  # one of two: below the threshold
    gone = tmp_path / "nowhere"
    report = p.verify(artifacts={"model": gone, "train-data": gone})
    assert [(s.name, s.status, s.signers) for s in report.stages] == [
        ("ingest", "ok", ("data-engineer",)),
        ("split", "ok", ("data-engineer",)),
        ("train", "failed", ("ml-engineer",)),
        ("package", "optional-missing", ()),
    ]
    # deploy artifacts that fail do not fail their stage
    assert {f.check for f in report.failures if f.stage == "split"} == {Check.ARTIFACT_MISSING}
    p.bundle_path("split").unlink()
    report = p.verify(artifacts={})
    assert [(s.name, s.status, s.attestations) for s in report.stages][:2] == [
        ("ingest", "ok", _files(p, "ingest")),
        ("split", "failed", ()),  # a required stage missing is a failure of that stage
    ]
    [missing] = [f for f in report.failures if f.check is Check.STAGE_MISSING]
    assert (missing.stage, missing.expected) == (
        "split",
        "an attestation signed by data-engineer in run run-a",
    )


def test_require_verified(run: Pipeline, tmp_path: Path) -> None:
    signed = load_signed_policy(run.signed_policy_path)
    owner = [run.keys["owner"].public]
    passed = require_verified(
        signed, owner, run.store, run_id="run-a", artifacts=run.deploy_artifacts(), now=VERIFY_NOW
    )
    assert passed.passed
    gone = tmp_path / "nowhere"
    with pytest.raises(VerificationError) as denied:
        require_verified(
            signed,
            owner,
            AttestationStore(run.store_path),
            run_id="run-a",
            artifacts={"model": gone, "train-data": gone},
            now=EXPIRES,
        )
    error = denied.value
    report = error.report  # type: ignore[attr-defined]
    assert len(report.failures) == 3
    assert error.message == (
        "pipeline denied: 3 failure(s); first: [policy-expired] the policy has expired"
    )
    assert error.remedy == "renew the policy's 'expires' and have the owner sign it again"
    assert type(error).__name__ == "PolicyExpiredError"


class _Progress:
    def __init__(self) -> None:
        self.labels: list[str] = []
        self.hashed = 0

    def begin(self, label: str, files: int, total_bytes: int | None) -> None:
        self.labels.append(label)

    def advance(self, nbytes: int, files: int = 0) -> None:
        self.hashed += nbytes

    def end(self) -> None:
        pass


def test_the_deploy_artifacts_report_their_progress(run: Pipeline) -> None:
    progress = _Progress()
    paths = run.deploy_artifacts()
    report = verify_pipeline(
        load_signed_policy(run.signed_policy_path),
        [run.keys["owner"].public],
        run.store,
        run_id="run-a",
        artifacts=paths,
        now=VERIFY_NOW,
        progress=progress,
    )
    assert report.passed
    size = sum(p.stat().st_size for p in paths["model"].rglob("*") if p.is_file())
    assert progress.labels and progress.hashed == size + paths["train-data"].stat().st_size
