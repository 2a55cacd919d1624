"""The one key and signature-scheme registry: which keys each path accepts, how their signatures are made and checked.

Every path asks here — local keys (:mod:`.keys`: ``keygen``, ``sign --key``,
policies, ``verify``), Sigstore bundles signed with a key (``bundle verify
--key``, stage verification) and OpenSSF model-signing keys and certificates
(``model verify``/``model sign``). The table, and why each exception exists, is
in docs/sigstore.md ("Keys and signature schemes"):

* keys: Ed25519; ECDSA on P-256, P-384, P-521 (other curves refused); RSA of
  at least 2048 bits. Model-signing takes ECDSA only (its format has no other).
* ECDSA signs and verifies with the curve's hash (SHA-256/384/512). SHA-256 on
  a larger curve is accepted only where a producer we interoperate with signs
  so: Sigstore key bundles (cosign and the Sigstore clients hash with SHA-256
  whatever the curve) and model-signing < 1.0 signatures (legacy PAE).
* RSA signs RSA-PSS-SHA256 (salt = digest length) and local verification takes
  exactly that; Sigstore key bundles also take PKCS#1 v1.5-SHA256 and any PSS
  salt (what cosign and sigstore-go write for RSA keys).
* Ed25519 signs messages, never digests.
"""

from __future__ import annotations

from enum import StrEnum

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from msgspec import Struct

from mlspec_attest.errors import KeyLoadError
from mlspec_attest.formats.inputs import named

SupportedPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
SupportedPublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey

MIN_RSA_BITS = 2048


class Use(StrEnum):
    """Where a key or signature comes from; each use accepts its own column of the table."""

    LOCAL = "local"  # keys mlspec-attest makes and reads (keygen, sign --key, policies, verify)
    KEY_BUNDLE = "key-bundle"  # Sigstore bundles signed with a key, whoever wrote them
    OMS = "oms"  # OpenSSF model-signing keys and signing certificates (dsse-v1 PAE)
    OMS_LEGACY = "oms-legacy"  # model-signing < 1.0 signatures (legacy PAE)


class Curve(Struct, frozen=True):
    """An accepted elliptic curve: its hash and the names the formats give it."""

    name: str  # cryptography's curve name
    hash: type[hashes.HashAlgorithm]
    key_details: str  # Sigstore's PublicKeyDetails


CURVES: dict[str, Curve] = {
    "secp256r1": Curve("secp256r1", hashes.SHA256, "PKIX_ECDSA_P256_SHA_256"),
    "secp384r1": Curve("secp384r1", hashes.SHA384, "PKIX_ECDSA_P384_SHA_384"),
    "secp521r1": Curve("secp521r1", hashes.SHA512, "PKIX_ECDSA_P521_SHA_512"),
}

#: Key kinds each use accepts.
ACCEPTED_KEYS: dict[Use, frozenset[str]] = {
    Use.LOCAL: frozenset({"ed25519", "ecdsa", "rsa"}),
    Use.KEY_BUNDLE: frozenset({"ed25519", "ecdsa", "rsa"}),
    Use.OMS: frozenset({"ecdsa"}),
    Use.OMS_LEGACY: frozenset({"ecdsa"}),
}
#: Uses where ECDSA-SHA256 is accepted on P-384 and P-521 besides the curve's own hash.
ECDSA_SHA256_ANY_CURVE = frozenset({Use.KEY_BUNDLE, Use.OMS_LEGACY})
#: Uses where RSA PKCS#1 v1.5 and PSS of any salt length are accepted besides our PSS.
RSA_ANY_PADDING = frozenset({Use.KEY_BUNDLE})

#: What other verifiers make of our signatures, per key class (see :func:`portability_warning`).
PORTABILITY: dict[str, str] = {
    "ecdsa-p384": "sigstore-js (4.1) verifies key bundles with SHA-256 only and refuses "
    "bundles signed with this P-384 key (SHA-384); mlspec-attest, sigstore-python and "
    "model_signing verify them. Use ed25519 or ecdsa-p256 for bundles others must verify.",
    "ecdsa-p521": "sigstore-js (4.1) verifies key bundles with SHA-256 only and refuses "
    "bundles signed with this P-521 key (SHA-512); mlspec-attest, sigstore-python and "
    "model_signing verify them. Use ed25519 or ecdsa-p256 for bundles others must verify.",
    "rsa-3072": "sigstore-js (4.1) verifies RSA key bundles with PKCS#1 v1.5 only and "
    "refuses bundles signed with this key (RSA-PSS); model_signing takes no RSA keys. "
    "Use ed25519 or ecdsa-p256 for bundles others must verify.",
}


def portability_warning(key: object) -> str | None:
    """Why signatures by ``key`` will not verify everywhere (None if they will).

    ``key`` is a ``keygen --type`` value, a ``cryptography`` key, or anything holding
    one (a :class:`~.keys.LocalKeySigner` or :class:`~.keys.LocalPublicKey`); a keyless
    signer has no key and no warning.
    """
    if isinstance(key, str):
        return PORTABILITY.get(str(key))
    inner = getattr(key, "public_key", None) or key
    inner = getattr(inner, "key", inner)
    if callable(inner):  # a cryptography private key: public_key() is a method
        inner = inner()
    if isinstance(inner, rsa.RSAPublicKey):
        return PORTABILITY["rsa-3072"]
    if isinstance(inner, ec.EllipticCurvePublicKey):
        name = {"secp384r1": "ecdsa-p384", "secp521r1": "ecdsa-p521"}.get(inner.curve.name, "")
        return PORTABILITY.get(name)
    return None


