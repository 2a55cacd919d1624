"""Checking a signed verification summary (SLSA VSA v1) against explicit trust and expectations.

:func:`check_summary`, the first half of the serving gate (docs/serving.md, "Gate"), reads
the Sigstore bundle ``verify`` signed and checks, collecting every reason it finds:

* ``signature``: by a trusted verifier key, or a Sigstore identity under the trust root
  (one call of the one path, :func:`~mlspec_attest.signing.sigstore.verify.verify_bundle`);
* ``payload-type``, ``statement``: an in-toto statement with the VSA predicate type;
* ``verification-result``: PASSED; ``policy-digest``, ``resource-uri``: as expected;
* ``time-verified``: at most ``max_age`` old, at most :data:`MAX_CLOCK_SKEW` ahead;
* ``model-subject``: a subject for the role (``model``) with a sha256.

Any reason is a :class:`~mlspec_attest.errors.GateDeniedError` (exit 1) carrying all;
missing trust (none given, a keyless summary without a trust root, no sigstore) is a
:class:`~mlspec_attest.errors.BackendError` (exit 4); a bundle or payload that does not
parse, a :class:`~mlspec_attest.errors.MalformedDocumentError` (exit 3).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from msgspec import Struct
from msgspec.structs import asdict

from mlspec_attest.errors import (
    BackendError,
    GateDeniedError,
    MalformedDocumentError,
    SigstoreVerificationError,
    UsageError,
)
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.jsonio import loads_strict
from mlspec_attest.formats.limits import MAX_BUNDLE_BYTES, MAX_DSSE_PAYLOAD_BYTES, read_limited
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.formats.statement import STATEMENT_TYPE, ResourceDescriptor
from mlspec_attest.formats.vsa import (
    VSA_PREDICATE_TYPE,
    Result,
    VerificationSummary,
    summary_digest,
)
from mlspec_attest.signing.keys import LocalPublicKey
from mlspec_attest.signing.sigstore.identity import SigstoreIdentity
from mlspec_attest.signing.sigstore.result import VerifiedBundle
from mlspec_attest.signing.sigstore.trust_root import TrustRoot
from mlspec_attest.signing.sigstore.verify import verify_bundle

MAX_CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a summary's ``timeVerified`` may be (clocks of the verifier and
the gate disagree a little); further ahead, it is refused."""

_SHA256 = re.compile(r"[0-9a-f]{64}")
_BUNDLE = "a Sigstore bundle"


class GateCheck(StrEnum):
    """Every check of the gate, in the order it runs (docs/serving.md, "Gate")."""

    SIGNATURE = "signature"
    PAYLOAD_TYPE = "payload-type"
    STATEMENT = "statement"
    RESULT = "verification-result"
    POLICY_DIGEST = "policy-digest"
    RESOURCE_URI = "resource-uri"
    TIME_VERIFIED = "time-verified"
    SUBJECT = "model-subject"
    MODEL_FILES = "model-files"
    MODEL_DIGEST = "model-digest"
    ROLLBACK_TARGET = "rollback-target"


class GateReason(Struct, frozen=True):
    """One reason the gate refuses: the check, what it expected, what it found, the fix."""

    check: GateCheck
    message: str
    expected: str = ""
    found: str = ""
    remedy: str = ""

    def __str__(self) -> str:
        text = f"{self.check.value}: {self.message}"
        if self.expected or self.found:
            text += f" (expected {self.expected or '-'}, found {self.found or '-'})"
        if self.remedy:
            text += f"; fix: {self.remedy}"
        return text

    def to_json(self) -> dict[str, str]:
        return {**asdict(self), "check": self.check.value}


def deny(reasons: list[GateReason], what: str) -> GateDeniedError:
    """The one denial: every reason, the first one's message in the headline."""
    count = f" ({len(reasons)} reasons)" if len(reasons) > 1 else ""
    return GateDeniedError(f"gate denied {what}{count}: {reasons[0].message}", tuple(reasons))


class VerifierTrust(Struct, frozen=True):
    """Who may sign a summary the gate accepts: verifier keys, or Sigstore identities
    under a trust root. Nothing is trusted by default."""

    keys: tuple[LocalPublicKey, ...] = ()
    identities: tuple[SigstoreIdentity, ...] = ()
    trust_root: TrustRoot | None = None


class GateExpectations(Struct, frozen=True):
    """What the summary must say besides PASSED; ``None`` leaves a field unchecked.

    ``policy_digest``: sha256 (hex, or ``sha256:HEX``) of the policy the pipeline met;
    ``resource_uri``: where this server serves from, exactly; ``max_age``: how old the
    summary may be; ``now``: the gate's clock (the system's when ``None``); ``role``:
    the subject that is the model.
    """

    policy_digest: str | None = None
    resource_uri: str | None = None
    max_age: timedelta | None = None
    now: datetime | None = None
    role: str = "model"


