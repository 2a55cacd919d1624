"""``mlspec-attest policy init|lint|show|sign``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.policy import parse_signed_policy

from ..support import PROJECT_ROOT, KeyPair, Pipeline
from .conftest import Cli


@pytest.mark.parametrize("template", ["lifecycle", "minimal"])
def test_init_prints_the_template(cli: Cli, template: str) -> None:
    result = cli("policy", "init", "--template", template)
    assert result.code == 0
    assert result.out == (PROJECT_ROOT / "policies" / f"{template}.yaml").read_text("utf-8")


def test_init_default_template_is_lifecycle(cli: Cli) -> None:
    assert "name: diabetes-regressor-lifecycle" in cli("policy", "init").out


def test_init_unknown_template(cli: Cli) -> None:
    result = cli("policy", "init", "--template", "nope")
    assert result.code == 2


def test_init_output_lints_clean_next_to_its_keys(cli: Cli, tmp_path: Path) -> None:
    # the template refers to ../keys-example/*.pub relative to the policy file
    policies = tmp_path / "policies"
    policies.mkdir()
    (tmp_path / "keys-example").symlink_to(PROJECT_ROOT / "keys-example")
    (policies / "p.yaml").write_text(cli("policy", "init").out)
    result = cli("policy", "lint", policies / "p.yaml")
    assert result.code == 0, result.err
    assert "ok (13 stages, 0 warning(s))" in result.err


# ------------------------------------------------------------------- lint
def test_lint_clean(cli: Cli, pipeline: Pipeline) -> None:
    result = cli("policy", "lint", pipeline.policy_yaml)
    assert result.code == 0
    assert f"{pipeline.policy_yaml}: ok (4 stages" in result.err
    doc = cli("policy", "lint", pipeline.policy_yaml, "--json").json()
    assert doc["valid"] is True
    assert doc["problems"] == []
    assert doc["schemaVersion"].startswith("https://")


def test_lint_errors_with_lines(cli: Cli, pipeline: Pipeline) -> None:
    text = pipeline.policy_yaml.read_text()
    text = text.replace("functionaries: [release-engineer]", "functionaries: [mallory]")
    text = text.replace("    threshold: 2\n", "    threshold: 3\n")
    pipeline.policy_yaml.write_text(text)
    lines = text.splitlines()
    mallory = next(i for i, line in enumerate(lines, 1) if "mallory" in line)
    threshold = next(i for i, line in enumerate(lines, 1) if "threshold: 3" in line)
    result = cli("policy", "lint", pipeline.policy_yaml)
    assert result.code == 3
    where = re.escape(str(pipeline.policy_yaml))
    # stages counted from 1 and named, as people (and the templates' comments) count them
    assert re.search(rf"{where}:{threshold}: error: stage 3 \(train\), threshold", result.err)
    assert re.search(
        rf"{where}:{mallory}: error: stage 4 \(package\), functionaries\[0\]", result.err
    )
    doc = cli("policy", "lint", pipeline.policy_yaml, "--json")
    assert doc.code == 3
    problems = doc.json()["problems"]
    assert doc.json()["valid"] is False
    assert [(p["line"], p["severity"]) for p in problems] == [
        (threshold, "error"),
        (mallory, "error"),
    ]
    # --json keeps the zero-based JSON path for programs, and the same place for people
    assert [(p["path"], p["where"]) for p in problems] == [
        ("stages[2].threshold", "stage 3 (train), threshold"),
        ("stages[3].functionaries[0]", "stage 4 (package), functionaries[0]"),
    ]


def test_lint_broken_yaml(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("apiVersion: mlspec-attest/v1\nkind: [Policy\n")
    result = cli("policy", "lint", tmp_path / "p.yaml")
    assert result.code == 3
    assert result.clean
    assert "error" in result.err


def test_lint_missing_file(cli: Cli, tmp_path: Path) -> None:
    result = cli("policy", "lint", tmp_path / "nope.yaml")
    assert result.code == 3
    assert result.clean


def test_lint_warning_only_passes(cli: Cli, pipeline: Pipeline) -> None:
    soon = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    pipeline.write_policy(expires=soon)
    result = cli("policy", "lint", pipeline.policy_yaml)
    assert result.code == 0
    assert "warning: expires: policy expires at" in result.err


def test_lint_and_sign_refuse_an_expired_policy(cli: Cli, pipeline: Pipeline) -> None:
    pipeline.write_policy(expires="2001-01-01T00:00:00Z")
    result = cli("policy", "lint", pipeline.policy_yaml)
    assert result.code == 3
    assert "error: expires: policy expired at 2001-01-01T00:00:00Z" in result.err
    out = pipeline.root / "expired.signed.json"
    key = pipeline.keys["owner"].key_path
    result = cli("policy", "sign", pipeline.policy_yaml, "--key", key, "--out", out)
    assert result.code == 3
    assert result.clean
    assert "not signed: policy expired at 2001-01-01T00:00:00Z" in result.err
    assert not out.exists()


# ------------------------------------------------------------------- show
def test_show_text(cli: Cli, pipeline: Pipeline) -> None:
    result = cli("policy", "show", pipeline.policy_yaml)
    assert result.code == 0
    out = result.out
    assert out.startswith("policy test-pipeline  expires 2099-01-01T00:00:00Z")
    positions = [out.index(f". {name} [") for name in ("ingest", "split", "train", "package")]
    assert positions == sorted(positions)
    assert "signers   2 of 2 keys: ml-engineer, ml-reviewer" in out
    assert "materials MATCH data/raw.csv WITH PRODUCTS FROM ingest" in out
    assert "deploy    model = product dist/model (required)" in out
    assert f"keyid {pipeline.keys['ml-reviewer'].keyid[:16]}" in out


def test_show_mermaid(cli: Cli, pipeline: Pipeline) -> None:
    out = cli("policy", "show", pipeline.policy_yaml, "--format", "mermaid").out.splitlines()
    assert out[0] == "flowchart TD"
    for edge in ("s1_ingest --> s2_split", "s2_split --> s3_train", "s3_train --> s4_package"):
        assert f"  {edge}" in out
    assert '  s3_train -.->|"model"| s4_package' in out
    assert "  s4_package ==> d2_model" in out
    assert "  s2_split ==> d1_train_data" in out


def test_show_signed_policy_equals_yaml(cli: Cli, pipeline: Pipeline) -> None:
    assert (
        cli("policy", "show", pipeline.signed_policy_path).out
        == cli("policy", "show", pipeline.policy_yaml).out
    )


def test_show_bad_format(cli: Cli, pipeline: Pipeline) -> None:
    assert cli("policy", "show", pipeline.policy_yaml, "--format", "dot").code == 2


# ------------------------------------------------------------------- sign
def test_policy_sign(
    cli: Cli, pipeline: Pipeline, keys: dict[str, KeyPair], tmp_path: Path
) -> None:
    out = tmp_path / "signed.json"
    result = cli(
        "policy", "sign", pipeline.policy_yaml, "--key", keys["owner"].key_path, "--out", out
    )
    assert result.code == 0, result.err
    assert result.out == ""
    assert keys["owner"].keyid[:16] in result.err
    signed = parse_signed_policy(load_file(out))
    assert signed.unsigned_by([keys["owner"].public]) == []
    assert signed.digest == pipeline.signed.digest  # same policy, same canonical payload


def test_policy_sign_by_two_owners(
    cli: Cli, pipeline: Pipeline, keys: dict[str, KeyPair], tmp_path: Path
) -> None:
    out = tmp_path / "signed.json"
    result = cli(
        "policy", "sign", pipeline.policy_yaml,
        "--key", keys["owner"].key_path,
        "--key", keys["release-engineer"].key_path,
        "--out", out,
    )  # fmt: skip
    assert result.code == 0
    signed = parse_signed_policy(load_file(out))
    assert signed.unsigned_by([keys["owner"].public, keys["release-engineer"].public]) == []


def test_policy_sign_refuses_a_broken_policy(
    cli: Cli, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    (tmp_path / "p.yaml").write_text("apiVersion: mlspec-attest/v1\nkind: Policy\nbogus: [\n")
    result = cli(
        "policy",
        "sign",
        tmp_path / "p.yaml",
        "--key",
        keys["owner"].key_path,
        "--out",
        tmp_path / "s.json",
    )
    assert result.code == 3
    assert result.clean
    assert not (tmp_path / "s.json").exists()


def test_policy_sign_with_a_public_key(
    cli: Cli, pipeline: Pipeline, keys: dict[str, KeyPair], tmp_path: Path
) -> None:
    result = cli(
        "policy",
        "sign",
        pipeline.policy_yaml,
        "--key",
        keys["owner"].pub_path,
        "--out",
        tmp_path / "s.json",
    )
    assert result.code == 3
    assert "not a PEM private key" in result.err
    assert not (tmp_path / "s.json").exists()
