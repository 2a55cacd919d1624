"""The CEL grammar's parser tables, shipped, so no process rebuilds them.

cel-python builds its Lark LALR parser the first time an ``Environment`` is made: 100-160 ms
of grammar analysis in every ``verify`` that evaluates an objective or a requirement,
longer than the rest of a deploy gate's verification. ``cel_parser.json`` holds that parser
already analysed, in Lark's own serialized form (JSON, no pickle), with the grammar's
SHA-256 and the Lark version that made it. :func:`install` hands it to cel-python as
``CELParser.CEL_PARSER`` (the one parser cel-python shares between environments) only when
both match the installed cel-python grammar and Lark; otherwise cel-python builds its
parser as it always did, so an upgrade costs time, never a different parse.

``python tools/cel_parser.py`` regenerates the file; tests/test_celparser.py checks that it
matches the installed packages and parses every expression as cel-python's own parser does.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

#: Where the tables are kept, next to this module.
TABLES = "cel_parser.json"
_INT_KEYS = "__int_keys__"


def grammar_text(celpy: Any) -> str:
    """cel-python's grammar, as its ``CELParser`` reads it."""
    return (Path(celpy.__file__).parent / "cel.lark").read_text()


def tag(celpy: Any, lark: Any) -> dict[str, str]:
    """What the tables were made from: the grammar's digest and the Lark version."""
    digest = hashlib.sha256(grammar_text(celpy).encode("utf-8")).hexdigest()
    return {"grammarSha256": digest, "lark": str(lark.__version__)}


def options(celpy: Any) -> dict[str, Any]:
    """The options cel-python builds its parser with that a loaded parser is given again
    (Lark keeps the others in the tables)."""
    return {
        "lexer_callbacks": {"IDENT": celpy.celparser.CELParser.ambiguous_literals},
        "tree_class": celpy.InterpretedRunner.tree_node_class,
        "g_regex_flags": re.M,
        "propagate_positions": True,
        "debug": True,
    }


def build_tables(celpy: Any, lark: Any) -> dict[str, Any]:
    """Analyse the grammar with cel-python's options; the document :func:`install` reads."""
    from lark.lark import _LOAD_ALLOWED_OPTIONS

    parser = lark.Lark(
        grammar_text(celpy),
        parser="lalr",
        start="expr",
        maybe_placeholders=False,
        priority="invert",
        **{**options(celpy), "debug": False},  # debug keeps item sets as states: not JSON
    )
    data, memo = parser.memo_serialize([lark.lexer.TerminalDef, lark.grammar.Rule])
    data["options"] = {k: v for k, v in data["options"].items() if k not in _LOAD_ALLOWED_OPTIONS}
    return {**tag(celpy, lark), "data": _encode(data), "memo": _encode(memo)}


def _encode(value: Any) -> Any:
    if isinstance(value, dict):
        if value and all(isinstance(k, int) for k in value):
            return {_INT_KEYS: [[k, _encode(v)] for k, v in value.items()]}
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _INT_KEYS in obj:
        return dict(obj[_INT_KEYS])
    return obj


def load_tables() -> dict[str, Any]:
    text = Path(__file__).with_name(TABLES).read_text("utf-8")
    tables: dict[str, Any] = json.loads(text, object_hook=_decode)
    return tables


def install(celpy: Any) -> bool:
    """Give cel-python the shipped parser if it was made from the installed grammar and
    Lark; True if it was (or cel-python already has one), False if cel-python builds its
    own."""
    import lark

    parser_class = celpy.celparser.CELParser
    if parser_class.CEL_PARSER is not None:
        return True
    try:
        tables = load_tables()
    except (OSError, ValueError):
        return False
    if {k: tables.get(k) for k in ("grammarSha256", "lark")} != tag(celpy, lark):
        return False
    load: Any = lark.Lark._load_from_dict  # Lark's own loader of its serialized form
    parser_class.CEL_PARSER = load(tables["data"], tables["memo"], **options(celpy))
    return True
