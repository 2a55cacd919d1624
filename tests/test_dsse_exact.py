"""DSSE base64: the exact padding of unpadded URL-safe input (mutation survivors of formats/dsse.py)."""

from __future__ import annotations

import pytest

from mlspec_attest.formats.dsse import b64decode_strict


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        ("-_8", b"\xfb\xff"),  # 3 characters: one "=" missing
        ("-_8-_8", b"\xfb\xff>\xff"),  # 6 characters: two "=" missing
        ("-_8-_8-_", b"\xfb\xff>\xff\xcf\xbf"),  # 8 characters: nothing missing
        ("-_8-_8-_8-", b"\xfb\xff>\xff\xcf\xbf\xf3"),  # 10 characters: two "=" missing
        ("ab-_8-_8-_", b"i\xbf\xbf\xf3\xef\xfc\xfb"),  # 10 characters: two "=" missing
        ("-_8-_8-_8-_8-_", b"\xfb\xff>\xff\xcf\xbf\xf3\xef\xfc\xfb"),  # 14: two missing
    ],
)
def test_unpadded_url_safe_base64_of_any_length_decodes(value: str, decoded: bytes) -> None:
    # The URL-safe form may drop its padding: the decoder adds what is missing (a length
    # of 10 or 14 needs two "=", which a padding computed modulo 5 would not add).
    assert b64decode_strict(value, "sig") == decoded
