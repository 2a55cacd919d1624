"""The shipped CEL parser tables (policy/cel_parser.json) parse as cel-python's own parser.

cel-python analyses its grammar in every process unless it is handed a parser; the
package ships the analysed tables (mlspec_attest/policy/celparser.py). They must be made
from the installed grammar and Lark (``python tools/cel_parser.py`` regenerates them),
give the same tree for every expression and the same error for every syntax error, and be
left unused when they do not fit, so cel-python builds its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import lark
import pytest
from celpy.celparser import CELParser

from mlspec_attest.policy import celparser
from mlspec_attest.policy.celexpr import compile_expression

from .support import PROJECT_ROOT

EXPRESSIONS = [
    'stages.test.metrics["mae"] <= 45.0 && abs(stages.test.metrics["r2"]) >= 0.3',
    '!("monitor" in stages) || stages.monitor.metrics["live.mae"] <= 1.3 * stages.test.metrics["mae"]',
    'metrics["mae"] < metrics["baseline_mae"]',
    "has(a.b) ? size(x) : 3u",
    'b"abc" == bytes("abc") && -1 < 2 && 0x1F == 31 && 1e3 > 2.5',
    "[1, 2, 3].all(v, v > 0) && {'a': 1}.exists(k, k == 'a')",
    "max([1.0, 2.0]) - min(3.0, 4.0) / 2.0 % 1.0",
    'a.b.c[0]["d"].e(1, 2).f',
    "true || false && !true",
    "'''multi\nline''' + r'\\raw' + \"\\u00e9\"",
    "x.filter(y, y % 2 == 0).map(z, z * 2)",
    "type(x) == int && int('1') == 1 && double(1) == 1.0 && string(1) == '1'",
    "a ? b ? c : d : e",
    "null == null",
]
SYNTAX_ERRORS = ["a +* b", "(", "stages.", "1 ==", "a[", "'unterminated", "a ? b", "@"]


def policy_expressions() -> Iterator[str]:
    for path in sorted((PROJECT_ROOT / "policies").glob("*.yaml")):
        for match in re.finditer(r"expr: '(.*)'$", path.read_text(), re.M):
            yield match.group(1)


@pytest.fixture
def own_parser(monkeypatch: pytest.MonkeyPatch) -> lark.Lark:
    """cel-python's parser, built by cel-python itself."""
    monkeypatch.setattr(CELParser, "CEL_PARSER", None)
    CELParser(tree_class=celpy.InterpretedRunner.tree_node_class)
    built = CELParser.CEL_PARSER
    assert built is not None
    return built


@pytest.fixture
def shipped_parser(monkeypatch: pytest.MonkeyPatch) -> lark.Lark:
    monkeypatch.setattr(CELParser, "CEL_PARSER", None)
    assert celparser.install(celpy)
    shipped = CELParser.CEL_PARSER
    assert shipped is not None and shipped.source_path == "<deserialized>"
    return shipped


def test_the_shipped_tables_fit_the_installed_packages() -> None:
    # Stale tables are correct but slow: run `python tools/cel_parser.py` after an upgrade.
    tables = celparser.load_tables()
    assert {k: tables[k] for k in ("grammarSha256", "lark")} == celparser.tag(celpy, lark)


def parse(parser: lark.Lark, text: str) -> Any:
    try:
        return parser.parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        return ("error", type(exc).__name__, exc.line, exc.column, exc.get_context(text))


def test_the_shipped_parser_parses_as_cel_pythons_own(
    own_parser: lark.Lark, shipped_parser: lark.Lark
) -> None:
    corpus = [*EXPRESSIONS, *policy_expressions(), *SYNTAX_ERRORS]
    assert len(corpus) > len(EXPRESSIONS) + len(SYNTAX_ERRORS)
    for text in corpus:
        assert parse(shipped_parser, text) == parse(own_parser, text), text


def test_an_environment_uses_the_shipped_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlspec_attest.policy import celexpr

    monkeypatch.setattr(CELParser, "CEL_PARSER", None)
    celexpr._environment.cache_clear()
    celexpr.compile_expression.cache_clear()
    celexpr._parsed.cache_clear()
    try:
        assert compile_expression("1.0 < 2.0").evaluate({}) is True
        assert CELParser.CEL_PARSER is not None
        assert CELParser.CEL_PARSER.source_path == "<deserialized>"
    finally:
        celexpr._environment.cache_clear()
        celexpr.compile_expression.cache_clear()
        celexpr._parsed.cache_clear()


@pytest.mark.parametrize("field", ["grammarSha256", "lark"])
def test_tables_from_another_grammar_or_lark_are_not_used(
    field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = {**celparser.load_tables(), field: "other"}
    monkeypatch.setattr(celparser, "load_tables", lambda: tables)
    monkeypatch.setattr(CELParser, "CEL_PARSER", None)
    assert celparser.install(celpy) is False
    assert CELParser.CEL_PARSER is None  # cel-python builds its own on first use


def test_missing_tables_leave_cel_python_to_build_its_parser(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def missing() -> dict[str, Any]:
        raise FileNotFoundError(tmp_path / celparser.TABLES)

    monkeypatch.setattr(celparser, "load_tables", missing)
    monkeypatch.setattr(CELParser, "CEL_PARSER", None)
    assert celparser.install(celpy) is False
