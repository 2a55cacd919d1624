"""attestation.read_metrics_document: the ``--metrics FILE`` document.

Input: the bytes of a metrics JSON file. Checks: only bad-input errors; the
metrics of an accepted document are finite numbers.
"""

from __future__ import annotations

import math

from mlspec_attest.evidence.metrics_file import read_metrics_document

from ._harness import input_file, main, parse_or_none


def TestOneInput(data: bytes) -> None:
    doc = parse_or_none(read_metrics_document, input_file(data, "metrics.json"))
    if doc is None:
        return
    for value in doc.metrics.values():
        assert isinstance(value, int | float) and not isinstance(value, bool)
        assert math.isfinite(value)


if __name__ == "__main__":
    main(TestOneInput)
