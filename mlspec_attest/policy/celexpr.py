"""Safe expressions: CEL (Common Expression Language) through cel-python.

CEL is not Turing-complete: no loops beyond bounded macros over finite
collections, no I/O, no side effects, so a policy or objectives author cannot
make the verifier do anything but compute a value. Every typed launch
criterion compiles to a CEL expression and is evaluated here; raw ``expr``
criteria and policy requirements use the same evaluator.

Added functions: ``abs(x)``, ``min(list)`` / ``min(a, b, ...)`` and
``max(list)`` / ``max(a, b, ...)``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from functools import cache, lru_cache
from typing import Any

from msgspec import Struct

from mlspec_attest.errors import MalformedDocumentError, require
from mlspec_attest.policy.celparser import install as install_parser


class ExpressionError(Exception):
    """An expression could not be evaluated to a boolean (missing key, type error ...)."""


def _cel() -> Any:
    return require("celpy", "policy requirements (CEL expressions)")


def _numbers(args: tuple[Any, ...]) -> list[Any]:
    from celpy import celtypes

    if len(args) == 1 and isinstance(args[0], celtypes.ListType):
        items = list(args[0])
    else:
        items = list(args)
    if not items:
        raise ValueError("min()/max() of an empty list")
    return items


def _cel_abs(value: Any) -> Any:
    return type(value)(abs(value))


def _cel_min(*args: Any) -> Any:
    return min(_numbers(args))


def _cel_max(*args: Any) -> Any:
    return max(_numbers(args))


# cel-python's ``bool`` is a Python ``int``: ``false <= 0``, ``false == 0`` and
# ``false + 1`` came out as if ``false`` were the number 0 (CEL has no such overloads), so
# a stage parameter signed as ``false`` met a requirement ``parameters["x"] <= 0``. Here a
# bool meets only a bool: equality with anything else is false (inside lists and maps
# too), ordering and arithmetic are errors.
def _is_bool(value: Any) -> bool:
    from celpy import celtypes

    return isinstance(value, celtypes.BoolType | bool)


def _mixed(a: Any, b: Any) -> bool:
    return _is_bool(a) != _is_bool(b)


def _same(a: Any, b: Any) -> bool:
    """Whether ``a == b`` without a bool ever equal to a number, at any depth."""
    if _mixed(a, b):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if len(a) != len(b):
            return False
        return all(_key_in(k, b) and _same(v, b[k]) for k, v in a.items())
    return bool(_evaluation().bool_eq(a, b))


def _key_in(key: Any, mapping: Mapping[Any, Any]) -> bool:
    return any(not _mixed(key, other) and key == other for other in mapping)


def _evaluation() -> Any:
    from celpy import evaluation

    return evaluation


def _strict(name: str) -> Any:
    """cel-python's operator ``name``, refusing a bool beside anything else."""

    def operator(*args: Any) -> Any:
        if len(args) == 2 and _mixed(*args) and _error_of(*args) is None:
            kinds = " and ".join(type(a).__name__ for a in args)
            raise TypeError(f"no matching overload for {name} applied to {kinds}")
        return _evaluation().base_functions[name](*args)

    return operator


def _equality(negated: bool) -> Any:
    """``_==_`` (or ``_!=_``): :func:`_same`, an operand that is an error propagating."""

    def equality(a: Any, b: Any) -> Any:
        from celpy import celtypes

        error = _error_of(a, b)
        return error if error is not None else celtypes.BoolType(_same(a, b) != negated)

    return equality


def _error_of(a: Any, b: Any) -> Any:
    """The error either operand already is (it propagates, as CEL's operators do)."""
    celpy = _cel()
    return next((v for v in (a, b) if isinstance(v, celpy.CELEvalError)), None)


_ORDERED = ("_<_", "_<=_", "_>_", "_>=_", "_+_", "_-_", "_*_", "_/_", "_%_")
#: CEL's numeric conversions have no bool overload: ``int(false)`` is an error, not 0.
_NUMERIC = ("int", "uint", "double")


