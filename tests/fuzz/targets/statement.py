"""statement.StageStatement.from_payload: the signed in-toto Statement of one stage.

Input: the payload bytes (what DSSE signs). Checks: only bad-input errors;
an accepted statement serializes (to_payload) and parses back to an equal
statement, and its canonical bytes are stable.
"""

from __future__ import annotations

from mlspec_attest.formats.statement import StageStatement

from ._harness import main, parse_or_none


def TestOneInput(data: bytes) -> None:
    statement = parse_or_none(StageStatement.from_payload, data)
    if statement is None:
        return
    payload = parse_or_none(statement.to_payload)
    if payload is None:
        return  # a value RFC 8785 cannot represent (an integer beyond 2**53)
    again = StageStatement.from_payload(payload)
    assert again == statement
    assert again.to_payload() == payload


if __name__ == "__main__":
    main(TestOneInput)
