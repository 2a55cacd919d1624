"""Signed policies: what is refused before any signature is checked, and why, word for word.

Real policies signed with real keys (the session's ``keys``); each refusal names the file
it read, so a user can tell which of several files is wrong.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from mlspec_attest.errors import MalformedDocumentError, PolicyError
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.policy.signed import POLICY_PAYLOAD_TYPE, load_signed_policy, parse_signed_policy

from .support import Pipeline


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_a_yaml_policy_is_not_a_signed_policy(suffix: str, tmp_path: Path) -> None:
    path = tmp_path / f"policy{suffix}"
    path.write_text("apiVersion: mlspec-attest/v1\n")
    with pytest.raises(MalformedDocumentError) as info:
        load_signed_policy(path)
    assert info.value.message == (
        f"{path}: expected a signed policy (JSON from `policy sign`), not YAML"
    )
    assert info.value.remedy == (
        f"policy.signed.sign_policy() on {path}, written to {tmp_path / 'policy.signed.json'}"
    )


def test_an_unsigned_policy_document_says_to_sign_it(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"apiVersion": "mlspec-attest/v1", "kind": "Policy"}))
    with pytest.raises(MalformedDocumentError) as info:
        load_signed_policy(path)
    assert info.value.message == f"{path}: this policy is not signed"
    assert info.value.remedy == (
        "sign it first: policy.signed.sign_policy() on POLICY.yaml, written to POLICY.signed.json"
    )


def test_another_payload_type_is_not_a_policy(pipeline: Pipeline, tmp_path: Path) -> None:
    doc = json.loads(pipeline.signed_policy_path.read_text())
    doc["payloadType"] = "application/vnd.in-toto+json"
    path = tmp_path / "other.signed.json"
    path.write_bytes(canonical(doc))
    with pytest.raises(MalformedDocumentError) as info:
        load_signed_policy(path)
    assert info.value.message == (
        f"{path}: payloadType 'application/vnd.in-toto+json' is not a policy ({POLICY_PAYLOAD_TYPE})"
    )


def test_an_invalid_payload_lists_its_errors(pipeline: Pipeline) -> None:
    doc = json.loads(pipeline.signed_policy_path.read_text())
    policy = json.loads(base64.b64decode(doc["payload"]))
    policy["stages"] = "not a list"
    doc["payload"] = base64.b64encode(canonical(policy)).decode()
    with pytest.raises(PolicyError) as info:
        parse_signed_policy(doc, what="p.json")
    assert info.value.message == "p.json: signed policy payload is invalid"
    assert info.value.problems
    assert all("stages" in problem for problem in info.value.problems), info.value.problems
    with pytest.raises(MalformedDocumentError) as bad:
        parse_signed_policy({**doc, "payload": base64.b64encode(b"{").decode()})
    assert bad.value.message.startswith("signed policy: payload: ")


def test_an_oversize_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.signed.json"
    with path.open("wb") as fh:
        fh.truncate(48 * 1024 * 1024 + 1)
    with pytest.raises(MalformedDocumentError) as info:
        load_signed_policy(path)
    assert info.value.message == f"{path}: larger than 48 MiB, the limit for a signed policy"


def test_a_signed_policy_loads_with_its_digest(pipeline: Pipeline) -> None:
    signed = load_signed_policy(pipeline.signed_policy_path)
    assert signed.envelope.payload_type == POLICY_PAYLOAD_TYPE
    assert signed.digest == pipeline.signed.digest
    assert signed.document == json.loads(signed.envelope.payload)
    assert signed.unsigned_by([pipeline.keys["owner"].public]) == []
    other = pipeline.keys["intruder"].public
    assert signed.unsigned_by([pipeline.keys["owner"].public, other]) == [other]


def test_a_document_that_is_no_envelope_is_named(tmp_path: Path) -> None:
    path = tmp_path / "policy.signed.json"
    path.write_text(json.dumps({"payload": 1}))
    with pytest.raises(MalformedDocumentError) as info:
        load_signed_policy(path)
    assert info.value.message.startswith(f"{path}: ")
    with pytest.raises(MalformedDocumentError) as info:
        parse_signed_policy({"payload": 1})
    assert info.value.message.startswith("signed policy: ")