class CheckedSummary(Struct, frozen=True):
    """A summary that passed :func:`check_summary`; only this opens a model."""

    summary: VerificationSummary
    digest: str
    """sha256 (hex) of the DSSE payload: the summary's name in the inference log."""
    signer: str
    """The verifier key's keyid, or the Sigstore identity that signed (and its issuer)."""
    subject: ResourceDescriptor
    """The checked role's subject, with its sha256 (and manifest-sha256)."""
    age: timedelta

    @property
    def model_digest(self) -> str:
        return self.subject.digest["sha256"]


def check_summary(
    source: Path | bytes, trust: VerifierTrust, expect: GateExpectations | None = None
) -> CheckedSummary:
    """Check the signed summary ``source`` (a bundle file, or its bytes); see the module doc."""
    expect = expect or GateExpectations()
    what = f"verification summary {source}" if isinstance(source, Path) else "verification summary"
    if not trust.keys and not trust.identities:
        raise BackendError(
            "no verifier is trusted: the gate accepts no verification summary",
            remedy=f"pass {named('verifier_key')}, or {named('verifier_identity')} "
            f"and {named('verifier_trust_root')}",
        )
    if isinstance(source, Path):  # bytes on disk: a FIFO or a device is refused as such
        source = read_limited(source, MAX_BUNDLE_BYTES, what=what, kind=_BUNDLE, regular_only=True)
    doc = loads_strict(source, what=what, max_bytes=MAX_BUNDLE_BYTES)
    bundle = Bundle.from_json(doc, what=what)
    reasons: list[GateReason] = []
    verified = _signature(doc, bundle, trust, what, reasons)
    envelope = bundle.envelope
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE:
        reasons.append(
            GateReason(
                GateCheck.PAYLOAD_TYPE,
                "the envelope does not carry an in-toto statement",
                expected=INTOTO_PAYLOAD_TYPE,
                found=envelope.payload_type,
                remedy="give the summary `verify` signed, not another document",
            )
        )
    summary = _summary(envelope.payload, what, reasons, strict=verified is not None)
    if summary is None:
        raise deny(reasons, what)
    subject = _content(summary, expect, reasons)
    age = _age(summary, expect, reasons)
    if reasons or verified is None or subject is None:
        raise deny(reasons, what)
    digest = summary_digest(envelope.payload)
    who = verified.identity.describe() if verified.identity else verified.signer_id
    return CheckedSummary(summary, digest, who, subject, age)


# ------------------------------------------------------------------ the signature
def _signature(
    doc: dict[str, Any], bundle: Bundle, trust: VerifierTrust, what: str, out: list[GateReason]
) -> VerifiedBundle | None:
    """The signature, checked by the one verification path; None (with a reason) if it fails."""
    if bundle.is_keyless:
        if not trust.identities:
            out.append(_untrusted("a Sigstore certificate", "one of the trusted verifier keys"))
            return None
        if trust.trust_root is None:
            raise BackendError(
                f"{what}: signed keyless, and no Sigstore trust root was given to verify it",
                remedy=f"pass {named('verifier_trust_root')}",
            )
        return _verified(doc, what, out, trust=trust.trust_root, identities=trust.identities)
    hint, keys = bundle.key_hint, trust.keys
    if hint is None and len(keys) > 1:
        return _verified_by_any(doc, what, out, keys)
    key = next((k for k in keys if hint in (None, k.keyid)), None)  # no hint: the only key
    if key is None:
        hint = bundle.key_hint or "(no key hint)"
        expected = ", ".join(k.keyid[:16] for k in trust.keys) or "a Sigstore identity"
        out.append(_untrusted(f"key {hint[:16]}", expected))
        return None
    return _verified(doc, what, out, trust=None, key=key)


def _verified_by_any(
    doc: dict[str, Any], what: str, out: list[GateReason], keys: tuple[LocalPublicKey, ...]
) -> VerifiedBundle | None:
    """No key hint: the first trusted key the signature verifies with (a hint saves trying)."""
    for key in keys:
        verified = _verified(doc, what, [], trust=None, key=key)
        if verified is not None:
            return verified
    expected = ", ".join(k.keyid[:16] for k in keys)
    out.append(_untrusted("a key none of the trusted verifiers holds (no key hint)", expected))
    return None


def _verified(
    doc: dict[str, Any], what: str, out: list[GateReason], **trust: Any
) -> VerifiedBundle | None:
    try:
        return verify_bundle(doc, what=what, **trust)
    except SigstoreVerificationError as exc:
        out.append(
            GateReason(
                GateCheck.SIGNATURE,
                f"the signature does not verify: {exc.message}",
                expected="a valid signature by a trusted verifier",
                found="an invalid signature",
                remedy=exc.remedy
                or "the summary was altered after signing, or another verifier signed it",
            )
        )
        return None


def _untrusted(found: str, expected: str) -> GateReason:
    return GateReason(
        GateCheck.SIGNATURE,
        f"signed by {found}, which is not a trusted verifier",
        expected=expected,
        found=found,
        remedy=f"trust the verifier that signed it ({named('verifier_key')} or "
        f"{named('verifier_identity')}), or verify the run again with a trusted one",
    )


