"""Property tests of the human-written documents: policies (YAML and signed), objectives,
data schemas, metrics files, CEL expressions and RFC 3339 instants.

Round trips for generated valid documents; for arbitrary and mutated input, only
the documented bad-input errors (exit 3).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mlspec_attest.evidence.dataschema import load_data_schema, schema_digest
from mlspec_attest.evidence.metrics_file import read_metrics_document
from mlspec_attest.formats.jsonio import canonical, loads_strict
from mlspec_attest.formats.rfc3339 import format_rfc3339, parse_rfc3339
from mlspec_attest.policy import sign_policy
from mlspec_attest.policy.celexpr import ExpressionError, compile_expression, key, literal
from mlspec_attest.policy.compiler import compile_policy
from mlspec_attest.policy.criteria import Evidence
from mlspec_attest.policy.load import lint_policy_text
from mlspec_attest.policy.objectives import evaluate_objectives, load_objectives
from mlspec_attest.policy.signed import parse_signed_policy
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, generate_key

from .strategies import (
    budget,
    finite_numbers,
    instants,
    json_values,
    mutated,
    mutated_doc,
    stage_kinds,
    stage_names,
    yaml_text,
)
from .targets._harness import PROJECT_ROOT, parse_or_none

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICIES = PROJECT_ROOT / "policies"
OBJECTIVES_EXAMPLE = (POLICIES / "objectives.yaml").read_bytes()


@functools.cache
def owners() -> tuple[LocalKeySigner, ...]:
    """Real keys for functionaries and policy owners, made once."""
    return (generate_key(KeyType.ED25519), generate_key(KeyType.ECDSA_P256))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("documents")


# ---------------------------------------------------------------- policies
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,10}", fullmatch=True)


@st.composite
def policy_docs(draw: st.DrawFn) -> dict[str, Any]:
    keys = owners()
    people = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    functionaries = {
        person: {
            "publicKey": keys[i % len(keys)].public_key.pem(),
            "description": draw(yaml_text),
        }
        for i, person in enumerate(people)
    }
    stage_list = draw(st.lists(stage_names, min_size=1, max_size=4, unique=True))
    stages = []
    for i, name in enumerate(stage_list):
        signers = draw(st.lists(st.sampled_from(people), min_size=1, unique=True))
        after = draw(st.lists(st.sampled_from(stage_list[:i]), unique=True)) if i else []
        materials = ["ALLOW data/*"] + [f"MATCH out/{a}/* WITH PRODUCTS FROM {a}" for a in after]
        stages.append(
            {
                "name": name,
                "kind": draw(stage_kinds),
                "functionaries": signers,
                "threshold": draw(st.integers(1, len(signers))),
                "after": after,
                "materials": [*materials, "DISALLOW *"],
                "products": [f"CREATE out/{name}/*", "DISALLOW *"],
                "required": draw(st.booleans()),
            }
        )
    doc: dict[str, Any] = {
        "apiVersion": "mlspec-attest/v1",
        "kind": "Policy",
        "metadata": {"name": draw(yaml_text.filter(bool)), "owner": "owner@example.org"},
        "expires": format_rfc3339(draw(instants.filter(lambda t: t.year >= 2030))),
        "functionaries": functionaries,
        "stages": stages,
        "requirePolicyDigest": draw(st.booleans()),
    }
    if draw(st.booleans()):
        last = stage_list[-1]
        doc["deploy"] = {"artifacts": {"model": {"stage": last, "product": f"out/{last}/model"}}}
    if draw(st.booleans()):
        first = stage_list[0]
        threshold = draw(finite_numbers)
        doc["requirements"] = [
            {
                "id": "r1",
                "expr": f"stages[{key(first)}].metrics[{key('loss')}] < {literal(threshold)}",
            }
        ]
    return doc


@budget(15)
@given(policy_docs())
def test_policy_compiles_signs_and_reads_back_the_same(doc: dict[str, Any]) -> None:
    policy, problems = compile_policy(doc, base_dir=None)
    assert policy is not None, [str(p) for p in problems]
    form = policy.to_json()
    again, _ = compile_policy(loads_strict(canonical(form)), base_dir=None)
    assert again is not None and again.to_json() == form
    owner = owners()[0]
    signed = parse_signed_policy(json.loads(json.dumps(sign_policy(policy, [owner]).to_json())))
    assert signed.policy.to_json() == form
    assert signed.unsigned_by([owner.public_key]) == []
    assert signed.unsigned_by([owners()[1].public_key]) == [owners()[1].public_key]
    as_yaml, _ = lint_policy_text(
        json.dumps(doc, indent=2, ensure_ascii=False), source="p.yaml", base_dir=Path("."), now=NOW
    )
    assert as_yaml is not None and as_yaml.to_json() == form  # JSON is YAML


GOLDEN_POLICY = loads_strict(
    base64.b64decode(
        loads_strict((PROJECT_ROOT / "tests" / "golden" / "policy.signed.json").read_bytes())[
            "payload"
        ]
    )
)


@budget(25)
@given(json_values | mutated_doc(GOLDEN_POLICY))
def test_policy_compiler_reports_problems_and_never_raises(doc: Any) -> None:
    result = parse_or_none(compile_policy, doc, base_dir=None)
    if result is not None and result[0] is not None:
        form = result[0].to_json()
        again, problems = compile_policy(loads_strict(canonical(form)), base_dir=None)
        assert again is not None and again.to_json() == form, [str(p) for p in problems]


GOLDEN_SIGNED_POLICY = loads_strict(
    (PROJECT_ROOT / "tests" / "golden" / "policy.signed.json").read_bytes()
)


@budget(50)
@given(json_values | mutated_doc(GOLDEN_SIGNED_POLICY))
def test_signed_policy_parser_raises_only_bad_input(doc: Any) -> None:
    signed = parse_or_none(parse_signed_policy, doc)
    if signed is not None:
        assert isinstance(signed.unsigned_by([owners()[0].public_key]), list)


POLICY_TEXTS = [
    p.read_bytes() for p in sorted(POLICIES.glob("*.yaml")) if b"kind: Policy" in p.read_bytes()
]


@budget(30)
@given(st.text(max_size=80) | mutated(POLICY_TEXTS).map(lambda b: b.decode("utf-8", "replace")))
@example("a: &a [*a, *a, *a]\nb: [*a, *a, *a, *a]\n")
@example("- " * 5000)
@example("x: !!python/object:os.system ls\n")
def test_policy_yaml_lint_returns_problems(text: str) -> None:
    result = parse_or_none(lint_policy_text, text, source="p.yaml", base_dir=POLICIES, now=NOW)
    if result is not None:
        policy, problems = result
        assert policy is not None or any(p.severity == "error" for p in problems)


# ---------------------------------------------------------------- objectives
@st.composite
def objectives_docs(draw: st.DrawFn) -> dict[str, Any]:
    metric = draw(yaml_text.filter(bool))
    bound = draw(finite_numbers)
    criteria = [
        {"id": "threshold", "stage": "test", "metric": metric, "max": bound},
        {
            "id": "gap",
            "stage": "test",
            "gap": {"family": "sex", "metric": "mae", "max": abs(bound)},
        },
        {
            "id": "each",
            "stage": "test",
            "eachSlice": {"family": "sex", "metric": metric, "min": bound},
        },
        {
            "id": "change",
            "stage": "test",
            "change": {
                "metric": "mae",
                "direction": draw(st.sampled_from(["lower-is-better", "higher-is-better"])),
                "maxWorsening": bound,
            },
        },
        {"id": "expr", "stage": "test", "expr": f"metrics[{key(metric)}] <= {literal(bound)}"},
    ]
    return {
        "apiVersion": "mlspec-attest/v1",
        "kind": "Objectives",
        "metadata": {"name": draw(yaml_text.filter(bool)), "version": "1"},
        "criteria": draw(
            st.lists(st.sampled_from(criteria), min_size=1, unique_by=lambda c: c["id"])
        ),
    }


@budget(25)
@given(objectives_docs(), finite_numbers)
def test_objectives_load_and_evaluate(scratch: Path, doc: dict[str, Any], value: float) -> None:
    path = scratch / "objectives.json"
    path.write_text(json.dumps(doc, ensure_ascii=False))
    objectives = load_objectives(path)
    assert objectives.document == doc
    metric = next((c["metric"] for c in doc["criteria"] if "metric" in c), "mae")
    slices = {
        "sex": {v: {"count": 5, "metrics": {"mae": value, metric: value}} for v in ("1", "2")}
    }
    evidence = {"test": Evidence("test", {"mae": value, metric: value}, slices)}
    results = evaluate_objectives(objectives, evidence, baseline={"mae": 1.0})
    assert [r.id for r in results] == [c["id"] for c in doc["criteria"]]
    for criterion, result in zip(doc["criteria"], results, strict=True):
        if "metric" in criterion:
            assert result.passed == (value <= criterion["max"]), result.message


@budget(30)
@given(st.binary(max_size=60) | mutated([OBJECTIVES_EXAMPLE]))
def test_objectives_loader_raises_only_bad_input(scratch: Path, data: bytes) -> None:
    path = scratch / "fuzzed-objectives.yaml"
    path.write_bytes(data)
    objectives = parse_or_none(load_objectives, path)
    if objectives is not None:
        evidence = {s: Evidence(s, {"mae": 1.0}) for s in objectives.stages()}
        assert len(evaluate_objectives(objectives, evidence)) == len(objectives.criteria)


# ---------------------------------------------------------------- CEL
@budget(30)
@given(st.text(max_size=12), finite_numbers)
def test_cel_key_quotes_any_metric_name(name: str, value: float) -> None:
    """key() must make every metric name (policies and objectives take them from YAML) a
    CEL string literal naming exactly that key."""
    compiled = compile_expression(f"metrics[{key(name)}] == {literal(value)}")
    assert compiled.evaluate({"metrics": {name: float(value)}})


@budget(30)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_cel_literal_is_the_same_double(value: float) -> None:
    assert compile_expression(f"v == {literal(value)}").evaluate({"v": value})


CEL_SEEDS = [
    b'metrics["mae"] <= 45.0 && size(slices.sex) >= 2',
    b"max([slices.sex['1'].mae, slices.sex['2'].mae]) - min([1.0, 2.0]) <= 8.0",
    b"stages.train.metrics.loss < 1.0 || has(stages.train.kind)",
]


@budget(50)
@given(st.text(max_size=40) | mutated(CEL_SEEDS).map(lambda b: b.decode("utf-8", "replace")))
@example("9223372036854775807 + 1 == 0")
@example("-9223372036854775808 / -1 == 0")
@example("1 / 0 == 1")
@example('"a" * 3 == "aaa"')
def test_cel_compile_and_evaluate_raise_only_documented_errors(text: str) -> None:
    compiled = parse_or_none(compile_expression, text)
    if compiled is None:
        return
    activation = {
        "metrics": {"mae": 1.0},
        "slices": {"sex": {"1": {"mae": 1.0}, "2": {"mae": 2.0}}},
    }
    with contextlib.suppress(ExpressionError):
        assert isinstance(compiled.evaluate(activation), bool)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_objectives_yaml_and_json_agree_on_escaped_astral_characters(
    scratch: Path, suffix: str
) -> None:
    doc = {
        "apiVersion": "mlspec-attest/v1",
        "kind": "Objectives",
        "metadata": {"name": "\U0001f600", "version": "1"},
        "criteria": [{"id": "a", "stage": "test", "metric": "mae", "max": 1}],
    }
    path = scratch / f"escaped{suffix}"
    path.write_text(json.dumps(doc))  # ensure_ascii: "\ud83d\ude00"
    assert load_objectives(path).document == doc


@pytest.mark.parametrize(
    "text",
    ["(" * 300 + "1" + ")" * 300 + " == 1", "1" + " + 1" * 600 + " > 0", "!" * 1000 + "true"],
    ids=["parentheses", "sum", "negations"],
)
def test_cel_deep_expressions_are_bad_input(text: str) -> None:
    compiled = parse_or_none(compile_expression, text)
    if compiled is not None:
        with pytest.raises(ExpressionError):
            compiled.evaluate({})


# ---------------------------------------------------------------- data schemas
column_types = st.sampled_from(["integer", "number", "string", "boolean"])


@st.composite
def data_schemas(draw: st.DrawFn) -> dict[str, Any]:
    columns = []
    for name in draw(st.lists(yaml_text.filter(bool), min_size=1, max_size=4, unique=True)):
        kind = draw(column_types)
        column: dict[str, Any] = {"name": name, "type": kind, "nullable": draw(st.booleans())}
        if kind in ("integer", "number"):
            low, high = sorted(draw(st.lists(st.integers(-1000, 1000), min_size=2, max_size=2)))
            column.update(min=low, max=high)
            if kind == "integer":
                column["enum"] = draw(
                    st.lists(st.integers(low, high), min_size=1, max_size=3, unique=True)
                )
        elif kind == "string":
            column["enum"] = draw(st.lists(yaml_text, min_size=1, max_size=3, unique=True))
        columns.append(column)
    return {
        "apiVersion": "mlspec-attest/v1",
        "kind": "DataSchema",
        "name": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,10}", fullmatch=True)),
        "version": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,6}", fullmatch=True)),
        "columns": columns,
        "additionalColumns": draw(st.booleans()),
    }


@budget(25)
@given(data_schemas())
def test_data_schema_reads_the_same_from_json_and_yaml(scratch: Path, doc: dict[str, Any]) -> None:
    as_json, as_yaml = scratch / "schema.json", scratch / "schema.yaml"
    as_json.write_text(json.dumps(doc))
    as_yaml.write_text(json.dumps(doc, indent=2, ensure_ascii=False))  # JSON is YAML 1.2
    from_json, from_yaml = load_data_schema(as_json), load_data_schema(as_yaml)
    assert from_json == doc
    assert from_yaml == doc
    assert schema_digest(from_json) == schema_digest(from_yaml)


@budget(30)
@given(
    st.booleans(),
    st.binary(max_size=40)
    | mutated([(PROJECT_ROOT / "tests" / "data" / "tabular" / "sensors-schema.yaml").read_bytes()]),
)
def test_data_schema_loader_raises_only_bad_input(
    scratch: Path, as_json: bool, data: bytes
) -> None:
    path = scratch / ("fuzzed-schema.json" if as_json else "fuzzed-schema.yaml")
    path.write_bytes(data)
    schema = parse_or_none(load_data_schema, path)
    if schema is not None:
        assert schema_digest(schema) == schema_digest(loads_strict(canonical(schema)))


# ---------------------------------------------------------------- metrics files
metric_maps = st.dictionaries(st.text(min_size=1, max_size=8), finite_numbers, max_size=4)


@budget(25)
@given(
    metric_maps,
    st.dictionaries(
        st.text(min_size=1, max_size=4),
        st.dictionaries(
            st.text(min_size=1, max_size=4),
            st.fixed_dictionaries({"count": st.integers(0, 99), "metrics": metric_maps}),
            max_size=2,
        ),
        max_size=2,
    ),
)
def test_metrics_document_reads_back(
    scratch: Path, metrics: dict[str, Any], slices: dict[str, Any]
) -> None:
    path = scratch / "metrics.json"
    path.write_text(json.dumps({"metrics": metrics, "slices": slices}))
    doc = read_metrics_document(path)
    assert doc.metrics == metrics and doc.slices == slices
    if not any(k in metrics for k in ("metrics", "slices")):
        path.write_text(json.dumps(metrics))
        assert read_metrics_document(path).metrics == metrics


@budget(25)
@given(
    json_values
    | mutated_doc(
        {"metrics": {"mae": 1.5}, "slices": {"sex": {"f": {"count": 3, "metrics": {"mae": 2}}}}}
    )
)
def test_metrics_reader_raises_only_bad_input(scratch: Path, doc: Any) -> None:
    path = scratch / "fuzzed-metrics.json"
    path.write_text(json.dumps(doc))
    read = parse_or_none(read_metrics_document, path)
    if read is not None:
        assert all(math.isfinite(v) for v in read.metrics.values())


# ---------------------------------------------------------------- RFC 3339
@budget(50)
@given(
    st.datetimes(
        min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
    )
)
def test_rfc3339_format_then_parse_is_the_same_second(moment: datetime) -> None:
    text = format_rfc3339(moment)
    assert parse_rfc3339(text) == moment.astimezone(UTC).replace(microsecond=0)
    assert format_rfc3339(parse_rfc3339(text)) == text


@budget(20)
@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(999, 12, 31), timezones=st.just(UTC)
    )
)
@example(datetime(970, 1, 1, tzinfo=UTC))
def test_rfc3339_round_trip_before_year_1000(moment: datetime) -> None:
    """strftime("%Y") does not pad years below 1000 (found by the rfc3339 fuzz target)."""
    assert parse_rfc3339(format_rfc3339(moment)) == moment.replace(microsecond=0)


@budget(50)
@given(st.text(max_size=40) | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()))
@example("0001-01-01T00:00:00+01:00")
@example("9999-12-31T23:59:59-01:00")
def test_rfc3339_parser_raises_only_value_error(text: str) -> None:
    try:
        moment = parse_rfc3339(text)
    except ValueError:
        return
    assert moment.tzinfo is UTC
