"""Keyless signers in the query index: stages signed and a summary signed through the
loopback Sigstore instance (real Fulcio certificates, real Rekor entries), indexed on
SQLite and on PostgreSQL, found by ``query signed-by --identity``."""

from __future__ import annotations

from pathlib import Path

from .conftest import Cli, CliResult
from .instance import OIDC_ISSUER
from .test_keyless import Workspace, workspace  # noqa: F401 - the fixture

VERIFIER = "verifier@example.com"


def where(ws: Workspace, url: str | None) -> list[str | Path]:
    return ["--store", ws.store, *(["--store-url", url] if url else [])]


def _verify_with_summary(ws: Workspace) -> None:
    """``verify --vsa-out`` signed keyless as VERIFIER: the summary is kept in the store."""
    result = ws.cli(
        "verify", "--policy", ws.signed_policy, "--policy-key", ws.owner.pub_path,
        "--store", ws.store, "--run-id", "run-1", "--vsa-out", ws.root / "run-1.vsa.json",
        "--sigstore", "--trust-config", ws.instance.trust_config_path,
        "--identity-token", ws.instance.token(VERIFIER),
        "--resource-uri", "https://models.example/model.bin", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err


def test_keyless_signers_are_indexed_and_queried_by_identity(
    workspace: Workspace,  # noqa: F811
    cli: Cli,
    index_url: str | None,
) -> None:
    workspace.sign_pipeline(trainer="bob@example.com")
    _verify_with_summary(workspace)

    def ask(*args: str) -> CliResult:
        return cli("query", *args, *where(workspace, index_url))

    r = ask("signed-by", "--identity", "alice@example.com", "--json")
    assert r.code == 0, r.err
    assert r.json()["signer"] == {"identity": "alice@example.com"}
    [run] = r.json()["result"]
    assert run["runId"] == "run-1" and [a["stage"] for a in run["attestations"]] == ["ingest"]
    r = ask("signed-by", "--identity", "bob@example.com", "--json")
    assert [a["stage"] for a in r.json()["result"][0]["attestations"]] == ["train"]
    r = ask("signed-by", "--identity", "mallory@example.com")
    assert r.code == 0 and "no attestation claims that signer" in r.out
    # The run: each stage's identity and issuer (read from its certificate), and the
    # keyless summary with its signer, subjects and input attestations.
    r = ask("run", "run-1", "--json")
    assert r.code == 0, r.err
    doc = r.json()["result"]
    signers = {s["stage"]: s["signer"] for s in doc["stages"]}
    assert signers == {
        "ingest": {"keyid": None, "identity": "alice@example.com", "issuer": OIDC_ISSUER},
        "train": {"keyid": None, "identity": "bob@example.com", "issuer": OIDC_ISSUER},
    }
    [summary] = doc["summaries"]
    assert summary["result"] == "PASSED"
    assert summary["signer"] == {"keyid": None, "identity": VERIFIER, "issuer": OIDC_ISSUER}
    assert [i["stage"] for i in summary["inputs"]] == ["ingest", "train"]
    assert summary["subjects"] and all(s["digest"] for s in summary["subjects"])
    text = ask("run", "run-1")
    assert f"by {VERIFIER}" in text.out and "alice@example.com" in text.out
