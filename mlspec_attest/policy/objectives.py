"""Codified objectives: the launch criteria a model must meet (judged by
:mod:`mlspec_attest.policy.criteria`).

The objectives document (YAML, ``kind: Objectives``; schema in
``schemas/objectives-v1.schema.json``) is the signed product of the
``objectives`` stage, so later stages cannot move the goalposts. Each criterion
names the stage whose attested metrics are its evidence. Typed criteria
compile to CEL; ``expr`` criteria are CEL already; :func:`evaluate_objectives`
runs them all through :mod:`mlspec_attest.policy.celexpr`.

Fail closed: a missing metric or slice, too few slices with enough support, a
NaN or infinite value, a missing baseline for a ``change`` criterion: each is a
failed criterion with its own message.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from msgspec import Struct

from mlspec_attest.errors import MalformedDocumentError, PolicyError
from mlspec_attest.formats.limits import MAX_OBJECTIVES_BYTES
from mlspec_attest.formats.schemas import schema_errors
from mlspec_attest.formats.yamlio import decode_yaml, plain, read_yaml_file
from mlspec_attest.policy.celexpr import compile_expression
from mlspec_attest.policy.criteria import (
    CriterionResult,
    Evidence,
    evaluate_criterion,
)
from mlspec_attest.policy.source import parse_yaml

OBJECTIVES_KIND = "Objectives"


class Objectives(Struct, frozen=True):
    """A validated objectives document."""

    name: str
    version: str
    criteria: tuple[dict[str, Any], ...]
    document: dict[str, Any]

    def stages(self) -> set[str]:
        return {c["stage"] for c in self.criteria}


def parse_objectives(doc: Any, *, what: str = "objectives", line_of: Any = None) -> Objectives:
    """Validate a plain objectives document; raise PolicyError listing every problem."""
    problems = []
    for path, message in schema_errors("objectives-v1", doc):
        line = line_of(path) if line_of else None
        where = "/".join(map(str, path)) or "(root)"
        problems.append(f"{'line ' + str(line) + ': ' if line else ''}{where}: {message}")
    if not problems:
        ids = [c["id"] for c in doc["criteria"]]

        def at(path: list[str | int], message: str) -> None:
            line = line_of(path) if line_of else None
            where = "/".join(map(str, path))
            problems.append(f"{'line ' + str(line) + ': ' if line else ''}{where}: {message}")

        for i, c in enumerate(doc["criteria"]):
            if ids.count(c["id"]) > 1 and ids.index(c["id"]) != i:
                at(["criteria", i, "id"], f"duplicate criterion id {c['id']!r}")
            if "expr" in c:
                try:
                    compile_expression(c["expr"])
                except MalformedDocumentError as exc:
                    at(["criteria", i, "expr"], exc.message)
            places: list[tuple[list[str | int], Any]] = [
                (["criteria", i], c),
                (["criteria", i, "eachSlice"], c.get("eachSlice", {})),
            ]
            for path, bounds in places:
                if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
                    at(
                        path,
                        f"min {bounds['min']} is above max {bounds['max']}",
                    )
    if problems:
        raise PolicyError(f"{what}: invalid objectives document", problems)
    meta = doc["metadata"]
    return Objectives(meta["name"], str(meta["version"]), tuple(doc["criteria"]), doc)


def load_objectives_text(text: str | bytes, *, what: str) -> Objectives:
    """Parse YAML (or JSON) objectives text with line numbers for problems.

    Strict and bounded like a policy (:mod:`mlspec_attest.formats.yamlio`), up to
    :data:`~mlspec_attest.formats.limits.MAX_OBJECTIVES_BYTES`; bytes must be UTF-8.
    """
    if isinstance(text, bytes):
        text = decode_yaml(text, what=what)
    root, line_of = parse_yaml(text, source=what, max_bytes=MAX_OBJECTIVES_BYTES)
    return parse_objectives(plain(root), what=what, line_of=line_of)


def load_objectives(path: Path) -> Objectives:
    """Read an objectives file (UTF-8, at most ``MAX_OBJECTIVES_BYTES``) and parse it."""
    text = read_yaml_file(path, MAX_OBJECTIVES_BYTES, what=str(path), kind="an objectives document")
    return load_objectives_text(text, what=str(path))


def looks_like_objectives(data: bytes) -> bool:
    """Cheap sniff used at signing time: does this YAML/JSON declare ``kind: Objectives``?

    A false positive costs a full parse (which then reports its problems); a
    false negative would skip the document, so comments and quoting are tolerated.
    """
    head = data[:8192].decode("utf-8", "replace")
    for line in head.splitlines():
        text = line.split(" #", 1)[0].replace('"', "").replace("'", "").replace(" ", "")
        if text in ("kind:Objectives", "kind:Objectives,") or "kind:Objectives," in text:
            return True
        if "kind:Objectives}" in text or text.endswith("kind:Objectives"):
            return True
    return False


def evaluate_objectives(
    objectives: Objectives,
    evidence: Mapping[str, Evidence],
    *,
    baseline: Mapping[str, float] | None = None,
    stages: Mapping[str, Any] | None = None,
) -> list[CriterionResult]:
    """Evaluate every criterion; the list has one result per criterion, in order."""
    return [evaluate_criterion(c, evidence, baseline, stages) for c in objectives.criteria]
