"""Replay and run mixing: attestations, runs and policies from elsewhere or from before.

Each stage is bound to one run id and (in this pipeline) to the signed policy's
digest, and names the attestations it saw when it started. The attacker renames
runs, moves markers, copies stages between runs and stores, and swaps policies.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ..support import STAGES, Pipeline
from .kit import Cli, Scenario, case, expect, mlspec, resign, scenario

M = __name__


@scenario(
    "older-run-renamed-to-verified-id",
    "rename a complete, valid old run directory to the run id the gate was given",
    1,
    ["run-id", "stage-missing"],
    "attestation belongs to another pipeline run",
)
def test_run_renamed(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    runs = hp.store_path / "runs"
    (runs / "run-a").rename(runs / "run-b")
    expect(cli.verify(hp, run_id="run-b"), case)


@scenario(
    "current-run-points-at-older-run",
    "two runs in the store; current-run points at the older one and no --run-id is given",
    2,
    message="holds 2 runs; say which one to verify",
)
def test_current_run_older(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    runs = hp.store_path / "runs"
    shutil.copytree(runs / "run-a", runs / "run-b")
    hp.store.set_current_run("run-a")
    expect(cli.verify(hp, run_id=""), case)


@scenario(
    "current-run-marker-garbage",
    "write '../../etc/passwd' into current-run of a single-run store; verify without --run-id",
    0,
)
def test_current_run_garbage(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    (hp.store_path / "current-run").write_text("../../etc/passwd\n")
    expect(cli.verify(hp, run_id=""), case)


@pytest.mark.parametrize(
    ("case", "run_id"),
    [
        case(M, "run-id-dotdot", "verify --run-id '../run-a'", 2, None, "is not valid", "../run-a"),
        case(
            M, "run-id-slash", "verify --run-id 'x/../run-a'", 2, None, "is not valid", "x/../run-a"
        ),
        case(M, "run-id-space", "verify --run-id 'run a'", 2, None, "is not valid", "run a"),
        case(
            M, "run-id-leading-dot", "verify --run-id '.run-a'", 2, None, "is not valid", ".run-a"
        ),
        case(
            M,
            "run-id-homoglyph",
            "verify --run-id 'run-а' (Cyrillic а)",
            2,
            None,
            "is not valid",
            "run-\u0430",
        ),
        case(
            M,
            "run-id-too-long",
            "verify --run-id of 129 characters",
            2,
            None,
            "is not valid",
            "r" * 129,
        ),
        case(
            M,
            "run-id-trailing-newline",
            "verify --run-id 'run-a\\n' (a run id read from a file with its newline)",
            2,
            None,
            "is not valid",
            "run-a\n",
        ),
    ],
)
def test_odd_run_ids(case: Scenario, run_id: str, hp: Pipeline, cli: Cli) -> None:
    expect(cli.verify(hp, run_id=run_id), case)


@scenario(
    "stage-bound-to-another-policy",
    "the release engineer signs package bound to another policy digest",
    1,
    ["policy-digest"],
    "attestation was made for a different policy",
)
def test_bound_to_other_policy(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    def rebind(statement: dict[str, Any]) -> None:
        mlspec(statement)["policyDigest"] = "sha256:" + "ab" * 32

    resign(hp, "package", hp.keys["release-engineer"].signer, rebind)
    expect(cli.verify(hp), case)


def _lax(p: Pipeline) -> None:
    """The same policy, signed by the owner, with train's threshold lowered to 1."""
    text = p.policy_text(expires="2099-01-01T00:00:00Z")
    p.policy_yaml.write_text(text.replace("threshold: 2", "threshold: 1"))
    p.sign_policy()


