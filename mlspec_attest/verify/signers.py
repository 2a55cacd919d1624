"""Who signed an attestation: the policy functionary behind a key or a Sigstore identity.

One lookup serves every bundle the verifier reads, stage attestations and the
``--baseline`` alike, so a signature counts (or not) the same way wherever it appears:

* a key-signed bundle: the functionaries whose public key the ``publicKey.hint``
  names (every key functionary when the hint names none) are the candidates, and
  every signature of the envelope is checked against every candidate key. Each
  distinct key that verifies a signature credits one functionary
  (:meth:`SignerLookup.key_signers`, one key never counted twice); the one signer of
  the bundle (:meth:`SignerLookup.by_key`) is a credited functionary allowed to sign
  the claimed stage, so an envelope signed by two functionaries is never denied
  because the one not allowed for its stage comes first. Ties are broken by key id,
  never by the order of the policy, of the signatures or of names;
* a keyless bundle: verified offline against the policy's Sigstore trust root, its
  certificate identity matched against the policy's identity rules;
* when several functionaries share the key (or identity) that verified, the one
  allowed to sign the stage is the signer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mlspec_attest.errors import SigstoreVerificationError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.policy.model import Functionary, Policy, StagePolicy
from mlspec_attest.signing.sigstore.verify import verify_bundle


def prefer_allowed(candidates: Sequence[Functionary], stage: StagePolicy | None) -> Functionary:
    """The first candidate allowed to sign ``stage``, else the first candidate."""
    allowed = [f for f in candidates if stage and f.name in stage.functionaries]
    return (allowed or candidates)[0]


class SignerLookup:
    """The functionaries of one policy, looked up by the signature of a bundle."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        #: Times a third party (transparency log, TSA) vouches for, per attestation file.
        self.trusted_times: dict[str, tuple[datetime, ...]] = {}

    def stage(self, name: str | None) -> StagePolicy | None:
        return self.policy.stage(name) if name else None

    def allowed_names(self, stage_name: str | None) -> str:
        """Who may sign ``stage_name``, for messages."""
        stage = self.stage(stage_name)
        return ", ".join(stage.functionaries) if stage else "a functionary of the policy"

    def knows_key(self, hint: str | None) -> bool:
        """The key hint names a functionary of the policy."""
        return bool(hint) and any(f.keyid == hint for f in self.policy.functionaries.values())

    def _key_candidates(self, hint: str | None) -> list[Functionary]:
        everyone = [f for f in self.policy.functionaries.values() if f.public_key is not None]
        matching = [f for f in everyone if hint and f.keyid == hint]
        return matching or everyone

    def key_signers(self, bundle: Bundle, claimed: str | None) -> tuple[Functionary, ...]:
        """Every functionary the signatures of ``bundle`` credit, by key id.

        Each signature is checked against every candidate key (:meth:`Envelope.verified_by
        <mlspec_attest.formats.dsse.Envelope.verified_by>` tries all signatures under one
        key); every distinct key that verifies one credits one functionary — if several
        share that key, the one allowed to sign the claimed stage. A key that made two
        signatures is credited once. Sorted by key id: the result does not depend on
        the order of the policy or of the signatures.
        """
        keys = {f.keyid: f.key for f in self._key_candidates(bundle.key_hint)}  # each key once
        keyids = sorted(k for k, key in keys.items() if bundle.envelope.verified_by(key))
        stage = self.stage(claimed)
        return tuple(
            prefer_allowed([f for f in self.policy.functionaries.values() if f.keyid == k], stage)
            for k in keyids
        )

    def by_key(self, bundle: Bundle, claimed: str | None) -> Functionary | None:
        """The one functionary ``bundle`` is credited to: of those its signatures credit
        (:meth:`key_signers`), the first by key id allowed to sign the claimed stage, else
        the first by key id; None if no candidate key verifies a signature."""
        credited = self.key_signers(bundle, claimed)
        return prefer_allowed(credited, self.stage(claimed)) if credited else None

    def by_identity(self, bundle: Bundle, claimed: str | None, what: str) -> Functionary:
        """Like :meth:`by_key` for a keyless bundle (see :meth:`keyless_functionaries`)."""
        return prefer_allowed(self.keyless_functionaries(bundle, what), self.stage(claimed))

    def keyless_functionaries(self, bundle: Bundle, what: str) -> list[Functionary]:
        """The Sigstore functionaries whose identity rule the bundle's certificate matches,
        after verifying the bundle offline against the policy's trust root.

        Raises SigstoreVerificationError (IdentityMismatchError for an unknown identity)
        or MalformedDocumentError; BackendError if sigstore-python is missing.
        """
        keyless = [f for f in self.policy.functionaries.values() if f.identity is not None]
        trust = self.policy.sigstore_trust
        if not keyless or trust is None:
            raise SigstoreVerificationError(
                "signed keyless (a Sigstore certificate), but the policy names no Sigstore "
                "identities",
                remedy="sign with a functionary key, or add the signer's Sigstore identity "
                "and trust.sigstore to the policy",
            )
        verified = verify_bundle(
            bundle.to_json(),
            trust=trust,
            identities=[f.identity for f in keyless if f.identity is not None],
            what=what,
        )
        self.trusted_times[what] = tuple(t.time for t in verified.times)
        return [f for f in keyless if f.identity in verified.matched]