# ------------------------------------------------------------------ the statement
def _summary(
    payload: bytes, what: str, out: list[GateReason], *, strict: bool
) -> VerificationSummary | None:
    """The parsed summary. A payload that does not parse is bad input when the signature
    holds (exit 3); when it does not, one more reason of a denial that stands anyway."""
    try:
        doc = loads_strict(payload, what=f"{what}: payload", max_bytes=MAX_DSSE_PAYLOAD_BYTES)
        kind = doc.get("predicateType") if isinstance(doc, dict) else None
        if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE:
            kind = "not an in-toto Statement v1"
        elif kind != VSA_PREDICATE_TYPE:
            kind = f"predicateType {kind!r}"
        else:
            kind = None
        if kind is not None:
            out.append(
                GateReason(
                    GateCheck.STATEMENT,
                    "the signed statement is not a verification summary",
                    expected=f"predicateType {VSA_PREDICATE_TYPE}",
                    found=kind,
                    remedy="give the summary `verify` signed, not a stage attestation",
                )
            )
            return None
        return VerificationSummary.from_json(doc, what=f"{what}: payload")
    except MalformedDocumentError as exc:
        if strict:
            raise
        out.append(GateReason(GateCheck.STATEMENT, exc.message, expected="a verification summary"))
        return None


def _content(
    summary: VerificationSummary, expect: GateExpectations, out: list[GateReason]
) -> ResourceDescriptor | None:
    """The result, policy, resource and subject checks; the role's subject if it is usable."""
    if summary.result is not Result.PASSED:
        failures = summary.details.get("failures")
        count = f" ({len(failures)} failures)" if isinstance(failures, list) else ""
        out.append(
            GateReason(
                GateCheck.RESULT,
                f"summary says FAILED{count}: the pipeline did not pass verification",
                expected=Result.PASSED.value,
                found=summary.result.value,
                remedy="fix what verify reported and verify the run again",
            )
        )
    for check, wanted, found, message, remedy in (
        (
            GateCheck.POLICY_DIGEST,
            _policy_digest(expect.policy_digest),
            summary.policy_digest,
            "the pipeline was verified against another policy",
            f"verify the run against the policy {named('policy_digest')} names",
        ),
        (
            GateCheck.RESOURCE_URI,
            expect.resource_uri,
            summary.resource_uri,
            "the summary is for another deployment",
            f"verify for this deployment, or correct {named('resource_uri')}",
        ),
    ):
        if wanted is not None and found != wanted:
            out.append(GateReason(check, message, wanted, found, remedy))
    return _subject(summary, expect.role, out)


def _policy_digest(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.removeprefix("sha256:").lower()
    if not _SHA256.fullmatch(text):
        raise UsageError(
            f"{named('policy_digest')} {value!r} is not a sha256 (64 hex digits, or sha256:HEX)"
        )
    return text


def _subject(
    summary: VerificationSummary, role: str, out: list[GateReason]
) -> ResourceDescriptor | None:
    subject = summary.subject(role)
    digest = subject.digest if subject is not None else {}
    usable = all(_SHA256.fullmatch(digest.get(k, "0" * 64)) for k in ("sha256", "manifest-sha256"))
    if subject is not None and "sha256" in digest and usable:
        return subject
    if subject is None:
        message, expected = f"the summary has no subject {role!r}", f"a subject named {role!r}"
        found = ", ".join(s.name for s in summary.subjects)
        remedy = f"verify the run with the {role} as a deploy artifact"
    else:
        message = f"the subject {role!r} carries no usable sha256"
        expected = "sha256 (and manifest-sha256 for a directory) as 64 hex digits"
        found = ", ".join(f"{k}:{v}" for k, v in digest.items())
        remedy = "verify the run with the default digest scheme (sha256, files)"
    out.append(GateReason(GateCheck.SUBJECT, message, expected, found, remedy))
    return None


def _age(
    summary: VerificationSummary, expect: GateExpectations, out: list[GateReason]
) -> timedelta:
    now = expect.now or datetime.now(UTC)
    verified = summary.time_verified
    age = now - verified
    if verified > now + MAX_CLOCK_SKEW:
        out.append(
            GateReason(
                GateCheck.TIME_VERIFIED,
                "the summary was verified in the future",
                expected=f"at most {_span(MAX_CLOCK_SKEW)} after {format_rfc3339(now)}",
                found=format_rfc3339(verified),
                remedy="check the verifier's clock (and this one's), then verify again",
            )
        )
    elif expect.max_age is not None and age > expect.max_age:
        out.append(
            GateReason(
                GateCheck.TIME_VERIFIED,
                f"the summary is {_span(age)} old, older than allowed",
                expected=f"at most {_span(expect.max_age)} old",
                found=format_rfc3339(verified),
                remedy=f"verify the run again, or allow an older summary ({named('max_age')})",
            )
        )
    return age


def _span(delta: timedelta) -> str:
    """``3d4h``, ``25m``, ``40s``: a duration as people write it."""
    seconds = int(abs(delta.total_seconds()))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"
