"""The CEL evaluator: added functions, literals, map keys, and failing closed."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.policy.celexpr import (
    Activation,
    CompiledExpression,
    ExpressionError,
    compile_expression,
    key,
    literal,
    non_finite_paths,
)


def holds(text: str, **activation: object) -> bool:
    return compile_expression(text).evaluate(activation)


# -- added functions ------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abs(-2.5) == 2.5", True),
        ("abs(2.5) == 2.5", True),
        ("abs(-3) == 3", True),
        ("abs(0.0) == 0.0", True),
        ("abs(-3) == -3", False),
        ("min([3.0, 1.0, 2.0]) == 1.0", True),
        ("min(3.0, 1.0, 2.0) == 1.0", True),
        ("min(4, 9) == 4", True),
        ("max([3.0, 1.0, 2.0]) == 3.0", True),
        ("max(3.0, 1.0, 2.0) == 3.0", True),
        ("max([7]) == 7", True),
        ("max([1.0, 2.0]) - min([1.0, 2.0]) <= 1.0", True),
        ("max([1.0, 5.0]) - min([1.0, 5.0]) <= 1.0", False),
    ],
)
def test_added_functions(text: str, expected: bool) -> None:
    assert holds(text) is expected


def test_abs_keeps_the_type() -> None:
    # an int stays an int (comparable with an int), a double stays a double
    assert holds("abs(x) == 4", x=-4)
    assert holds("abs(x) == 4.5", x=-4.5)
    with pytest.raises(ExpressionError, match="integers and doubles"):
        holds("abs(x) == 4.0", x=-4)


def test_functions_over_activation_values() -> None:
    slices = {"sex": {"F": {"mae": 48.0}, "M": {"mae": 53.0}}}
    gap = 'max([s["sex"]["F"]["mae"], s["sex"]["M"]["mae"]]) - min([s["sex"]["F"]["mae"], s["sex"]["M"]["mae"]])'
    assert holds(f"{gap} == 5.0", s=slices)
    assert not holds(f"{gap} <= 4.0", s=slices)


def test_min_of_an_empty_list_fails_closed() -> None:
    with pytest.raises(ExpressionError):
        holds("min([]) < 1.0")
    with pytest.raises(ExpressionError):
        holds("max(xs) > 1.0", xs=[])


# -- literal() -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [(1, "1.0"), (-3, "-3.0"), (0, "0.0"), (0.5, "0.5"), (1e20, "1e+20"), (1e-7, "1e-07")],
)
def test_literal_is_always_a_double(value: float, text: str) -> None:
    assert literal(value) == text
    # and CEL reads it as a double equal to the value
    assert holds(f"{literal(value)} == x", x=float(value))


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_literal_round_trips_through_cel(value: float) -> None:
    assert holds(f"{literal(value)} == x", x=value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_literal_refuses_non_finite(value: float) -> None:
    with pytest.raises(MalformedDocumentError, match="not finite"):
        literal(value)


# -- key() -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("mae", '"mae"'),
        ('we"ird', '"we\\"ird"'),
        ("back\\slash", '"back\\\\slash"'),
        ('"', '"\\""'),
        ("\\", '"\\\\"'),
    ],
)
def test_key_escapes_quotes_and_backslashes(name: str, text: str) -> None:
    assert key(name) == text
    assert holds(f"m[{key(name)}] == 1.0", m={name: 1.0, "other": 2.0})


@pytest.mark.parametrize(
    "name",
    ['a\\"] == 1.0 || true || m["', '"] || true || ["', "tab\there", "x'y", "unié", "\\x41"],
)
def test_key_cannot_be_used_for_injection(name: str) -> None:
    # the name is data: it selects that entry, never adds CEL code
    assert not holds(f"m[{key(name)}] == 1.0", m={name: 0.0})
    with pytest.raises(ExpressionError, match="missing value"):
        holds(f"m[{key(name)}] == 1.0", m={"unrelated": 1.0})


def test_key_escapes_a_newline() -> None:
    """BUG: key() leaves a raw newline in the literal, which CEL refuses to parse."""
    name = "line\nbreak"
    assert holds(f"m[{key(name)}] == 1.0", m={name: 1.0})


@given(st.text(alphabet=st.characters(exclude_characters="\n", exclude_categories=("Cs",))))
def test_key_selects_any_name_without_newline(name: str) -> None:
    assert holds(f"m[{key(name)}] == 1.0", m={name: 1.0})


# -- evaluation failures ------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind"),
    [("1 + 1", "IntType"), ('"yes"', "StringType"), ("2.5", "DoubleType"), ("[true]", "List")],
)
def test_non_boolean_result_raises(text: str, kind: str) -> None:
    with pytest.raises(ExpressionError, match=f"{kind}.*not a boolean"):
        holds(text)


def test_missing_key_raises_with_a_hint() -> None:
    with pytest.raises(ExpressionError, match="missing value"):
        holds('metrics["nope"] > 1.0', metrics={"mae": 1.0})
    with pytest.raises(ExpressionError, match="missing value"):
        holds("metrics.nope > 1.0", metrics={"mae": 1.0})


def test_int_double_comparison_hint() -> None:
    with pytest.raises(ExpressionError, match=r"write 45\.0 rather than 45"):
        holds('metrics["mae"] == 45', metrics={"mae": 45.0})
    assert holds('metrics["mae"] == 45.0', metrics={"mae": 45.0})


def test_division_by_zero_raises() -> None:
    with pytest.raises(ExpressionError):
        holds("1.0 / x > 0.0", x=0)


def test_unknown_variable_raises() -> None:
    with pytest.raises(ExpressionError):
        holds("nothing > 1.0")


@pytest.mark.parametrize(
    "text", ["1 +", 'metrics["mae" <= 1.0', "a &&", "((true)", "x ==== 1", "for x in y"]
)
def test_compile_error_is_malformed_document(text: str) -> None:
    with pytest.raises(MalformedDocumentError, match="invalid CEL expression") as info:
        compile_expression(text)
    assert repr(text) in info.value.message


def test_compiled_expression_keeps_text_and_is_reusable() -> None:
    compiled = compile_expression('m["a"] > 1.0')
    assert isinstance(compiled, CompiledExpression)
    assert compiled.text == 'm["a"] > 1.0'
    assert compiled.evaluate({"m": {"a": 2.0}}) is True
    assert compiled.evaluate({"m": {"a": 0.5}}) is False


def test_no_side_effects_or_io() -> None:
    # CEL has no I/O: an attempt to call something unknown is an evaluation error
    with pytest.raises((ExpressionError, MalformedDocumentError)):
        holds('open("/etc/passwd") == ""')


# -- non_finite_paths --------------------------------------------------------------
def test_non_finite_paths() -> None:
    value = {
        "metrics": {"mae": math.nan, "r2": 0.4},
        "slices": {"sex": {"F": {"mae": math.inf}}},
        "list": [1.0, -math.inf],
    }
    assert non_finite_paths(value) == ["metrics.mae", "slices.sex.F.mae", "list[1]"]
    assert non_finite_paths({"ok": 1.0, "n": 3}) == []
    assert non_finite_paths(math.nan) == ["(value)"]


def test_an_entry_the_expression_does_not_name_is_not_converted() -> None:
    # Converting an activation to CEL values costs as much as evaluating; the stage
    # records an objective never reads are left alone.
    unconvertible = {"x": object()}
    assert compile_expression('metrics["mae"] < 3.0').evaluate(
        {"metrics": {"mae": 1.0}, "stages": unconvertible}
    )
    with pytest.raises(ExpressionError):
        compile_expression("size(stages) > 0").evaluate({"stages": unconvertible})


def test_an_activation_is_converted_once_for_every_expression(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import celpy

    calls: list[Any] = []
    real = celpy.json_to_cel
    monkeypatch.setattr(celpy, "json_to_cel", lambda v: calls.append(v) or real(v))
    shared = Activation({"stages": {"test": {"metrics": {"mae": 1.0}}}, "unused": [1]})
    for text in ('stages.test.metrics["mae"] < 3.0', '"test" in stages', "size(stages) == 1"):
        assert compile_expression(text).evaluate(shared) is True
    assert len(calls) == 1
    assert dict(shared) == {"stages": {"test": {"metrics": {"mae": 1.0}}}, "unused": [1]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x == 0", False),
        ("0 == x", False),
        ("x != 0", True),
        ("[x] == [0]", False),
        ('{"a": x} == {"a": 0}', False),
        ("x == false", True),
        ("[x] == [false]", True),
        ("y == 1", True),
        ("[1, 2] != [1, 3]", True),
    ],
)
def test_a_bool_is_never_equal_to_a_number(text: str, expected: bool) -> None:
    # cel-python's bool is a Python int: false == 0 came out true, so a stage parameter
    # signed as false met a requirement written for the number 0
    assert compile_expression(text).evaluate({"x": False, "y": 1}) is expected


@pytest.mark.parametrize(
    "text",
    [
        "x <= 0", "0 >= x", "x < 1", "x + 1 == 1", "x + 1 != 1", "x * 2 == 0", "-x == 0",
        # CEL's conversions have no bool overload: int(false) was 0, double(true) 1.0
        "int(x) <= 0", "double(x) <= 0.0", "uint(x) == 0u", "double(t) >= 1.0",
    ],
)  # fmt: skip
def test_a_bool_is_not_ordered_or_counted_with_numbers(text: str) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(text).evaluate({"x": False, "t": True})


def test_numeric_conversions_still_convert_numbers_and_text() -> None:
    values = {"y": 1, "z": 2.7}
    for text in ("double(y) <= 1.5", "int(z) == 2", 'int("3") == 3', "uint(y) == 1u"):
        assert compile_expression(text).evaluate(values) is True, text


def test_an_error_inside_an_equality_stays_an_error() -> None:
    for text in ("z.a == 1", "z.a != 1", "(x + 1) != 1"):
        with pytest.raises(ExpressionError):
            compile_expression(text).evaluate({"x": False, "z": {}})
