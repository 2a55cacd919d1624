"""policy.parse_signed_policy on a validly signed envelope: the policy payload itself.

Input: the payload bytes (policy JSON). The target signs them with a real
ed25519 key (no mocks) so that parsing reaches compile_policy. Checks: only
bad-input errors; the envelope verifies under the key; an accepted policy
signs and parses again to the same document.
"""

from __future__ import annotations

from mlspec_attest.formats.dsse import Envelope
from mlspec_attest.policy import sign_policy
from mlspec_attest.policy.signed import POLICY_PAYLOAD_TYPE, parse_signed_policy
from mlspec_attest.signing.keys import KeyType, generate_key

from ._harness import main, parse_or_none

OWNER = generate_key(KeyType.ED25519)


def TestOneInput(data: bytes) -> None:
    envelope = Envelope.sign(data, POLICY_PAYLOAD_TYPE, [OWNER])
    signed = parse_or_none(parse_signed_policy, envelope.to_json())
    if signed is None:
        return
    assert signed.unsigned_by([OWNER.public_key]) == []
    resigned = parse_signed_policy(sign_policy(signed.policy, [OWNER]).to_json())
    assert resigned.policy.to_json() == signed.policy.to_json()


if __name__ == "__main__":
    main(TestOneInput)
