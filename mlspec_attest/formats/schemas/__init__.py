"""JSON Schemas shipped with the package (the same files are published in docs/schemas/)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from mlspec_attest.errors import MalformedDocumentError


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``<name>.schema.json`` from this package."""
    text = resources.files(__name__).joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(name: str) -> Any:
    import jsonschema

    schema = load_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=jsonschema.FormatChecker())


@cache
def _definition_validator(name: str, definition: str) -> Any:
    import jsonschema

    schema = load_schema(name)
    part = {"$schema": schema["$schema"], "$ref": f"#/$defs/{definition}", "$defs": schema["$defs"]}
    cls = jsonschema.validators.validator_for(part)
    return cls(part, format_checker=jsonschema.FormatChecker())


def definition_errors(name: str, definition: str, doc: Any) -> list[tuple[list[str | int], str]]:
    """Every violation of ``$defs/<definition>`` of schema ``name`` in ``doc``, as
    :func:`schema_errors` gives them (one definition shared by two documents: the
    objectives' criterion is also the policy's typed requirement)."""
    return _errors(_definition_validator(name, definition), doc)


def schema_errors(name: str, doc: Any) -> list[tuple[list[str | int], str]]:
    """Every violation of schema ``name`` in ``doc`` as (path, message).

    An unknown field is reported at the field itself (``unknown field 'x'``),
    so a line-numbered report points at the offending line.
    """
    return _errors(_validator(name), doc)


def _errors(validator: Any, doc: Any) -> list[tuple[list[str | int], str]]:
    out: list[tuple[list[str | int], str]] = []
    for e in validator.iter_errors(doc):
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
