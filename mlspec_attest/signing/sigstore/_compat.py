"""sigstore-python 4.5, with the gaps the sigstore-conformance suite exposes closed.

Everything that touches sigstore-python's private API lives here, so a change
of sigstore version shows up in one module (and in tests/sigstore/test_conformance.py,
which runs the 70 conformance vectors through it). sigstore 4.5.1 agrees with
66 of them; the four it misses are:

* ``trust-root-tsa-validity-end-inclusive`` - a trust root's ``validFor`` is a
  closed interval, sigstore compares the timestamp's end exclusively;
* ``intoto-with-custom-trust-root`` - Rekor v1 ``intoto`` 0.0.2 entries (what
  cosign wrote for attestations) are refused; the body check below follows
  sigstore-js (one signature, the same signature, the same payload hash) and also
  requires the entry's verifier to be the bundle's certificate;
* ``managed-key-happy-path`` / ``managed-key-and-trusted-root`` - bundles signed
  with a managed key (``publicKey.hint``) do not parse in sigstore-python at all;
  :func:`verify_key_transparency` checks their log entry, signed times and entry
  body with sigstore's own building blocks (entry bodies: :mod:`.log_entry`).

Adapted from sigstore-python 4.5.1 ``sigstore/verify/verifier.py`` (Apache-2.0,
Copyright 2022 The Sigstore Authors) where noted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from mlspec_attest.errors import MalformedDocumentError, SigstoreVerificationError, missing
from mlspec_attest.signing.sigstore.identity import SigstoreIdentity, check_identity
from mlspec_attest.signing.sigstore.result import SignedTime, VerifiedBundle
from mlspec_attest.signing.sigstore.trust_root import TrustRoot

try:
    from rfc3161_client import TimeStampResponse, VerifierBuilder
    from rfc3161_client import VerificationError as Rfc3161VerificationError
    from sigstore import dsse
    from sigstore import errors as sigstore_errors
    from sigstore._internal.timestamp import TimestampSource, TimestampVerificationResult
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle, InvalidBundle, TimestampVerificationData
    from sigstore.models import TransparencyLogEntry as SigstoreLogEntry
    from sigstore.verify import Verifier
    from sigstore.verify.verifier import MAX_ALLOWED_TIMESTAMP
    from sigstore_models.bundle.v1 import Bundle as BundleModel
    from sigstore_models.common.v1 import HashAlgorithm

    from mlspec_attest.signing.sigstore.log_entry import (
        check_intoto_body,
        check_key_entry_body,
        same_certificate,
    )
except ImportError as exc:
    raise missing("sigstore", "verifying Sigstore bundles", exc) from exc

if TYPE_CHECKING:
    from mlspec_attest.signing.keys import LocalPublicKey

# Entry kinds whose integrated time a Signed Entry Timestamp binds (Rekor v1).
_PROMISED_KINDS = {("dsse", "0.0.1"), ("hashedrekord", "0.0.1"), ("intoto", "0.0.2")}
# A log entry integrated this far in the future is refused (clock skew allowance).
_FUTURE_SKEW = timedelta(minutes=5)


class ConformingVerifier(Verifier):
    """sigstore-python's Verifier with inclusive TSA validity and Rekor ``intoto`` entries."""

    def _verify_signed_timestamp(
        self, timestamp_response: TimeStampResponse, message: bytes
    ) -> TimestampVerificationResult | None:
        # Adapted from sigstore 4.5.1: the validity end is inclusive (TimeRange is closed).
        for authority in self._trusted_root.get_timestamp_authorities():
            certificates = authority.certificates(allow_expired=True)
            if len(certificates) < 2:
                continue
            builder = (
                VerifierBuilder()
                .tsa_certificate(certificates[0])
                .add_root_certificate(certificates[-1])
            )
            for certificate in certificates[1:-1]:
                builder = builder.add_intermediate_certificate(certificate)
            try:
                builder.build().verify_message(timestamp_response, message)
            except Rfc3161VerificationError:
                continue
            gen_time = timestamp_response.tst_info.gen_time
            end = authority.validity_period_end
            if authority.validity_period_start <= gen_time and (end is None or gen_time <= end):
                return TimestampVerificationResult(
                    source=TimestampSource.TIMESTAMP_AUTHORITY, time=gen_time
                )
        return None

    def _establish_time(self, bundle: Bundle) -> list[TimestampVerificationResult]:
        # Adapted from sigstore 4.5.1: Rekor v1 intoto 0.0.2 entries carry a promised time too.
        verified: list[TimestampVerificationResult] = []
        if bundle.verification_material.timestamp_verification_data:
            if not self._trusted_root.get_timestamp_authorities():
                raise sigstore_errors.VerificationError(
                    "the bundle carries signed timestamps, but the trust root names no "
                    "timestamp authority"
                )
            verified.extend(self._verify_timestamp_authority(bundle))
        inner = bundle.log_entry._inner
        if inner.integrated_time and inner.inclusion_promise:
            kind = (inner.kind_version.kind, inner.kind_version.version)
            if kind not in _PROMISED_KINDS:
                raise sigstore_errors.VerificationError(
                    f"integrated time is not supported for {kind[0]}/{kind[1]} entries"
                )
            verified.append(
                TimestampVerificationResult(
                    source=TimestampSource.TRANSPARENCY_SERVICE,
                    time=datetime.fromtimestamp(inner.integrated_time, tz=UTC),
                )
            )
        return verified

    def verify_dsse(self, bundle: Bundle, policy: Any) -> tuple[str, bytes]:
        kind = bundle.log_entry._inner.kind_version
        if (kind.kind, kind.version) != ("intoto", "0.0.2"):
            return super().verify_dsse(bundle, policy)
        self._verify_common_signing_cert(bundle, policy)
        envelope = bundle._dsse_envelope
        if envelope is None:
            raise sigstore_errors.VerificationError("an intoto entry needs a DSSE envelope")
        key = cast(ec.EllipticCurvePublicKey, bundle.signing_certificate.public_key())
        dsse._verify(key, envelope)
        check_intoto_body(
            bundle.log_entry._inner.canonicalized_body,
            envelope._inner.payload_type,
            envelope._inner.payload,
            envelope.signature,
            lambda pem: same_certificate(pem, bundle.signing_certificate),
        )
        return envelope._inner.payload_type, envelope._inner.payload


