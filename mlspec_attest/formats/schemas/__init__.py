"""JSON Schemas shipped with the package (the same files are published in docs/schemas/).

A document is checked by :mod:`.conform` first, which says "valid" without importing
jsonschema; any other answer goes to jsonschema, which finds and words every violation.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.schemas.conform import Conformance, conformance


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``<name>.schema.json`` from this package (a directory of files: the package is
    installed from a wheel, and importlib.resources costs every command 2 ms to import)."""
    text = Path(__file__).with_name(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _definition_schema(name: str, definition: str) -> dict[str, Any]:
    schema = load_schema(name)
    return {"$schema": schema["$schema"], "$ref": f"#/$defs/{definition}", "$defs": schema["$defs"]}


@cache
def _conformance(name: str, definition: str | None) -> Conformance | None:
    schema = load_schema(name) if definition is None else _definition_schema(name, definition)
    return conformance(schema, schema)


@cache
def _validator(name: str, definition: str | None = None) -> Any:
    import jsonschema

    schema = load_schema(name) if definition is None else _definition_schema(name, definition)
    cls = jsonschema.validators.validator_for(schema)
    # No format checker: "format" is an annotation (Draft 2020-12's default). jsonschema's
    # checkers depend on which optional libraries are installed, and a verdict must not;
    # times are judged where they are read (formats/rfc3339).
    return cls(schema)


def definition_errors(name: str, definition: str, doc: Any) -> list[tuple[list[str | int], str]]:
    """Every violation of ``$defs/<definition>`` of schema ``name`` in ``doc``, as
    :func:`schema_errors` gives them (one definition shared by two documents: the
    objectives' criterion is also the policy's typed requirement)."""
    return _errors(name, definition, doc)


def schema_errors(name: str, doc: Any) -> list[tuple[list[str | int], str]]:
    """Every violation of schema ``name`` in ``doc`` as (path, message).

    An unknown field is reported at the field itself (``unknown field 'x'``),
    so a line-numbered report points at the offending line.
    """
    return _errors(name, None, doc)


def _errors(name: str, definition: str | None, doc: Any) -> list[tuple[list[str | int], str]]:
    fast = _conformance(name, definition)
    if fast is not None and fast.conforms(doc):
        return []
    out: list[tuple[list[str | int], str]] = []
    for e in _validator(name, definition).iter_errors(doc):
        path = list(e.path)
        if e.validator == "additionalProperties" and isinstance(e.instance, dict):
            known = set(e.schema.get("properties", {}))
            extras = [k for k in e.instance if k not in known]
            if extras:
                out.extend(([*path, k], f"unknown field {k!r}") for k in extras)
                continue
        if e.validator == "unevaluatedProperties" and isinstance(e.instance, dict):
            out.append((path, e.message.replace("Unevaluated properties", "unknown field(s)")))
            continue
        out.append((path, e.message))
    return out


def validate_stage_metadata(doc: Any) -> None:
    problems = schema_errors("stage-metadata-v1", doc)
    if problems:
        text = "; ".join(f"{'/'.join(map(str, p)) or '(root)'}: {m}" for p, m in problems[:5])
        raise MalformedDocumentError(f"byproducts.mlspec does not match the stage schema: {text}")
