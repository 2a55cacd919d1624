"""The records the leakage evidence is signed in, and what makes one unusable.

``leakage/v2`` (``details.leakage`` of a split stage) and ``material-rows/v1``
(``details.materialRows`` of any stage) are published JSON Schemas. A record of a
retired format (``leakage/v1``, ``mlspec-rows/v1``) is refused, never read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlspec_attest.errors import MlspecError
from mlspec_attest.formats.rowform import CANONICALIZATION, RETIRED_CANONICALIZATIONS
from mlspec_attest.formats.schemas import schema_errors

LEAKAGE_SCHEMA = "https://mlspec-attest.dev/leakage/v2"
RETIRED_LEAKAGE_SCHEMAS = ("https://mlspec-attest.dev/leakage/v1",)


def pair_key(a: str, b: str) -> str:
    """The key of an unordered pair of roles in ``overlaps``: both names sorted, joined by ``|``."""
    first, second = sorted((a, b))
    return f"{first}|{second}"


def check_own_record(schema: str, record: Mapping[str, Any]) -> None:
    """A record this module wrote matches its published schema (else: a bug, exit 70)."""
    problem = schema_problem(schema, record)
    if problem:
        raise MlspecError(f"internal error: the record does not match {schema}: {problem}")


def schema_problem(name: str, record: Any) -> str | None:
    """The first few violations of JSON Schema ``name`` in ``record``, or None."""
    problems = schema_errors(name, record)
    if not problems:
        return None
    text = "; ".join(f"{'/'.join(map(str, p)) or '(root)'}: {m}" for p, m in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return text + more


def retired_problem(record: Mapping[str, Any], current_schema: str) -> str | None:
    """Why a record of a retired format is refused, or None."""
    version = record.get("schemaVersion")
    canonicalization = record.get("canonicalization")
    if version in RETIRED_LEAKAGE_SCHEMAS or canonicalization in RETIRED_CANONICALIZATIONS:
        return (
            f"the record was written as {version!r} with canonicalization {canonicalization!r}, "
            f"which this verifier refuses: it read directories of tabular shards as opaque files "
            "and did not see the same row under another Unicode normalization, with invisible "
            f"characters, a differently cased header or an extra column (expected {current_schema!r}"
            f" with {CANONICALIZATION!r})"
        )
    return None
