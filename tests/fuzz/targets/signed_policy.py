"""policy.load_signed_policy: a signed policy file (DSSE envelope over policy JSON).

Input: the bytes of a ``*.signed.json`` file. Checks: only bad-input errors;
checking the signatures of an accepted envelope never raises; the envelope
re-serializes to an equal signed policy.
"""

from __future__ import annotations

from mlspec_attest.policy import load_signed_policy
from mlspec_attest.policy.signed import parse_signed_policy
from mlspec_attest.signing.keys import load_public_key

from ._harness import GOLDEN_DIR, input_file, main, parse_or_none

OWNER = load_public_key(GOLDEN_DIR / "signer.pub")


def TestOneInput(data: bytes) -> None:
    signed = parse_or_none(load_signed_policy, input_file(data, "policy.signed.json"))
    if signed is None:
        return
    assert isinstance(signed.unsigned_by([OWNER]), list)
    assert signed.digest.startswith("sha256:")
    again = parse_signed_policy(signed.envelope.to_json())
    assert again.document == signed.document
    assert again.policy.to_json() == signed.policy.to_json()


if __name__ == "__main__":
    main(TestOneInput)