def kind_of(key: object) -> str | None:
    """``ed25519``, ``ecdsa`` or ``rsa``; None for any other key."""
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return "ecdsa"
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "rsa"
    return None


def curve_of(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> Curve:
    """The accepted curve of ``key``; :class:`KeyLoadError` for any other curve."""
    try:
        return CURVES[key.curve.name]
    except KeyError:
        raise KeyLoadError(f"unsupported elliptic curve {key.curve.name}") from None


def check_public(key: PublicKeyTypes, source: str, use: Use = Use.LOCAL) -> SupportedPublicKey:
    """``key`` if ``use`` accepts it, else :class:`KeyLoadError` saying why."""
    kind = kind_of(key)
    if use in (Use.OMS, Use.OMS_LEGACY) and kind != "ecdsa":
        raise KeyLoadError(
            f"{source}: model-signing keys are ECDSA P-256, P-384 or P-521",
            remedy=f"create one with `{named('keygen', type='ecdsa-p256')}`",
        )
    if isinstance(key, ec.EllipticCurvePublicKey):
        if use in (Use.OMS, Use.OMS_LEGACY) and key.curve.name not in CURVES:
            raise KeyLoadError(
                f"{source}: model-signing keys are ECDSA P-256, P-384 or P-521",
                remedy=f"create one with `{named('keygen', type='ecdsa-p256')}`",
            )
        curve_of(key)
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyLoadError(f"{source}: RSA key of {key.key_size} bits is too small")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise KeyLoadError(f"{source}: unsupported key type {type(key).__name__}")


def accepts(key: PublicKeyTypes, use: Use) -> bool:
    """Does ``use`` accept ``key`` (kind, curve, size)?"""
    try:
        check_public(key, "key", use)
    except KeyLoadError:
        return False
    return kind_of(key) in ACCEPTED_KEYS[use]


def _pss(*, any_salt: bool = False) -> padding.PSS:
    # We sign with a salt of the digest's length and take exactly that back; other
    # producers' key bundles may use any salt length.
    salt = padding.PSS.AUTO if any_salt else padding.PSS.DIGEST_LENGTH
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)


def sign(key: SupportedPrivateKey, data: bytes) -> bytes:
    """Sign ``data`` as this registry says keys of this kind sign."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(curve_of(key).hash()))
    return key.sign(data, _pss(), hashes.SHA256())


def _ecdsa_hashes(key: ec.EllipticCurvePublicKey, use: Use) -> list[hashes.HashAlgorithm]:
    own = curve_of(key).hash()
    if use in ECDSA_SHA256_ANY_CURVE and not isinstance(own, hashes.SHA256):
        return [own, hashes.SHA256()]
    return [own]


def _rsa_paddings(use: Use) -> list[padding.AsymmetricPadding]:
    if use in RSA_ANY_PADDING:
        return [padding.PKCS1v15(), _pss(any_salt=True)]
    return [_pss()]


def verify(
    key: PublicKeyTypes, signature: bytes, data: bytes, use: Use, *, prehashed: bool = False
) -> bool:
    """Does ``signature`` verify over ``data`` (or, ``prehashed``, the sha256 digest ``data``)?"""
    if not accepts(key, use):
        return False
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            if prehashed:
                return False  # Ed25519 signs messages, never digests
            key.verify(signature, data)
            return True
        if isinstance(key, ec.EllipticCurvePublicKey):
            if prehashed:
                return _verified(key, signature, data, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
            return any(
                _verified(key, signature, data, ec.ECDSA(h)) for h in _ecdsa_hashes(key, use)
            )
        assert isinstance(key, rsa.RSAPublicKey)
        algorithm: hashes.HashAlgorithm | utils.Prehashed = (
            utils.Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
        )
        return any(_rsa_verified(key, signature, data, p, algorithm) for p in _rsa_paddings(use))
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        return False


def _verified(
    key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes, algorithm: ec.ECDSA
) -> bool:
    try:
        key.verify(signature, data, algorithm)
    except (InvalidSignature, ValueError):
        return False
    return True


def _rsa_verified(
    key: rsa.RSAPublicKey,
    signature: bytes,
    data: bytes,
    pad: padding.AsymmetricPadding,
    algorithm: hashes.HashAlgorithm | utils.Prehashed,
) -> bool:
    try:
        key.verify(signature, data, pad, algorithm)
    except (InvalidSignature, ValueError):
        return False
    return True


def key_details(key: SupportedPublicKey) -> str:
    """Sigstore's ``PublicKeyDetails`` name for ``key``."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "PKIX_ED25519"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return curve_of(key).key_details
    return f"PKIX_RSA_PSS_{key.key_size}_SHA256"


def algorithm_name(key: SupportedPublicKey) -> str:
    """A short name of ``key``'s signature scheme, as reports print it."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ecdsa-{key.curve.name}"
    return f"rsa-{key.key_size}-pss-sha256"
