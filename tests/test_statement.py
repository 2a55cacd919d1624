"""in-toto Statement v1 + Link v0.3 predicate + the mlspec stage metadata."""

from __future__ import annotations

import base64
import copy
import json
import math
from typing import Any

import pytest

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.formats.statement import (
    LINK_PREDICATE_TYPE,
    MLSPEC_METADATA_VERSION,
    STATEMENT_TYPE,
    CommandRecord,
    ResourceDescriptor,
    StageMetadata,
    StageStatement,
    check_finite_metrics,
)

from .support import asset

SHA_A = "a" * 64
SHA_B = "b" * 64


def make_statement(**meta: Any) -> StageStatement:
    fields: dict[str, Any] = {
        "stage": "train",
        "kind": "train",
        "run_id": "run-1",
        "started_on": "2025-06-01T12:00:00Z",
        "finished_on": "2025-06-01T12:00:05Z",
        "policy_digest": "sha256:" + "c" * 64,
        "parameters": {"max_depth": 4, "criterion": "mse", "warm": False, "note": None},
        "metrics": {"mae": 41.5, "rows": 300},
        "slices": {"sex": {"f": {"count": 10, "metrics": {"mae": 40.0}}}},
        "roles": {"train": "data/train.csv", "model": "model"},
        "infrastructure": {"accelerator": "none"},
        "details": {"notes": [1, 2]},
    }
    fields.update(meta)
    return StageStatement(
        products=(
            ResourceDescriptor(
                "model",
                {"sha256": SHA_A, "manifest-sha256": SHA_B},
                {"mlspec.kind": "directory", "mlspec.files": 2, "mlspec.size": 10},
            ),
        ),
        materials=(ResourceDescriptor("data/train.csv", {"sha256": SHA_B}),),
        metadata=StageMetadata(**fields),
        command=CommandRecord(("python", "train.py"), 0, "d" * 64, "e" * 64),
        environment={"tool": {"name": "mlspec-attest"}},
    )


def test_statement_layout() -> None:
    doc = make_statement().to_json()
    assert doc["_type"] == STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    assert doc["predicateType"] == LINK_PREDICATE_TYPE == "https://in-toto.io/attestation/link/v0.3"
    assert doc["subject"] == [
        {
            "name": "model",
            "digest": {"sha256": SHA_A, "manifest-sha256": SHA_B},
            "annotations": {"mlspec.kind": "directory", "mlspec.files": 2, "mlspec.size": 10},
        }
    ]
    predicate = doc["predicate"]
    assert set(predicate) == {"name", "command", "materials", "byproducts", "environment"}
    assert predicate["name"] == "train"
    assert predicate["command"] == ["python", "train.py"]
    assert predicate["materials"] == [{"name": "data/train.csv", "digest": {"sha256": SHA_B}}]
    byproducts = predicate["byproducts"]
    assert byproducts["return-value"] == 0
    assert byproducts["stdout-sha256"] == "d" * 64
    assert byproducts["stderr-sha256"] == "e" * 64
    mlspec = byproducts["mlspec"]
    assert mlspec["schemaVersion"] == MLSPEC_METADATA_VERSION
    assert mlspec["runId"] == "run-1"
    assert mlspec["policyDigest"] == "sha256:" + "c" * 64
    assert mlspec["startedOn"] == "2025-06-01T12:00:00Z"
    assert mlspec["metrics"] == {"mae": 41.5, "rows": 300}


def test_no_command_means_no_command_byproducts() -> None:
    statement = make_statement()
    bare = StageStatement(statement.products, statement.materials, statement.metadata)
    doc = bare.to_json()
    assert doc["predicate"]["command"] == []
    assert set(doc["predicate"]["byproducts"]) == {"mlspec"}
    assert doc["predicate"]["environment"] == {}


def test_policy_digest_is_optional() -> None:
    mlspec = make_statement(policy_digest=None).to_json()["predicate"]["byproducts"]["mlspec"]
    assert "policyDigest" not in mlspec


def test_payload_is_canonical_json() -> None:
    statement = make_statement()
    payload = statement.to_payload()
    assert payload == canonical(statement.to_json())
    assert json.loads(payload) == statement.to_json()
    assert b" " not in payload.replace(b"python train.py", b"")  # no insignificant whitespace
    keys = list(json.loads(payload))
    assert keys == sorted(keys)


def test_payload_round_trip() -> None:
    statement = make_statement()
    again = StageStatement.from_payload(statement.to_payload())
    assert again == statement
    assert again.to_payload() == statement.to_payload()


def _broken(mutate: Any) -> dict[str, Any]:
    doc = copy.deepcopy(make_statement().to_json())
    mutate(doc)
    return doc


