"""celexpr.compile_expression and evaluate: CEL requirements and objective expressions.

Input: UTF-8 expression text. Documented failures: MalformedDocumentError
when compiling, ExpressionError when evaluating. Checks: nothing else
escapes; evaluation yields a bool.
"""

from __future__ import annotations

from mlspec_attest.policy.celexpr import ExpressionError, compile_expression

from ._harness import main, parse_or_none

INSTRUMENT = ("celpy", "lark")
ACTIVATION = {
    "metrics": {"mae": 40.0, "r2": 0.5, "count": 100.0},
    "slices": {"sex": {"1": {"mae": 41.0}, "2": {"mae": 39.0}}},
    "counts": {"sex": {"1": 50, "2": 50}},
    "baseline": {"mae": 42.0},
    "stages": {"train": {"kind": "train", "metrics": {"loss": 0.25}}},
}


def TestOneInput(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    compiled = parse_or_none(compile_expression, text)
    if compiled is None:
        return
    try:
        result = compiled.evaluate(ACTIVATION)
    except ExpressionError:
        return
    assert isinstance(result, bool)


if __name__ == "__main__":
    main(TestOneInput)