@contextmanager
def _refusals(what: str, failed: str, remedy: str) -> Iterator[None]:
    """What sigstore refuses inside the block, or input it chokes on, as one
    :class:`SigstoreVerificationError` (exit 1): ``<what>: <failed>: <reason>``."""
    try:
        yield
    except SigstoreVerificationError:
        raise
    except sigstore_errors.Error as exc:
        raise SigstoreVerificationError(f"{what}: {failed}: {exc}", remedy=remedy) from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise SigstoreVerificationError(f"{what}: {failed}: {exc}") from exc


def _policy(rules: Sequence[SigstoreIdentity], seen: list[Any]) -> Any:
    """A sigstore VerificationPolicy: the certificate must match one of ``rules``."""

    class _Rules:
        def verify(self, cert: x509.Certificate) -> None:
            seen.append(check_identity(cert, rules))

    return _Rules()


def verify_certificate_bundle(
    bundle_json: str,
    trust: TrustRoot,
    rules: Sequence[SigstoreIdentity],
    artifact_digest: bytes | None,
    what: str,
) -> VerifiedBundle:
    """Verify a keyless bundle; the identity rules are checked where sigstore checks policy."""
    trusted_root = trust.sigstore()
    try:
        bundle = Bundle.from_json(bundle_json)
    except (sigstore_errors.Error, ValueError, TypeError) as exc:
        # InvalidBundle, and undecodable signed timestamps (VerificationError).
        raise MalformedDocumentError(f"{what}: not a valid Sigstore bundle ({exc})") from exc
    seen: list[Any] = []
    verifier = ConformingVerifier(trusted_root=trusted_root)
    payload_type: str | None = None
    payload: bytes | None = None
    remedy = (
        "the bundle is altered, or it comes from another Sigstore instance than "
        f"the trust root ({trust.source})"
    )
    with _refusals(what, "Sigstore verification failed", remedy):
        if bundle._dsse_envelope is not None:
            payload_type, payload = verifier.verify_dsse(bundle, _policy(rules, seen))
        else:
            assert artifact_digest is not None
            verifier.verify_artifact(
                Hashed(algorithm=HashAlgorithm.SHA2_256, digest=artifact_digest),
                bundle,
                _policy(rules, seen),
            )
        times = tuple(
            SignedTime(_source_name(t.source), t.time) for t in verifier._establish_time(bundle)
        )
    identity, matched = seen[-1]
    return VerifiedBundle(
        "sigstore",
        payload_type,
        payload,
        identity=identity,
        matched=matched,
        times=times,
        log_entries=1,
    )


