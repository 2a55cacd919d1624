"""The JSON Schemas shipped in the package are the ones published in docs/schemas/."""

from __future__ import annotations

import json

import pytest

from mlspec_attest.formats.schemas import load_schema, schema_errors

from .support import PROJECT_ROOT

PACKAGE_SCHEMAS = PROJECT_ROOT / "mlspec_attest" / "formats" / "schemas"
DOCS_SCHEMAS = PROJECT_ROOT / "docs" / "schemas"
NAMES = sorted(p.name for p in PACKAGE_SCHEMAS.glob("*.json"))


def test_package_ships_schemas() -> None:
    assert {"policy-v1.schema.json", "stage-metadata-v1.schema.json"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_docs_schema_is_identical(name: str) -> None:
    if not DOCS_SCHEMAS.is_dir():
        pytest.skip(f"{DOCS_SCHEMAS} does not exist (yet)")
    published = DOCS_SCHEMAS / name
    assert published.is_file(), f"{name} is not published in docs/schemas/"
    assert published.read_bytes() == (PACKAGE_SCHEMAS / name).read_bytes()


def test_docs_publish_no_stale_schemas() -> None:
    if not DOCS_SCHEMAS.is_dir():
        pytest.skip(f"{DOCS_SCHEMAS} does not exist (yet)")
    assert sorted(p.name for p in DOCS_SCHEMAS.glob("*.json")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_schemas_are_valid_json_schema(name: str) -> None:
    import jsonschema

    schema = json.loads((PACKAGE_SCHEMAS / name).read_text("utf-8"))
    jsonschema.validators.validator_for(schema).check_schema(schema)
    assert load_schema(name.removesuffix(".schema.json")) == schema


def test_schema_errors_report_every_violation() -> None:
    doc = {
        "schemaVersion": "https://mlspec-attest.dev/stage/v1",
        "stage": "BAD",
        "kind": "train",
        "runId": "r",
        "startedOn": "2025-01-01T00:00:00Z",
        "finishedOn": "2025-01-01T00:00:00Z",
        "metrics": {"m": "x"},
        "colour": "red",
    }
    found = {tuple(path): message for path, message in schema_errors("stage-metadata-v1", doc)}
    assert set(found) >= {("metrics", "m"), ("stage",)}
    assert any("colour" in message for message in found.values())
