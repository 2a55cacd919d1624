"""interop.oms_manifest.parse_statement and check_model: a model-signing statement.

Input: the signed statement (the DSSE payload). The target signs it with a
real P-256 key, as model-signing does, and verifies a three-file model
against it, so the fuzzed serialization (method, hash, shard size, ignore
paths) and resources drive the real walk and comparison. Checks: only
bad-input errors; the report renders.
"""

from __future__ import annotations

import json

from mlspec_attest.interop.oms.manifest import parse_statement
from mlspec_attest.interop.oms.signature import check_model

from ._harness import input_file, main, parse_or_none
from ._oms import key_trust, model_dir, signed_bundle


def TestOneInput(data: bytes) -> None:
    statement = parse_or_none(parse_statement, data)
    signature = input_file(json.dumps(signed_bundle(data).to_json()).encode(), "model.sig")
    report = parse_or_none(check_model, model_dir(), signature, key_trust(), workers=1)
    if statement is None:
        assert report is None, "check_model accepted a statement parse_statement refuses"
        return
    assert report is not None
    assert report.pae == "dsse-v1"
    report.to_json()


if __name__ == "__main__":
    main(TestOneInput)