@scenario(
    "older-laxer-policy-swapped-in",
    "swap in an older owner-signed policy (train threshold 1) and drop the reviewer's train",
    1,
    ["policy-digest"],
    "attestation was made for a different policy",
)
def test_laxer_policy_bound(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    _lax(hp)
    hp.bundle_path("train", "ml-reviewer").unlink()
    expect(cli.verify(hp), case)


@scenario(
    "older-laxer-policy-swapped-in-unbound-run",
    "as above, for a run whose stages were signed without --policy: the laxer policy is still "
    "valid and nothing ties the run to the newer one",
    1,
    ["ordering"],
    "started after 'train' attestation(s) that are no longer in the run",
)
def test_laxer_policy_unbound(case: Scenario, make_pipeline: Any, cli: Cli) -> None:
    """The laxer policy itself is still accepted for an unbound run (binding is opt-in: sign
    --policy, requirePolicyDigest: true; the lifecycle template requires it). Dropping the
    reviewer's train is what is caught: package recorded it as a predecessor, and an
    attestation a later stage saw must still be in the run."""
    p = make_pipeline("unbound", bind_policy=False).run()
    _lax(p)
    p.bundle_path("train", "ml-reviewer").unlink()
    expect(cli.verify(p), case)


@scenario(
    "foreign-store-package-with-other-model",
    "copy the package attestation (and its model) of another store's run with the same run id "
    "and keys, trained on other data, over this run's package",
    1,
    ["ordering", "artifact-rule"],
    "started after a different version of 'train'",
)
def test_foreign_store(case: Scenario, hp: Pipeline, make_pipeline: Any, cli: Cli) -> None:
    other = make_pipeline("other")
    other.sign("ingest")
    other.sign("split")
    with (other.ws / "data/split/train.csv").open("a") as fh:
        fh.write("99,99.9,999\n")
    other.sign_all_signers("train")
    other.sign("package", via_api=True)
    shutil.copy(other.bundle_path("package"), hp.bundle_path("package"))
    artifacts = dict(hp.deploy_artifacts(), model=other.ws / "dist/model")
    expect(cli.verify(hp, artifacts=artifacts), case)


@scenario(
    "symlink-to-other-runs-attestation",
    "replace run-a's ingest by a symlink to the same stage's attestation in run-b",
    1,
    ["run-id"],
    "attestation belongs to another pipeline run",
)
def test_symlink_other_run(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    hp.sign("ingest", run_id="run-b", build=False)
    foreign = hp.bundle_path("ingest", run_id="run-b")
    honest = hp.bundle_path("ingest")
    honest.unlink()
    honest.symlink_to(Path("..") / "run-b" / foreign.name)
    expect(cli.verify(hp), case)


@scenario(
    "run-id-case-variant-in-statement",
    "the release engineer signs package with runId 'RUN-A' (the run is 'run-a')",
    1,
    ["run-id"],
    "attestation belongs to another pipeline run",
)
def test_run_id_case(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    resign(
        hp,
        "package",
        hp.keys["release-engineer"].signer,
        lambda s: mlspec(s).__setitem__("runId", "RUN-A"),
    )
    expect(cli.verify(hp), case)


@scenario(
    "predecessor-record-removed",
    "the release engineer re-signs package without details.predecessors (no causal evidence)",
    1,
    ["ordering"],
    "no evidence that it started after 'train'",
)
def test_predecessors_removed(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    resign(
        hp,
        "package",
        hp.keys["release-engineer"].signer,
        lambda s: mlspec(s)["details"].pop("predecessors"),
    )
    expect(cli.verify(hp), case)


@scenario(
    "predecessor-replaced-after-the-fact",
    "after package ran, replace train's two attestations by a re-run of train (same claim)",
    1,
    ["ordering"],
    "started after a different version of 'train'",
)
def test_predecessor_replaced(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    for role in STAGES["train"].signers:
        hp.bundle_path("train", role).unlink()
    for role in STAGES["train"].signers:
        hp.sign("train", signer=role, build=False)
    expect(cli.verify(hp), case)


@scenario(
    "stage-finished-in-the-future",
    "the release engineer signs package claiming it finished in 2090",
    1,
    ["signed-time"],
    "finished in the future",
)
def test_future(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    resign(
        hp,
        "package",
        hp.keys["release-engineer"].signer,
        lambda s: mlspec(s).__setitem__("finishedOn", "2090-01-01T00:00:00Z"),
    )
    expect(cli.verify(hp), case)
