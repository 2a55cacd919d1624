"""rfc3339.parse_rfc3339: RFC 3339 instants (stage times, policy expiry).

Input: UTF-8 text. Its documented failure is ``ValueError`` (callers turn it
into bad input). Checks: nothing else escapes; an accepted instant is UTC
and formats to text that parses back to the same second.
"""

from __future__ import annotations

from datetime import UTC

from mlspec_attest.formats.rfc3339 import format_rfc3339, parse_rfc3339

from ._harness import main


def TestOneInput(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        moment = parse_rfc3339(text)
    except ValueError:
        return
    assert moment.tzinfo is UTC
    again = parse_rfc3339(format_rfc3339(moment))
    assert again == moment.replace(microsecond=0), (format_rfc3339(moment), moment)


if __name__ == "__main__":
    main(TestOneInput)
