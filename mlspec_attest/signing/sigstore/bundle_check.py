"""One ``bundle verify`` request: what was signed, which trust root, which identities or key.

:meth:`BundleCheck.from_options` turns the command's options into the inputs of
:func:`~mlspec_attest.signing.sigstore.verify.verify_bundle` (refusing combinations
that make no sense, exit 2); :meth:`BundleCheck.verify` runs the one verifier.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from msgspec import Struct

from mlspec_attest.errors import UsageError
from mlspec_attest.formats.inputs import named
from mlspec_attest.signing.keys import LocalPublicKey, load_public_key
from mlspec_attest.signing.sigstore.identity import SigstoreIdentity
from mlspec_attest.signing.sigstore.result import VerifiedBundle
from mlspec_attest.signing.sigstore.trust_root import TrustRoot
from mlspec_attest.signing.sigstore.verify import sha256_file, verify_bundle


def artifact_digest(artifact: Path | None, digest: str | None) -> str:
    """The signed artifact's hex sha256: ``--digest sha256:HEX``, else the file's."""
    if digest is not None:
        match = re.fullmatch(r"sha256:([0-9a-fA-F]{64})", digest)
        if match is None:
            raise UsageError(f"{named('digest')} {digest!r} is not sha256:<64 hex digits>")
        return match.group(1).lower()
    assert artifact is not None
    return sha256_file(artifact)


def trust_root_from_options(
    trusted_root: Path | None, trust_config: Path | None, instance: str | None, refresh: bool
) -> TrustRoot | None:
    """The trust root a file (TrustedRoot or ClientTrustConfig) or an instance names, if any."""
    path = trusted_root or trust_config
    if path is not None:
        return TrustRoot.from_file(path)
    if instance is not None:
        return TrustRoot.refreshed(instance) if refresh else TrustRoot.embedded(instance)
    return None


def identity_rules(
    identity: str | None, identity_regex: str | None, issuer: str | None
) -> tuple[SigstoreIdentity, ...]:
    if issuer is None:
        return ()
    try:
        return (SigstoreIdentity(issuer, identity=identity, identity_regex=identity_regex),)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


class BundleCheck(Struct, frozen=True):
    """The inputs of one bundle verification."""

    artifact_sha256: str
    trust: TrustRoot | None
    rules: tuple[SigstoreIdentity, ...]
    key: LocalPublicKey | None
    artifact_is_file: bool = True  # False: a digest given as such (it may name a directory)

    @classmethod
    def from_options(
        cls,
        *,
        artifact: Path | None,
        digest: str | None,
        trusted_root: Path | None,
        trust_config: Path | None,
        instance: str | None,
        refresh_trust: bool,
        key: Path | None,
        identity: str | None,
        identity_regex: str | None,
        issuer: str | None,
    ) -> BundleCheck:
        """The inputs these options name; combinations that make no sense are refused (exit 2)."""
        trust_options = [o for o in (trusted_root, trust_config, instance) if o is not None]
        if (artifact is None) == (digest is None):
            raise UsageError(
                f"name what was signed: {named('artifact')} FILE or {named('digest')} sha256:HEX"
            )
        if len(trust_options) > 1:
            raise UsageError(
                f"choose one of {named('trusted_root')}, {named('trust_config')} "
                f"and {named('instance')}"
            )
        if refresh_trust and instance is None:
            raise UsageError(
                f"{named('refresh_trust')} goes with {named('instance')} production|staging"
            )
        if identity is not None and identity_regex is not None:
            raise UsageError(f"choose one of {named('identity')} and {named('identity_regex')}")
        if (identity is not None or identity_regex is not None) != (issuer is not None):
            raise UsageError(
                f"{named('identity')}/{named('identity_regex')} and {named('issuer')} go together"
            )
        if key is None and not trust_options:
            raise UsageError(
                "no trust given",
                remedy=f"pass {named('key')} PUBKEY, or a trust root "
                f"({named('trusted_root')}, {named('trust_config')}, {named('instance')}) "
                f"with {named('identity')} and {named('issuer')}",
            )
        sha256 = artifact_digest(artifact, digest)
        trust = trust_root_from_options(trusted_root, trust_config, instance, refresh_trust)
        rules = identity_rules(identity, identity_regex, issuer)
        public_key = load_public_key(key) if key is not None else None
        return cls(sha256, trust, rules, public_key, artifact_is_file=artifact is not None)

    def verify(self, doc: Any, *, what: str) -> VerifiedBundle:
        """:func:`verify_bundle` with these inputs; raises as it does."""
        return verify_bundle(
            doc,
            trust=self.trust,
            identities=self.rules,
            key=self.key,
            artifact_sha256=self.artifact_sha256,
            artifact_is_file=self.artifact_is_file,
            what=what,
        )