def _no_bool(name: str) -> Any:
    """cel-python's conversion ``name``, refusing a bool (CEL defines no such overload)."""

    def convert(*args: Any) -> Any:
        if len(args) == 1 and _is_bool(args[0]):
            raise TypeError(f"no matching overload for {name}(bool)")
        return _evaluation().base_functions[name](*args)

    return convert


FUNCTIONS = {
    "abs": _cel_abs,
    "min": _cel_min,
    "max": _cel_max,
    "_==_": _equality(negated=False),
    "_!=_": _equality(negated=True),
    **{name: _strict(name) for name in _ORDERED},
    **{name: _no_bool(name) for name in _NUMERIC},
}


@cache
def _environment() -> Any:
    celpy = _cel()
    install_parser(celpy)  # the shipped parser tables, when they fit the installed packages
    return celpy.Environment()


class Activation(Mapping[str, Any]):
    """Values several expressions read (``stages``: every stage's record), converted to CEL
    values once per entry, on first use, however many expressions evaluate against them.
    As a mapping it holds the plain values."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)
        self._converted: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def cel(self, name: str) -> Any:
        if name not in self._converted:
            self._converted[name] = _cel().json_to_cel(self._values[name])
        return self._converted[name]


class CompiledExpression(Struct, frozen=True):
    """A parsed CEL expression, ready to evaluate against activations."""

    text: str
    program: Any
    #: Every identifier the expression mentions (variables, fields, macro variables); an
    #: activation entry it does not mention cannot be read, so it is not converted to CEL
    #: values (the stage records are most of an activation). None: convert every entry.
    names: frozenset[str] | None = None

    def evaluate(self, activation: Mapping[str, Any]) -> bool:
        """Evaluate to a boolean; any error or non-boolean result raises ExpressionError."""
        celpy = _cel()
        names = self.names
        convert = activation.cel if isinstance(activation, Activation) else None
        try:
            cel_activation = {
                k: convert(k) if convert else celpy.json_to_cel(v)
                for k, v in activation.items()
                if names is None or k.partition(".")[0] in names
            }
            result = self.program.evaluate(cel_activation)
        except celpy.CELEvalError as exc:
            raise ExpressionError(_explain(exc)) from exc
        except (ValueError, TypeError, ZeroDivisionError, KeyError) as exc:
            raise ExpressionError(str(exc)) from exc
        except RecursionError as exc:  # cel-python walks its tree recursively
            raise ExpressionError(
                "expression is nested too deeply to evaluate; split it into simpler ones"
            ) from exc
        if isinstance(result, celpy.CELEvalError):
            raise ExpressionError(_explain(result))
        from celpy import celtypes

        if not isinstance(result, celtypes.BoolType):
            raise ExpressionError(f"expression yields {type(result).__name__}, not a boolean")
        return bool(result)


def _explain(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    text = str(args[0]) if args else str(exc)
    if "no such member" in text or "no such key" in text:
        return f"missing value: {text}"
    if "CELEvalError" in text:
        # An error inside a sub-expression (typically a missing stage or key).
        return "missing value: the expression refers to a stage, key or field that does not exist"
    if "no matching overload" in text and "IntType" in text and "DoubleType" in text:
        return (
            "CEL compares integers and doubles strictly: write 45.0 rather than 45 "
            f"when comparing with a metric ({text.split(':', 1)[0]})"
        )
    return text


def _parse_problem(exc: BaseException) -> str:
    """Where a CEL parse failed: cel-python puts the source line and a caret in args[0]."""
    lines = str(exc.args[0]).splitlines() if exc.args else []
    if len(lines) >= 2 and lines[1].strip() == "^":
        column = lines[1].index("^")
        return f"syntax error at column {column + 1} (near {lines[0][column : column + 12]!r})"
    return "syntax error"


@lru_cache(maxsize=512)
def compile_expression(text: str) -> CompiledExpression:
    """Parse ``text``; a syntax error raises MalformedDocumentError naming the problem.

    A compiled expression is immutable and evaluates any number of activations, so each
    text is parsed once per process (a policy's requirements are compiled when it is
    read and again when they are judged)."""
    celpy = _cel()
    env = _environment()
    try:
        ast = _parsed(text)
        program = env.program(ast, functions=FUNCTIONS)
    except celpy.CELParseError as exc:
        raise MalformedDocumentError(
            f"invalid CEL expression {text!r}: {_parse_problem(exc)}"
        ) from exc
    except RecursionError as exc:
        raise MalformedDocumentError(
            f"invalid CEL expression {text[:60]!r}…: nested too deeply; split it into simpler ones"
        ) from exc
    return CompiledExpression(text, program, _identifiers(ast))


@lru_cache(maxsize=512)
def _parsed(text: str) -> Any:
    """The syntax tree of ``text`` (read, never changed, by the interpreter and by
    :func:`expression_terms`)."""
    return _environment().compile(text)


def _identifiers(ast: Any) -> frozenset[str]:
    """Every IDENT token of the tree, walked without recursion (expressions nest deeply)."""
    names: set[str] = set()
    stack = [ast]
    while stack:
        for child in stack.pop().children:
            if getattr(child, "type", None) == "IDENT":
                names.add(str(child))
            elif hasattr(child, "children"):
                stack.append(child)
    return frozenset(names)


def literal(value: float) -> str:
    """A CEL double literal for ``value`` (always with a decimal point or exponent)."""
    if not math.isfinite(value):
        raise MalformedDocumentError(f"threshold {value!r} is not finite")
    text = repr(float(value))
    return text if any(c in text for c in ".e") else text + ".0"


def key(name: str) -> str:
    """A CEL string literal usable as a map index: ``metrics["mae"]``."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def non_finite_paths(value: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every NaN or infinite number inside ``value``."""
    found: list[str] = []
    if isinstance(value, float) and not math.isfinite(value):
        found.append(prefix or "(value)")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            found.extend(non_finite_paths(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found.extend(non_finite_paths(v, f"{prefix}[{i}]"))
    return found


#: A term's value is shown up to this many characters.
TERM_TEXT_LIMIT = 120
_CHAINS = ("member_dot", "member_index")


def expression_terms(text: str) -> list[str]:
    """The selections an expression reads (``stages.test.metrics.auc``,
    ``slices["sex"]["F"]["auc"]`` ...), outermost first, each once, in source order: what
    a failure shows the values of."""
    try:
        ast = _parsed(text)
    except (_cel().CELParseError, RecursionError):
        return []  # not CEL: compile_expression says why, where it matters
    terms: list[str] = []
    stack = [ast]
    while stack:
        node = stack.pop()
        children = [c for c in getattr(node, "children", ()) if hasattr(c, "data")]
        if node.data == "member" and children and children[0].data in _CHAINS:
            term = text[node.meta.start_pos : node.meta.end_pos].strip()
            if term not in terms:
                terms.append(term)
            stack.extend(reversed([c for c in children[0].children if hasattr(c, "data")][1:]))
            continue
        stack.extend(reversed(children))
    return terms


def term_values(text: str, activation: Mapping[str, Any]) -> dict[str, str]:
    """Each term of ``text`` (:func:`expression_terms`) with its value as JSON text, or
    why it has none (``missing: ...``)."""
    celpy = _cel()
    env = _environment()
    cel_activation = {k: celpy.json_to_cel(v) for k, v in activation.items()}
    out: dict[str, str] = {}
    for term in expression_terms(text):
        try:
            value = env.program(env.compile(term), functions=FUNCTIONS).evaluate(cel_activation)
        except (celpy.CELEvalError, ValueError, TypeError, KeyError, RecursionError) as exc:
            value = exc
        out[term] = _shown(value)
    return out


def _shown(value: Any) -> str:
    celpy = _cel()
    if isinstance(value, celpy.CELEvalError | Exception):
        return _explain(value)
    try:
        shown = json.dumps(_plain(value), sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):
        shown = repr(value)
    return shown if len(shown) <= TERM_TEXT_LIMIT else shown[: TERM_TEXT_LIMIT - 1] + "…"


def _plain(value: Any) -> Any:
    """A CEL value as JSON types (its keys as text)."""
    from celpy import celtypes

    if isinstance(value, celtypes.BoolType | bool):  # BoolType is an int, not a bool
        return bool(value)
    if isinstance(value, int | float | str) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)