def _source_name(source: TimestampSource) -> str:
    if source is TimestampSource.TIMESTAMP_AUTHORITY:
        return "timestamp-authority"
    return "transparency-log"


# --- managed-key bundles ----------------------------------------------------------------


def _parse_key_bundle(
    bundle_json: str, what: str
) -> tuple[BundleModel, Any, SigstoreLogEntry, list[TimeStampResponse]]:
    """The parts of a key bundle sigstore-python cannot parse as a whole."""
    try:
        inner = BundleModel.from_json(bundle_json)
        media_type = Bundle.BundleType(inner.media_type)
        entries = inner.verification_material.tlog_entries
        if len(entries) != 1:
            raise InvalidBundle(f"expected exactly one log entry, found {len(entries)}")
        entry = SigstoreLogEntry(entries[0])
        tsd = inner.verification_material.timestamp_verification_data
        stamps = (
            TimestampVerificationData(tsd).rfc3161_timestamps
            if tsd and tsd.rfc3161_timestamps
            else []
        )
    except (InvalidBundle, ValueError, TypeError, sigstore_errors.Error) as exc:
        raise MalformedDocumentError(f"{what}: not a valid Sigstore bundle ({exc})") from exc
    return inner, media_type, entry, stamps


def _key_bundle_times(
    verifier: ConformingVerifier,
    log: Any,
    stamps: list[TimeStampResponse],
    signature: bytes,
    now: datetime,
) -> list[SignedTime]:
    """The verified signing times of a key bundle: signed timestamps, then the promise."""
    times: list[SignedTime] = []
    if stamps:
        if len(stamps) > MAX_ALLOWED_TIMESTAMP:
            raise sigstore_errors.VerificationError("too many signed timestamps")
        if len(set(stamps)) != len(stamps):
            raise sigstore_errors.VerificationError("duplicate signed timestamp")
        for stamp in stamps:
            result = verifier._verify_signed_timestamp(stamp, signature)
            if result is not None:
                times.append(SignedTime("timestamp-authority", result.time))
    if log.integrated_time and log.inclusion_promise:
        kind = (log.kind_version.kind, log.kind_version.version)
        if kind not in _PROMISED_KINDS:
            raise sigstore_errors.VerificationError(
                f"integrated time is not supported for {kind[0]}/{kind[1]} entries"
            )
        integrated = datetime.fromtimestamp(log.integrated_time, tz=UTC)
        if integrated > now + _FUTURE_SKEW:
            raise sigstore_errors.VerificationError("the log entry is integrated in the future")
        times.append(SignedTime("transparency-log", integrated))
    if not times:
        raise sigstore_errors.VerificationError("no verified source of signing time")
    return times


def verify_key_transparency(
    bundle_json: str,
    trust: TrustRoot,
    key: LocalPublicKey,
    signature: bytes,
    artifact_digest: bytes | None,
    now: datetime,
    what: str,
) -> tuple[SignedTime, ...]:
    """For a bundle whose signature the caller checked with ``key``: its one log entry
    (inclusion proof, checkpoint, promise) and signed times under ``trust``, and that the
    entry records this signature by this key over this content."""
    trusted_root = trust.sigstore()
    inner, media_type, entry, stamps = _parse_key_bundle(bundle_json, what)
    log = entry._inner
    remedy = (
        "the bundle is altered, or it was logged by another Sigstore instance than "
        f"the trust root ({trust.source})"
    )
    with _refusals(what, "transparency-log verification failed", remedy):
        if media_type is Bundle.BundleType.BUNDLE_0_1:
            if not log.inclusion_promise:
                raise sigstore_errors.VerificationError("a v0.1 bundle needs an inclusion promise")
        elif not log.inclusion_promise and not stamps:
            raise sigstore_errors.VerificationError(
                "the bundle needs an inclusion promise or a signed timestamp"
            )
        verifier = ConformingVerifier(trusted_root=trusted_root)
        times = _key_bundle_times(verifier, log, stamps, signature, now)
        entry._verify(trusted_root.rekor_keyring(KeyringPurpose.VERIFY))
        check_key_entry_body(inner.dsse_envelope, log, key, signature, artifact_digest)
    return tuple(times)
