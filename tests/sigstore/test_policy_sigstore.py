"""Policies whose functionaries are Sigstore identities: lint, trust roots, signed form."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.policy import compile_policy, lint_policy_text, parse_signed_policy, sign_policy
from mlspec_attest.policy.problems import Problem
from mlspec_attest.signing.sigstore.identity import SigstoreIdentity

from ..support import KeyPair, asset
from .conftest import Cli

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROOTS = asset("sigstore/trust/sigstore-4.5.1-embedded")

HEAD = """\
apiVersion: mlspec-attest/v1
kind: Policy
expires: "2099-01-01T00:00:00Z"
functionaries:
  ci:
    sigstore:
      issuer: https://token.actions.githubusercontent.com
      identityRegex: 'https://github\\.com/org/repo/\\.github/workflows/train\\.yml@refs/tags/v.*'
  alice:
    sigstore:
      issuer: https://accounts.google.com
      identity: alice@example.com
"""
STAGES = """\
stages:
  - name: train
    kind: train
    functionaries: [ci, alice]
    threshold: 1
    products: ["CREATE model.bin", "DISALLOW *"]
"""


def lint(text: str, base_dir: Path) -> tuple[object, list[Problem]]:
    return lint_policy_text(text, source="policy.yaml", base_dir=base_dir, now=NOW)


def errors(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems if p.severity == "error"]


@pytest.mark.parametrize(
    "trust",
    [
        "trust:\n  sigstore:\n    instance: production\n",
        "trust:\n  sigstore:\n    trustedRoot: root.json\n",
        "trust:\n  sigstore:\n    trustConfig: config.json\n",
    ],
    ids=["instance", "trustedRoot", "trustConfig"],
)
def test_trust_root_forms(tmp_path: Path, trust: str) -> None:
    (tmp_path / "root.json").write_text((ROOTS / "production" / "trusted_root.json").read_text())
    (tmp_path / "config.json").write_text(
        (ROOTS / "production" / "client_trust_config.json").read_text()
    )
    policy, problems = lint(HEAD + trust + STAGES, tmp_path)
    assert errors(problems) == []
    assert policy is not None
    embedded = json.loads((ROOTS / "production" / "trusted_root.json").read_text())
    assert policy.sigstore_trust is not None  # type: ignore[attr-defined]
    assert policy.sigstore_trust.to_json() == embedded  # type: ignore[attr-defined]
    ci = policy.functionaries["ci"]  # type: ignore[attr-defined]
    assert ci.identity == SigstoreIdentity(
        "https://token.actions.githubusercontent.com",
        identity_regex=r"https://github\.com/org/repo/\.github/workflows/train\.yml@refs/tags/v.*",
    )
    assert ci.keyid.startswith("sigstore:")


def test_sigstore_functionaries_need_a_trust_root(tmp_path: Path) -> None:
    _, problems = lint(HEAD + STAGES, tmp_path)
    assert any("need a trust root" in e for e in errors(problems))


def test_bad_identity_rules_are_lint_errors(tmp_path: Path) -> None:
    trust = "trust:\n  sigstore:\n    instance: staging\n"
    bad_regex = HEAD.replace("identity: alice@example.com", "identityRegex: '(unclosed'")
    _, problems = lint(bad_regex + trust + STAGES, tmp_path)
    assert any("identityRegex" in e for e in errors(problems))
    both = HEAD.replace(
        "identity: alice@example.com", "identity: alice@example.com\n      identityRegex: a.*"
    )
    _, problems = lint(both + trust + STAGES, tmp_path)
    assert errors(problems)
    no_issuer = HEAD.replace("      issuer: https://accounts.google.com\n", "")
    _, problems = lint(no_issuer + trust + STAGES, tmp_path)
    assert errors(problems)
    mixed = HEAD.replace("    sigstore:\n      issuer: https://accounts.google.com", "    key: a.pub\n    sigstore:\n      issuer: https://accounts.google.com")  # fmt: skip
    _, problems = lint(mixed + trust + STAGES, tmp_path)
    assert errors(problems)


def test_unreadable_trust_root_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "root.json").write_text('{"mediaType": "nope"}')
    _, problems = lint(
        HEAD + "trust:\n  sigstore:\n    trustedRoot: root.json\n" + STAGES, tmp_path
    )
    assert any("mediaType" in e for e in errors(problems))
    bad = json.loads((ROOTS / "production" / "trusted_root.json").read_text())
    del bad["tlogs"][0]["publicKey"]["validFor"]["start"]
    (tmp_path / "root.json").write_text(json.dumps(bad))
    _, problems = lint(
        HEAD + "trust:\n  sigstore:\n    trustedRoot: root.json\n" + STAGES, tmp_path
    )
    assert any("TrustedRoot" in e for e in errors(problems))


def test_signed_policy_embeds_the_root_and_needs_no_files(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    from mlspec_attest.policy import load_policy_yaml

    (tmp_path / "root.json").write_text((ROOTS / "staging" / "trusted_root.json").read_text())
    path = tmp_path / "policy.yaml"
    path.write_text(HEAD + "trust:\n  sigstore:\n    trustedRoot: root.json\n" + STAGES)
    policy = load_policy_yaml(path, now=NOW)
    envelope = sign_policy(policy, [keys["owner"].signer])
    (tmp_path / "root.json").unlink()
    signed = parse_signed_policy(json.loads(canonical(envelope.to_json())))
    assert signed.policy.sigstore_trust is not None
    assert signed.policy.sigstore_trust.source == "root.json"
    assert signed.policy.sigstore_trust.digest == policy.sigstore_trust.digest  # type: ignore[union-attr]
    assert signed.policy.functionaries["alice"].identity == SigstoreIdentity(
        "https://accounts.google.com", identity="alice@example.com"
    )
    assert signed.document["trust"]["sigstore"]["trustedRoot"]["mediaType"].startswith(
        "application/vnd.dev.sigstore.trustedroot"
    )


def test_signed_policy_must_embed_the_root(tmp_path: Path) -> None:
    doc = {
        "apiVersion": "mlspec-attest/v1",
        "kind": "Policy",
        "expires": "2099-01-01T00:00:00Z",
        "functionaries": {"a": {"sigstore": {"issuer": "https://i", "identity": "a@b"}}},
        "trust": {"sigstore": {"instance": "production"}},
        "stages": [{"name": "train", "kind": "train", "functionaries": ["a"]}],
    }
    policy, problems = compile_policy(doc, base_dir=None)
    assert policy is None
    assert any("must embed the trustedRoot" in e for e in errors(problems))


def test_policy_show_and_sigstore_functionary_has_no_key(
    tmp_path: Path, cli: Cli, keys: dict[str, KeyPair]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(HEAD + "trust:\n  sigstore:\n    instance: production\n" + STAGES)
    shown = cli("policy", "show", path)
    assert shown.code == 0, shown.err
    assert "alice@example.com (issuer https://accounts.google.com)" in shown.out
    assert "sigstore trust root instance:production" in shown.out
    out = tmp_path / "policy.signed.json"
    signed = cli("policy", "sign", path, "--key", keys["owner"].key_path, "--out", out)
    assert signed.code == 0, signed.err
    from mlspec_attest.errors import UsageError
    from mlspec_attest.policy import load_signed_policy

    with pytest.raises(UsageError, match="Sigstore identity"):
        _ = load_signed_policy(out).policy.functionaries["alice"].key
