"""``mlspec-attest rollback``: the target gated, pinned by the signed policy, exit codes."""

from __future__ import annotations

from pathlib import Path

from ..serve.test_gate_support import (
    POLICY_DIGEST,
    RESOURCE_URI,
    make_model_dir,
    summary_for,
    verifier,
    write_keys,
    write_signed,
)
from ..serve.test_rollback import _digest
from ..support import Pipeline
from .conftest import Cli


def test_cli_pins_through_the_signed_policy(cli: Cli, pipeline: Pipeline, tmp_path: Path) -> None:
    model = make_model_dir(tmp_path / "release-0.9.3")
    vsa = write_signed(tmp_path / "old.vsa.json", summary_for(model))
    _, verifier_pub = write_keys(verifier(), tmp_path / "keys", "verifier")
    text = pipeline.policy_text(expires="2030-01-01T00:00:00Z")
    pipeline.policy_yaml.write_text(text + f"rollback:\n  summary: sha256:{_digest(vsa)}\n")
    pipeline.sign_policy()
    owner = pipeline.keys["owner"].pub_path
    base = ["rollback", "--to", vsa, "--model", model, "--verifier-key", verifier_pub]
    ok = cli(*base, "--policy", pipeline.signed_policy_path, "--policy-key", owner, "--json")
    assert ok.code == 0, ok.err
    doc = ok.json()
    assert (doc["result"], doc["pinnedByPolicy"]) == ("READY", True)
    assert doc["serve"][:6] == ["mlspec-attest", "serve", "--vsa", str(vsa), "--model", str(model)]
    assert doc["serve"][6:8] == ["--verifier-key", str(verifier_pub)]
    # Another passing summary of the same model is not the target the policy names.
    other = write_signed(tmp_path / "other.vsa.json", summary_for(model, details={"runId": "x"}))
    base[2] = str(other)
    refused = cli(*base, "--policy", pipeline.signed_policy_path, "--policy-key", owner)
    assert refused.code == 1
    assert "rollback-target" in refused.err
    assert "serve it" not in refused.out + refused.err
    # The pin is only as good as the policy's signature.
    wrong = cli(*base, "--policy", pipeline.signed_policy_path, "--policy-key", verifier_pub)
    assert wrong.code == 1
    assert "not signed by owner key" in wrong.err
    unpinned = cli(*base, "--policy", pipeline.signed_policy_path)
    assert unpinned.code == 2
    assert all(r.clean for r in (ok, refused, wrong, unpinned))


def test_the_serve_command_keeps_the_expectations_and_quotes_paths(
    cli: Cli, tmp_path: Path
) -> None:
    model = make_model_dir(tmp_path / "release 0.9.3")  # a space: the printed command quotes it
    vsa = write_signed(tmp_path / "old.vsa.json", summary_for(model))
    _, verifier_pub = write_keys(verifier(), tmp_path / "keys", "verifier")
    expect = [
        "--policy-digest",
        POLICY_DIGEST,
        "--resource-uri",
        RESOURCE_URI,
        "--max-age",
        "3650d",
    ]
    base = ["rollback", "--to", vsa, "--model", model, "--verifier-key", verifier_pub, *expect]
    doc = cli(*base, "--json").json()
    assert doc["serve"][8:14] == expect  # serve checks what this check checked
    text = cli(*base).out
    assert f"--model '{model}'" in text
