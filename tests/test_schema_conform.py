"""The jsonschema-free check (formats/schemas/conform.py) agrees with jsonschema.

``schema_errors`` asks :mod:`~mlspec_attest.formats.schemas.conform` first and returns
no error when it says "valid", so that answer must never be given to a document
jsonschema rejects. Every document the package validates while a real ML pipeline is
signed and verified, the shipped policies and templates are loaded, is compared under
both, and so are thousands of mutations of them (a key dropped or added, a value
replaced by each JSON type, a list item repeated): the two must agree on every one.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mlspec_attest.evidence.analysis import analyze_dataset
from mlspec_attest.evidence.metrics_document import METRICS_SCHEMA
from mlspec_attest.evidence.metrics_file import validate_metrics_document
from mlspec_attest.formats import schemas
from mlspec_attest.formats.schemas import conform
from mlspec_attest.policy.load import read_policy_any

from .mlpipeline import MLPipeline
from .support import PROJECT_ROOT

NAMES = sorted(p.name.removesuffix(".schema.json") for p in Path(schemas.__file__).parent.glob("*.schema.json"))  # fmt: skip
REPLACEMENTS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2.5,
    1e300,
    "",
    "x",
    "sha256:" + "a" * 64,
    [],
    {},
]


def judged_by_jsonschema(name: str, definition: str | None, doc: Any) -> bool:
    return not any(True for _ in schemas._validator(name, definition).iter_errors(doc))


@pytest.mark.parametrize("name", NAMES)
def test_every_shipped_schema_is_checked_without_jsonschema(name: str) -> None:
    # A schema keyword conform.py lacks would send every document to jsonschema: correct,
    # but the start-up cost this module exists to avoid would be back.
    assert schemas._conformance(name, None) is not None


def test_a_keyword_it_does_not_implement_leaves_the_answer_to_jsonschema() -> None:
    schema = {"type": "object", "if": {"required": ["a"]}, "then": {"required": ["b"]}}
    assert conform.conformance(schema, schema) is None
    ref = {"$ref": "https://example.org/other.json"}
    assert conform.conformance(ref, ref) is None


def test_equality_is_jsonschemas() -> None:
    # True is not 1 for enum/const/uniqueItems, recursively; 1 and 1.0 are equal.
    assert not conform.equal(True, 1) and not conform.equal([0], [False])
    assert conform.equal(1, 1.0) and conform.equal({"a": [1]}, {"a": [1.0]})
    assert conform.unique([1, True]) and not conform.unique([{"a": 1}, {"a": 1}])


#: Each keyword on its edges: every instance is judged by both.
KEYWORD_CASES: list[tuple[dict[str, Any], list[Any]]] = [
    ({"type": "integer"}, [1, 1.0, 1.5, True, "1", None]),
    ({"type": ["number", "null"]}, [0, -2.5, None, False, "x", [], {}]),
    ({"minimum": 1, "maximum": 3}, [0, 1, 3, 3.5, "7", True]),
    ({"exclusiveMinimum": 0, "exclusiveMaximum": 1}, [0, 0.5, 1, -1, "0"]),
    ({"minLength": 2, "maxLength": 3}, ["a", "ab", "abcd", "é" * 3, 12]),
    ({"pattern": "^sha256:[0-9a-f]{4}$"}, ["sha256:abcd", "xsha256:abcd", "sha256:ABCD", 5]),
    ({"enum": [1, "a", [True]]}, [1, 1.0, True, "a", [True], [1], None]),
    ({"const": {"a": [0]}}, [{"a": [0]}, {"a": [False]}, {"a": [0.0]}, {"a": [0], "b": 1}]),
    ({"uniqueItems": True}, [[1, 2], [1, 1.0], [1, True], [{"a": 1}, {"a": 1}], [[1], [True]]]),
    ({"minItems": 1, "maxItems": 2}, [[], [1], [1, 2, 3], "ab", {}]),
    ({"required": ["a"], "minProperties": 2}, [{"a": 1}, {"a": 1, "b": 2}, {"b": 1, "c": 2}, []]),
    ({"properties": {"a": {"type": "string"}}, "additionalProperties": False},
     [{"a": "x"}, {"a": 1}, {"b": 1}, {}, "a"]),
    ({"properties": {"a": {}}, "additionalProperties": {"type": "integer"}},
     [{"a": "x", "b": 1}, {"b": "x"}, {"a": 1}]),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, [{"ab": 1}, {"A": 1}, {}, [1]]),
    ({"items": {"type": "integer"}, "prefixItems": [{"type": "string"}]},
     [["a", 1, 2], ["a", "b"], [1], []]),
    ({"prefixItems": [{"type": "string"}], "items": False}, [["a"], ["a", 1], []]),
    ({"not": {"required": ["a"]}}, [{"a": 1}, {"b": 1}, 3]),
    ({"anyOf": [{"type": "string"}, {"minimum": 3}]}, ["x", 4, 2, None]),
    ({"oneOf": [{"type": "integer"}, {"minimum": 3}]}, [1, 4, 3.5, 2.5, "x"]),
    ({"allOf": [{"minimum": 1}, {"maximum": 2}]}, [1, 2, 3, 0, "x"]),
    ({"dependentSchemas": {"a": {"required": ["b"]}}}, [{"a": 1}, {"a": 1, "b": 1}, {"b": 1}]),
    ({"allOf": [{"properties": {"a": {}}}], "properties": {"b": {}}, "unevaluatedProperties": False},
     [{"a": 1, "b": 2}, {"a": 1, "c": 3}, {}]),
    ({"anyOf": [{"required": ["x"], "properties": {"x": {}}}, {"required": ["y"]}],
      "unevaluatedProperties": False}, [{"x": 1}, {"y": 1}, {"x": 1, "y": 1}]),
    ({"$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}},
     [{"a": 1}, {"a": "1"}]),
]  # fmt: skip


@pytest.mark.parametrize(("schema", "instances"), KEYWORD_CASES)
def test_each_keyword_is_judged_as_jsonschema_judges_it(
    schema: dict[str, Any], instances: list[Any]
) -> None:
    checker = conform.conformance(schema, schema)
    assert checker is not None
    reference = jsonschema.Draft202012Validator(schema)
    for value in instances:
        assert checker.conforms(value) == reference.is_valid(value), value


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from paths(v, (*prefix, i))


def mutations(doc: Any, rng: random.Random, limit: int) -> Iterator[Any]:
    every = list(paths(doc))
    for path in rng.sample(every, min(limit, len(every))):
        for make in (_replaced, _dropped, _added, _repeated):
            yield from make(doc, path, rng)


def _at(doc: Any, path: tuple[Any, ...]) -> tuple[Any, Any]:
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    return parent, path[-1] if path else None


def _replaced(doc: Any, path: tuple[Any, ...], rng: random.Random) -> Iterator[Any]:
    if not path:
        return
    for value in rng.sample(REPLACEMENTS, 4):
        out = copy.deepcopy(doc)
        parent, last = _at(out, path)
        parent[last] = value
        yield out


def _dropped(doc: Any, path: tuple[Any, ...], rng: random.Random) -> Iterator[Any]:
    if path:
        out = copy.deepcopy(doc)
        parent, last = _at(out, path)
        del parent[last]
        yield out


def _added(doc: Any, path: tuple[Any, ...], rng: random.Random) -> Iterator[Any]:
    out = copy.deepcopy(doc)
    parent, last = _at(out, path)
    target = parent[last] if path else out
    if isinstance(target, dict):
        target["zz-unknown"] = 1
        yield out


def _repeated(doc: Any, path: tuple[Any, ...], rng: random.Random) -> Iterator[Any]:
    out = copy.deepcopy(doc)
    parent, last = _at(out, path)
    target = parent[last] if path else out
    if isinstance(target, list) and target:
        target.append(copy.deepcopy(target[0]))
        yield out


@pytest.fixture
def validated(make_ml: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None, Any]]:
    """Every (schema, definition, document) the package checks while a real ML pipeline is
    signed and verified and the shipped policies and templates are read."""
    seen: list[tuple[str, str | None, Any]] = []
    real = schemas._errors

    def recording(name: str, definition: str | None, doc: Any) -> Any:
        seen.append((name, definition, copy.deepcopy(doc)))
        return real(name, definition, doc)

    monkeypatch.setattr(schemas, "_errors", recording)
    ml: MLPipeline = make_ml()
    assert ml.run().verify().passed
    schemas.schema_errors(
        "analysis-v1", analyze_dataset(PROJECT_ROOT / "tests" / "data" / "tabular" / "sensors.csv")
    )
    validate_metrics_document(
        {
            "schemaVersion": METRICS_SCHEMA,
            "metrics": {"mae": 1.5, "count": 10},
            "confidenceIntervals": {
                "mae": {
                    "low": 1.0,
                    "high": 2.0,
                    "level": 0.95,
                    "method": "bootstrap",
                    "resamples": 9,
                }
            },
            "slices": {"sex": {"1": {"count": 4, "metrics": {"mae": 1.0}, "omitted": {"r2": "x"}}}},
        },
        what="metrics",
    )
    for policy in sorted((PROJECT_ROOT / "policies").glob("*.yaml")):
        # A template may need keys it does not ship: only its document counts here.
        with contextlib.suppress(Exception):
            read_policy_any(policy)
    return seen


def test_conform_agrees_with_jsonschema(validated: list[tuple[str, str | None, Any]]) -> None:
    names = {name for name, _, _ in validated}
    assert names == set(NAMES), names
    rng = random.Random(15)
    compared = 0
    disagree: list[str] = []
    unique_docs = {json.dumps([n, d, doc], sort_keys=True): (n, d, doc) for n, d, doc in validated}
    for name, definition, doc in unique_docs.values():
        fast = schemas._conformance(name, definition)
        assert fast is not None
        for candidate in [doc, *mutations(doc, rng, limit=40)]:
            compared += 1
            if fast.conforms(candidate) != judged_by_jsonschema(name, definition, candidate):
                disagree.append(f"{name}/{definition}: {json.dumps(candidate)[:300]}")
    assert not disagree, f"{len(disagree)} of {compared} differ:\n" + "\n".join(disagree[:5])
    assert compared > 1000


def test_date_time_is_an_annotation_as_for_our_jsonschema_validators() -> None:
    schema = {"type": "string", "format": "date-time"}
    checker = conform.conformance(schema, schema)
    assert checker is not None
    for value in ("2026-01-01T00:00:00Z", "yesterday", "2026-13-01T00:00:00Z"):
        expected = jsonschema.Draft202012Validator(schema).is_valid(value)
        assert checker.conforms(value) == expected, value
