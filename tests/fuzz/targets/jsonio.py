"""jsonio.loads_strict and canonical: strict JSON in, RFC 8785 bytes out.

Input: raw bytes of a JSON document. Checks: only MalformedDocumentError; an
accepted document holds no non-finite number and is UTF-8; the text (str) and
byte forms agree; canonical bytes re-parse to an equal value and are stable.
"""

from __future__ import annotations

import math
from typing import Any

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.formats.jsonio import canonical, loads_strict

from ._harness import main


def walk(doc: Any) -> list[Any]:
    """Every value inside ``doc`` (iteratively: documents may be deep)."""
    out: list[Any] = []
    todo = [doc]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, dict):
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return out


def TestOneInput(data: bytes) -> None:
    try:
        doc = loads_strict(data)
    except MalformedDocumentError:
        return
    for value in walk(doc):
        assert not (isinstance(value, float) and not math.isfinite(value)), value
    text = data.decode("utf-8")  # accepted bytes must be UTF-8 (RFC 8259 section 8.1)
    assert loads_strict(text) == doc
    try:
        first = canonical(doc)
    except MalformedDocumentError:
        return  # e.g. an integer beyond what RFC 8785 (IEEE doubles) can represent
    assert loads_strict(first) == doc
    assert canonical(loads_strict(first)) == first


if __name__ == "__main__":
    main(TestOneInput)