def _mlspec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["predicate"]["byproducts"]["mlspec"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(lambda d: d.update(_type="x"), "not an in-toto Statement v1", id="type"),
        pytest.param(
            lambda d: d.update(predicateType="https://slsa.dev/provenance/v1"),
            "is not a Link v0.3",
            id="predicate-type",
        ),
        pytest.param(lambda d: d.pop("subject"), "missing predicate or subject", id="no-subject"),
        pytest.param(
            lambda d: d["predicate"]["byproducts"].pop("mlspec"),
            "no byproducts.mlspec",
            id="mlspec",
        ),
        pytest.param(
            lambda d: d["predicate"].update(name="package"), "name differs", id="name-mismatch"
        ),
        pytest.param(
            lambda d: d["subject"][0].update(name="../model"), "normalized relative", id="dotdot"
        ),
        pytest.param(
            lambda d: d["subject"][0].update(name="/etc/passwd"), "normalized relative", id="abs"
        ),
        pytest.param(
            lambda d: d["predicate"]["materials"][0].update(name="./data/train.csv"),
            "normalized relative",
            id="dot-slash",
        ),
        pytest.param(lambda d: d["subject"][0].update(digest={}), "non-empty digest", id="digest"),
        pytest.param(
            lambda d: d["subject"][0].update(digest={"sha256": 1}),
            "must be strings",
            id="digest-int",
        ),
        pytest.param(
            lambda d: d["subject"][0].update(annotations=[]), "annotations", id="annotations"
        ),
        pytest.param(
            lambda d: d["predicate"].update(materials={}), "must be lists", id="materials-type"
        ),
        pytest.param(lambda d: _mlspec(d).update(extra=1), "stage schema", id="unknown-field"),
        pytest.param(lambda d: _mlspec(d).pop("runId"), "stage schema", id="no-run-id"),
        pytest.param(
            lambda d: _mlspec(d).update(policyDigest="md5:00"), "stage schema", id="policy-digest"
        ),
        pytest.param(
            lambda d: _mlspec(d)["metrics"].update(mae="good"), "stage schema", id="metric-str"
        ),
        pytest.param(lambda d: _mlspec(d).update(startedOn="yesterday"), "RFC 3339", id="bad-time"),
        pytest.param(
            lambda d: _mlspec(d).update(schemaVersion="v0"), "stage schema", id="schema-version"
        ),
        pytest.param(
            lambda d: d["subject"].append(dict(d["subject"][0], digest={"sha256": "0" * 64})),
            "is listed twice",
            id="duplicate-product",
        ),
        pytest.param(
            lambda d: d["predicate"]["materials"].append(d["predicate"]["materials"][0]),
            "is listed twice",
            id="duplicate-material",
        ),
        pytest.param(
            lambda d: d["subject"].extend(
                [
                    {"name": "dist/model", "digest": {"sha256": "1" * 64}},
                    {"name": "dist/model/model.pkl", "digest": {"sha256": "2" * 64}},
                ]
            ),
            "recorded inside 'dist/model', which is recorded as a file",
            id="file-with-insides",
        ),
    ],
)
def test_malformed_statements_are_refused(mutate: Any, message: str) -> None:
    with pytest.raises(MalformedDocumentError, match=message):
        StageStatement.from_json(_broken(mutate))


def test_a_directory_may_list_a_file_inside_it() -> None:
    """A directory artifact (with a manifest) and one of its files, both recorded: fine."""

    def add(d: dict[str, Any]) -> None:
        d["subject"] = [
            {"name": "model", "digest": {"sha256": "1" * 64, "manifest-sha256": "2" * 64}},
            {"name": "model/weights.bin", "digest": {"sha256": "3" * 64}},
        ]

    statement = StageStatement.from_json(_broken(add))
    assert [p.name for p in statement.products] == ["model", "model/weights.bin"]


def test_duplicate_keys_in_payload_are_refused() -> None:
    payload = make_statement().to_payload()
    duplicated = payload[:-1] + b',"_type":"https://in-toto.io/Statement/v1"}'
    with pytest.raises(MalformedDocumentError, match="duplicate key"):
        StageStatement.from_payload(duplicated)


def test_model_signing_statement_is_not_a_stage() -> None:
    bundle = json.loads(
        asset("model-signing/cli-fixtures/v1.1.0-elliptic-key/model.sig").read_bytes()
    )
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    with pytest.raises(MalformedDocumentError, match=r"not a Link v0\.3"):
        StageStatement.from_payload(payload)


def test_resource_descriptor_omits_empty_annotations() -> None:
    assert ResourceDescriptor("a", {"sha256": SHA_A}).to_json() == {
        "name": "a",
        "digest": {"sha256": SHA_A},
    }


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "1.0", None, [1]], ids=repr)
def test_check_finite_metrics_refuses(value: object) -> None:
    with pytest.raises(MalformedDocumentError, match="'m'"):
        check_finite_metrics({"m": value}, what="test")


def test_check_finite_metrics_accepts_numbers() -> None:
    assert check_finite_metrics({"a": 1, "b": -2.5, "c": 0.0}, what="t") == {
        "a": 1,
        "b": -2.5,
        "c": 0.0,
    }
