"""interop.intoto_jsonl.parse_jsonl: ``.intoto.jsonl`` (one DSSE envelope or bundle per line).

Input: the file bytes. Checks: only bad-input errors; the envelopes of an
accepted file write out (dumps_jsonl) and read back equal.
"""

from __future__ import annotations

from mlspec_attest.interop.intoto.jsonl import dumps_jsonl, parse_jsonl

from ._harness import main, parse_or_none


def TestOneInput(data: bytes) -> None:
    envelopes = parse_or_none(parse_jsonl, data)
    if envelopes is None:
        return
    assert parse_jsonl(dumps_jsonl(envelopes)) == envelopes


if __name__ == "__main__":
    main(TestOneInput)
