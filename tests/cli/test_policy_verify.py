"""``mlspec-attest policy verify``: a signed policy checked alone (signatures, expiry,
content), and ``verify`` naming a wrong owner key before it looks at the store."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from mlspec_attest.formats.jsonio import canonical

from ..support import Pipeline
from .conftest import Cli, CliResult


def policy_verify(cli: Cli, pipeline: Pipeline, *owners: str, as_json: bool = True) -> CliResult:
    args = ["policy", "verify", str(pipeline.signed_policy_path)]
    for owner in owners or ("owner",):
        args += ["--policy-key", str(pipeline.keys[owner].pub_path)]
    return cli(*args, *(["--json"] if as_json else []))


def test_a_policy_signed_by_its_owner_holds(cli: Cli, pipeline: Pipeline) -> None:
    result = policy_verify(cli, pipeline)
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["schemaVersion"] == "https://mlspec-attest.dev/policy-verify/v1"
    assert doc["result"] == "PASSED"
    assert doc["digest"] == pipeline.signed.digest
    assert doc["signedBy"] == [pipeline.keys["owner"].keyid]
    assert all(p["severity"] == "warning" for p in doc["problems"])
    text = policy_verify(cli, pipeline, as_json=False)
    assert text.code == 0 and f"digest {pipeline.signed.digest}" in text.err


def test_a_wrong_owner_key_is_named(cli: Cli, pipeline: Pipeline) -> None:
    result = policy_verify(cli, pipeline, "intruder", as_json=False)
    assert result.code == 1
    keyid = pipeline.keys["intruder"].keyid[:16]
    assert f"not signed by owner key {keyid}" in result.err
    assert "FAILED" in result.err


def test_every_owner_given_must_have_signed(cli: Cli, pipeline: Pipeline) -> None:
    result = policy_verify(cli, pipeline, "owner", "intruder")
    assert result.code == 1
    doc = result.json()
    assert doc["signedBy"] == [pipeline.keys["owner"].keyid]
    assert [p["code"] for p in doc["problems"] if p["severity"] == "error"] == ["policy-signature"]
    pipeline.sign_policy("owner", "intruder")  # now both signed it
    assert policy_verify(cli, pipeline, "owner", "intruder").code == 0


def test_an_expired_policy_is_refused(cli: Cli, pipeline: Pipeline) -> None:
    pipeline.write_policy(expires="2020-01-31T00:00:00Z")
    pipeline.sign_policy()
    result = policy_verify(cli, pipeline)
    assert result.code == 1
    [error] = [p for p in result.json()["problems"] if p["severity"] == "error"]
    assert error["code"] == "expired" and "2020-01-31T00:00:00Z" in error["message"]


def test_a_payload_changed_after_signing_is_refused(cli: Cli, pipeline: Pipeline) -> None:
    envelope = json.loads(pipeline.signed_policy_path.read_bytes())
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["metadata"]["name"] = "renamed-after-signing"
    envelope["payload"] = base64.b64encode(canonical(payload)).decode()
    pipeline.signed_policy_path.write_bytes(canonical(envelope))
    result = policy_verify(cli, pipeline)
    assert result.code == 1
    assert result.json()["problems"][0]["code"] == "policy-signature"


def test_what_is_not_a_signed_policy_is_bad_input(
    cli: Cli, pipeline: Pipeline, tmp_path: Path
) -> None:
    owner = str(pipeline.keys["owner"].pub_path)
    yaml = cli("policy", "verify", str(pipeline.policy_yaml), "--policy-key", owner)
    assert yaml.code == 3 and "policy sign" in yaml.err
    cut = tmp_path / "cut.signed.json"
    cut.write_bytes(pipeline.signed_policy_path.read_bytes()[:-40])
    truncated = cli("policy", "verify", str(cut), "--policy-key", owner)
    assert truncated.code == 3 and truncated.clean


def test_verify_names_a_wrong_owner_key_whatever_the_store_holds(
    cli: Cli, pipeline: Pipeline, tmp_path: Path
) -> None:
    empty = tmp_path / "empty-store"
    empty.mkdir()

    def verify(owner: str) -> CliResult:
        return cli(
            "verify", "--policy", str(pipeline.signed_policy_path),
            "--policy-key", str(pipeline.keys[owner].pub_path), "--store", str(empty), "--json",
        )  # fmt: skip

    wrong = verify("intruder")
    assert wrong.code == 1
    assert [f["check"] for f in wrong.json()["failures"]] == ["policy-signature"]
    right = verify("owner")
    assert right.code == 3 and "holds no attestations" in right.err


def test_a_report_denied_at_the_policy_still_names_the_run(
    cli: Cli, honest: Pipeline, tmp_path: Path
) -> None:
    args = honest.cli_verify_args(owner="intruder", as_json=False)
    del args[args.index("--run-id") : args.index("--run-id") + 2]
    named = cli(*args)
    assert named.code == 1
    assert named.out.startswith("verification DENIED: policy test-pipeline (")
    assert named.out.splitlines()[0].endswith(f"run {honest.run_id}")
    empty = tmp_path / "empty"
    empty.mkdir()
    args[args.index(str(honest.store_path))] = str(empty)
    unnamed = cli(*args)
    assert unnamed.code == 1
    assert unnamed.out.splitlines()[0].endswith("no run read (the policy's signature failed first)")
