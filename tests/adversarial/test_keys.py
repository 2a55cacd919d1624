"""Key and threshold tricks: one key counted twice, keys used outside their stage.

``train`` needs two distinct keys (ml-engineer, ml-reviewer) that agree. The
attacker holds one functionary key (an insider) or none, copies and relabels
bundles, and tries to make one key look like two.
"""

from __future__ import annotations

import shutil

from ..support import Pipeline
from .kit import Cli, Scenario, edit_bundle, expect, resign, scenario


@scenario(
    "same-key-two-different-train-claims",
    "the ML engineer signs train a second time with other metrics, in the same run",
    1,
    ["conflicting-attestations"],
    "2 different versions of this stage",
)
def test_same_key_two_claims(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    hp.sign("train", signer="ml-engineer", build=False, metrics={"mae": 1.0})
    expect(cli.verify(hp), case)


@scenario(
    "same-key-identical-retry",
    "the ML engineer signs train again with the same result (a retried step)",
    0,
)
def test_identical_retry(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    signed = hp.sign("train", signer="ml-engineer", build=False)
    assert signed.path != hp.bundle_path("train", "ml-engineer")  # stored beside, not replaced
    expect(cli.verify(hp), case)


@scenario(
    "rehinted-copy-poses-as-reviewer",
    "copy the ML engineer's train bundle, point its hint at the reviewer, drop the reviewer's",
    1,
    ["signature", "threshold"],
    "signature does not verify",
)
def test_rehinted_copy(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    reviewer = hp.keys["ml-reviewer"]
    hp.bundle_path("train", "ml-reviewer").unlink()
    edit_bundle(
        hp.bundle_path("train", "ml-engineer"),
        lambda d: d["verificationMaterial"].__setitem__("publicKey", {"hint": reviewer.keyid}),
        to=hp.store.run_dir(hp.run_id) / f"train.{reviewer.keyid[:8]}.sigstore.json",
    )
    expect(cli.verify(hp), case)


@scenario(
    "hintless-copy-counts-once",
    "copy the ML engineer's train bundle without its hint (every key is tried), drop the reviewer's",
    1,
    ["threshold"],
    "1 agreeing key(s)",
)
def test_hintless_copy(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    hp.bundle_path("train", "ml-reviewer").unlink()
    edit_bundle(
        hp.bundle_path("train", "ml-engineer"),
        lambda d: d["verificationMaterial"].pop("publicKey"),
        to=hp.store.run_dir(hp.run_id) / "train.copy.sigstore.json",
    )
    expect(cli.verify(hp), case)


@scenario(
    "package-key-makes-up-train-threshold",
    "the release engineer (package only) signs train in the reviewer's place",
    1,
    ["signer-not-allowed", "threshold"],
    "'release-engineer', who may not sign this stage",
)
def test_other_stage_key(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    hp.bundle_path("train", "ml-reviewer").unlink()
    hp.sign("train", signer="release-engineer", build=False)
    expect(cli.verify(hp), case)


@scenario(
    "owner-key-signs-a-stage",
    "the policy owner's key (trusted for the policy, not a functionary) signs package",
    1,
    ["signer-not-allowed"],
    "a key the policy does not know",
)
def test_owner_signs_stage(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    hp.bundle_path("package").unlink()
    hp.sign("package", signer="owner", build=False)
    expect(cli.verify(hp), case)


@scenario(
    "intruder-signs-with-functionary-hint",
    "an attacker key signs a forged package, its hint naming the release engineer",
    1,
    ["signature", "stage-missing"],
    "signature does not verify",
)
def test_intruder_with_hint(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    release = hp.keys["release-engineer"]
    path = resign(hp, "package", hp.keys["intruder"].signer)
    edit_bundle(
        path,
        lambda d: d["verificationMaterial"].__setitem__("publicKey", {"hint": release.keyid}),
    )
    expect(cli.verify(hp), case)


@scenario(
    "same-bundle-under-two-names",
    "copy the reviewer's train bundle under a second file name (same bytes, same key)",
    0,
)
def test_same_bundle_twice(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    source = hp.bundle_path("train", "ml-reviewer")
    shutil.copy(source, source.with_name("train.again.sigstore.json"))
    expect(cli.verify(hp), case)


@scenario(
    "policy-key-given-twice",
    "the gate is given the owner key twice (one key is not two owners)",
    0,
)
def test_policy_key_twice(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    owner = hp.keys["owner"].pub_path
    expect(cli.verify(hp, policy_keys=[owner, owner]), case)
