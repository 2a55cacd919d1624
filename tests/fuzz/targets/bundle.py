"""bundle.Bundle.from_json: a Sigstore bundle v0.1-v0.3 carrying a DSSE envelope.

Input: the bytes of a ``.sigstore.json`` file. Checks: only bad-input
errors; the accessors work on any accepted bundle; to_json/from_json
round-trips.
"""

from __future__ import annotations

from mlspec_attest.formats.bundle import Bundle, is_bundle
from mlspec_attest.formats.jsonio import canonical, loads_strict

from ._harness import main, parse_or_none


def parse(data: bytes) -> Bundle:
    return Bundle.from_json(loads_strict(data, what="bundle"))


def TestOneInput(data: bytes) -> None:
    bundle = parse_or_none(parse, data)
    if bundle is None:
        return
    assert bundle.key_hint is None or isinstance(bundle.key_hint, str)
    assert isinstance(bundle.is_keyless, bool)
    assert is_bundle(bundle.to_json())
    assert Bundle.from_json(bundle.to_json()) == bundle
    raw = parse_or_none(canonical, bundle.to_json())  # None: a number RFC 8785 cannot carry
    if raw is not None:
        assert parse(raw) == bundle


if __name__ == "__main__":
    main(TestOneInput)
