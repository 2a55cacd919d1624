"""dsse.Envelope.from_json: a DSSE envelope read from strict JSON.

Input: the bytes of an envelope. Checks: only bad-input errors; verifying an
accepted envelope returns a bool; to_json/from_json round-trips exactly.
"""

from __future__ import annotations

from mlspec_attest.formats.dsse import Envelope, pae
from mlspec_attest.formats.jsonio import canonical, loads_strict
from mlspec_attest.signing.keys import load_public_key

from ._harness import GOLDEN_DIR, main, parse_or_none

KEY = load_public_key(GOLDEN_DIR / "signer.pub")


def parse(data: bytes) -> Envelope:
    return Envelope.from_json(loads_strict(data, what="envelope"))


def TestOneInput(data: bytes) -> None:
    envelope = parse_or_none(parse, data)
    if envelope is None:
        return
    assert isinstance(envelope.verified_by(KEY), bool)
    assert pae(envelope.payload_type, envelope.payload).startswith(b"DSSEv1 ")
    assert Envelope.from_json(envelope.to_json()) == envelope
    assert parse(canonical(envelope.to_json())) == envelope


if __name__ == "__main__":
    main(TestOneInput)
