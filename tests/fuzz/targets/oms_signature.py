"""interop.oms check_model on a model-signing signature file (a Sigstore bundle).

Input: the bytes of ``model.sig``. Checked under a real P-256 key and under
a real certificate root. Checks: only bad-input errors; denials come back
as problems in a report that renders.
"""

from __future__ import annotations

from mlspec_attest.interop.oms.signature import check_model

from ._harness import input_file, main, parse_or_none
from ._oms import certificate_trust, key_trust, model_dir


def TestOneInput(data: bytes) -> None:
    signature = input_file(data, "model.sig")
    for trust in (key_trust(), certificate_trust()):
        report = parse_or_none(check_model, model_dir(), signature, trust, workers=1)
        if report is not None:
            report.to_json()


if __name__ == "__main__":
    main(TestOneInput)
