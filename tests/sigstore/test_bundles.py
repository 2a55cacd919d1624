"""Real Sigstore bundles (tests/assets/sigstore/bundles) through ``bundle verify``.

As tests/assets/README.md says: the valid staging and production bundles verify
offline with their instance's trust root and identity; the TSA bundle verifies
with its trust config while the duplicate, too-many and late timestamps fail;
every invalid bundle fails; a bundle checked against the other instance's root,
with a wrong identity or a wrong issuer fails.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mlspec_attest.errors import MalformedDocumentError, SigstoreVerificationError, UsageError
from mlspec_attest.signing.keys import generate_key
from mlspec_attest.signing.sigstore.identity import IdentityMismatchError, SigstoreIdentity
from mlspec_attest.signing.sigstore.trust_root import TrustRoot
from mlspec_attest.signing.sigstore.verify import sha256_file, verify_bundle

from ..support import asset
from .conftest import Cli
from .reasons import (
    CHAIN,
    DIGEST_MISMATCH,
    IDENTITY_MISMATCH,
    INVALID,
    NO_TIME,
    TSA_FAIL,
    assert_fails_for,
)

SIGSTORE = asset("sigstore")
BUNDLES = SIGSTORE / "bundles"
ROOTS = SIGSTORE / "trust" / "sigstore-4.5.1-embedded"
PRODUCTION = ROOTS / "production" / "trusted_root.json"
STAGING = ROOTS / "staging" / "trusted_root.json"
GITHUB_OAUTH = "https://github.com/login/oauth"
GOOGLE = "https://accounts.google.com"
ACTIONS = "https://token.actions.githubusercontent.com"
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
RFC8785_RELEASE = (
    "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
)
CONFORMANCE = SIGSTORE / "conformance" / "bundle-verify"

# The DSSE statement in a.dsse.staging-rekor-v2.txt.sigstore.json attests the conformance
# suite's a.txt (its only subject), not the file stored beside it.
A_TXT = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
# (bundle, artifact | sha256 file | sha256:HEX, trust root, identity, issuer)
VALID = [
    ("valid-staging/bundle.txt.sigstore", "valid-staging/bundle.txt", STAGING, "a@tny.town", GITHUB_OAUTH),
    ("valid-staging/bundle_v3.txt.sigstore", "valid-staging/bundle_v3.txt", STAGING, "william@yossarian.net", GITHUB_OAUTH),
    ("valid-staging/bundle_v3_alt.txt.sigstore", "valid-staging/bundle_v3_alt.txt", STAGING, "william@yossarian.net", GITHUB_OAUTH),
    ("valid-staging/staging-rekor-v2.txt.sigstore.json", "valid-staging/staging-rekor-v2.txt", STAGING, "jku@goto.fi", GITHUB_OAUTH),
    ("valid-staging/a.dsse.staging-rekor-v2.txt.sigstore.json", A_TXT, STAGING, BEACON, ACTIONS),
    ("valid-production/bundle_v3_github.whl.sigstore", "valid-production/bundle_v3_github.whl.sha256", PRODUCTION, RFC8785_RELEASE, ACTIONS),
    ("tsa/bundle.txt.sigstore", "tsa/bundle.txt", BUNDLES / "tsa" / "trust_config.json", "alexis.challande@trailofbits.com", GOOGLE),
]  # fmt: skip
# TSA_FAIL and INVALID (with the reason each fails for): see reasons.py


def args_for(
    bundle: str, artifact: str, root: Path, identity: str, issuer: str
) -> list[str | Path]:
    what: list[str | Path]
    if artifact.startswith("sha256:"):
        what = ["--digest", artifact]
    elif artifact.endswith(".sha256"):
        what = ["--digest", "sha256:" + (BUNDLES / artifact).read_text().split()[0]]
    else:
        what = ["--artifact", BUNDLES / artifact]
    trust = "--trust-config" if "trust_config" in root.name else "--trusted-root"
    return [
        "bundle",
        "verify",
        BUNDLES / bundle,
        *what,
        trust,
        root,
        "--identity",
        identity,
        "--issuer",
        issuer,
        "--json",
    ]


@pytest.mark.parametrize(("bundle", "artifact", "root", "identity", "issuer"), VALID)
def test_valid_bundles_verify(
    cli: Cli, bundle: str, artifact: str, root: Path, identity: str, issuer: str
) -> None:
    result = cli(*args_for(bundle, artifact, root, identity, issuer))
    assert result.code == 0, result.out + result.err
    doc = result.json()
    assert doc["result"] == "PASSED"
    assert doc["method"] == "sigstore"
    assert doc["signer"]["identity"] == identity
    assert doc["signedTimes"]


@pytest.mark.parametrize(("bundle", "artifact", "root", "identity", "issuer"), VALID)
def test_wrong_instance_identity_or_issuer_fails(
    cli: Cli, bundle: str, artifact: str, root: Path, identity: str, issuer: str
) -> None:
    other_root = STAGING if root == PRODUCTION else PRODUCTION  # the TSA bundle is staging's
    # another instance: its chain does not verify (Rekor v2 bundles: nor their TSA time)
    elsewhere = NO_TIME if "rekor-v2" in bundle else CHAIN
    for case, why in (
        ((bundle, artifact, other_root, identity, issuer), elsewhere),
        ((bundle, artifact, root, "mallory@example.com", issuer), IDENTITY_MISMATCH),
        ((bundle, artifact, root, identity, "https://issuer.example.com"), IDENTITY_MISMATCH),
    ):
        result = cli(*args_for(*case))
        assert_fails_for(result, (1, why), case)


def test_wrong_artifact_fails(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text("not what was signed\n")
    for bundle, _, root, identity, issuer in VALID:
        # a DSSE bundle names its artifact in the statement; a message signature signs it
        why = (
            "the in-toto statement has no subject with sha256"
            if ".dsse." in bundle
            else DIGEST_MISMATCH
        )
        result = cli(*args_for(bundle, str(other), root, identity, issuer))
        assert_fails_for(result, (1, why), bundle)
        result = cli(*args_for(bundle, "sha256:" + "ab" * 32, root, identity, issuer))
        assert_fails_for(result, (1, why), bundle)


@pytest.mark.parametrize("bundle", sorted(TSA_FAIL))
def test_bad_timestamps_fail(cli: Cli, bundle: str) -> None:
    root = BUNDLES / "tsa" / "trust_config.json"
    result = cli(
        *args_for(bundle, "tsa/bundle.txt", root, "alexis.challande@trailofbits.com", GOOGLE)
    )
    assert_fails_for(result, TSA_FAIL[bundle], bundle)
    assert result.clean


@pytest.mark.parametrize("bundle", sorted({b for b, _ in INVALID}))
@pytest.mark.parametrize("root", [PRODUCTION, STAGING], ids=["production", "staging"])
def test_invalid_bundles_fail(cli: Cli, bundle: str, root: Path) -> None:
    artifact = BUNDLES / bundle.split(".sigstore")[0]
    what: list[str | Path] = (
        ["--artifact", artifact] if artifact.exists() else ["--digest", "sha256:" + "0" * 64]
    )
    result = cli("bundle", "verify", BUNDLES / bundle, *what, "--trusted-root", root,
                 "--identity-regex", ".*", "--issuer", GITHUB_OAUTH, "--json")  # fmt: skip
    assert_fails_for(
        result, INVALID[bundle, "production" if root == PRODUCTION else "staging"], bundle
    )
    assert result.clean


def test_every_failing_fixture_has_its_reason() -> None:
    invalid = {p.relative_to(BUNDLES).as_posix() for p in (BUNDLES / "invalid").glob("*.sigstore*")}
    assert {b for b, _ in INVALID} == invalid
    assert set(TSA_FAIL) <= {p.relative_to(BUNDLES).as_posix() for p in (BUNDLES / "tsa").iterdir()}


def test_exit_codes_and_usage(cli: Cli, tmp_path: Path) -> None:
    bundle, artifact, root, identity, issuer = VALID[1]
    base = args_for(bundle, artifact, root, identity, issuer)
    # a keyless bundle needs an identity policy: no silent "any signer"
    no_identity = [a for a in base if a not in ("--identity", identity, "--issuer", issuer)]
    assert cli(*no_identity).code == 2
    # malformed bundle: exit 3
    broken = tmp_path / "broken.sigstore.json"
    broken.write_text('{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", ')
    assert cli(*[broken if a == base[2] else a for a in base]).code == 3
    # duplicate keys are refused (strict JSON), even when sigstore would take the last one
    doc = (BUNDLES / bundle).read_text()
    duplicated = tmp_path / "dup.sigstore.json"
    duplicated.write_text(doc.replace("{", '{"mediaType": "x", ', 1))
    assert cli(*[duplicated if a == base[2] else a for a in base]).code == 3
    # malformed trust root: exit 3
    bad_root = tmp_path / "root.json"
    bad_root.write_text(json.dumps({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": "no"}))  # fmt: skip
    assert cli(*[bad_root if a == root else a for a in base]).code == 3
    # no trust at all: usage
    assert cli("bundle", "verify", BUNDLES / bundle, "--artifact", BUNDLES / artifact).code == 2


def test_identity_regex_is_anchored() -> None:
    rule = SigstoreIdentity("https://issuer", identity_regex=r"alice@example\.com")
    from mlspec_attest.signing.sigstore.identity import CertificateIdentity

    assert rule.matches(CertificateIdentity(("alice@example.com",), "https://issuer"))
    assert not rule.matches(CertificateIdentity(("alice@example.com.evil",), "https://issuer"))
    assert not rule.matches(CertificateIdentity(("xalice@example.com",), "https://issuer"))
    assert not rule.matches(CertificateIdentity(("alice@example.com",), "https://other"))
    with pytest.raises(ValueError, match="identityRegex"):
        SigstoreIdentity("https://issuer", identity_regex="(")
    with pytest.raises(ValueError, match="exactly one"):
        SigstoreIdentity("https://issuer", identity="a", identity_regex="b")


def test_library_errors_carry_the_identity_found() -> None:
    bundle, artifact, root, identity, issuer = VALID[1]
    doc = json.loads((BUNDLES / bundle).read_text())
    with pytest.raises(IdentityMismatchError) as info:
        verify_bundle(
            doc,
            trust=TrustRoot.from_file(root),
            identities=[SigstoreIdentity(issuer, identity="someone@else")],
            artifact_sha256=sha256_file(BUNDLES / artifact),
        )
    assert info.value.found.sans == (identity,)
    assert info.value.found.issuer == issuer
    assert info.value.exit_code == 1


# --- managed keys and our own key bundles -----------------------------------------------------


def test_managed_key_bundle_checks_its_log_entry() -> None:
    """The key verifies the signature; the trust root verifies the Rekor entry and its time."""
    from mlspec_attest.signing.keys import load_public_key

    folder = CONFORMANCE / "managed-key-happy-path"
    doc = json.loads((folder / "bundle.sigstore.json").read_text())
    key = load_public_key(folder / "key.pub")
    digest = sha256_file(CONFORMANCE / "a.txt")
    verified = verify_bundle(
        doc, trust=TrustRoot.from_file(PRODUCTION), key=key, artifact_sha256=digest
    )
    assert verified.method == "key"
    assert {t.source for t in verified.times} == {"transparency-log", "timestamp-authority"}
    # the same bundle against the staging root: its log key is unknown there
    with pytest.raises(SigstoreVerificationError):
        verify_bundle(doc, trust=TrustRoot.from_file(STAGING), key=key, artifact_sha256=digest)
    # a log entry that records another artifact: the body check catches it
    tampered = json.loads(json.dumps(doc))
    entry = tampered["verificationMaterial"]["tlogEntries"][0]
    import base64

    body = json.loads(base64.b64decode(entry["canonicalizedBody"]))
    body["spec"]["data"]["hash"]["value"] = "0" * 64
    entry["canonicalizedBody"] = base64.b64encode(json.dumps(body).encode()).decode()
    with pytest.raises(SigstoreVerificationError):
        verify_bundle(
            tampered, trust=TrustRoot.from_file(PRODUCTION), key=key, artifact_sha256=digest
        )
    # without a trust root, the signature alone is checked and the entry is reported unchecked
    alone = verify_bundle(doc, trust=None, key=key, artifact_sha256=digest)
    assert alone.notes and "not checked" in alone.notes[0]
    # a keyless check of a key bundle: denied, not passed
    with pytest.raises(SigstoreVerificationError):
        verify_bundle(doc, trust=TrustRoot.from_file(PRODUCTION), identities=[SigstoreIdentity("i", identity="x")], artifact_sha256=digest)  # fmt: skip


def test_local_key_bundles_verify_with_bundle_verify(cli: Cli, tmp_path: Path) -> None:
    """Bundles from `mlspec-attest sign --key` verify with --key alone (no sigstore needed)."""
    from mlspec_attest.formats.bundle import sign_to_bundle
    from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
    from mlspec_attest.signing.keys import KeyType, write_key_pair

    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights")
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model.bin", "digest": {"sha256": hashlib.sha256(b"weights").hexdigest()}}],
        "predicateType": "https://in-toto.io/attestation/link/v0.3",
        "predicate": {"name": "train"},
    }  # fmt: skip
    for key_type in KeyType:
        signer = generate_key(key_type)
        _, pub = write_key_pair(signer, tmp_path / key_type.value)
        bundle, _ = sign_to_bundle(json.dumps(statement).encode(), INTOTO_PAYLOAD_TYPE, signer)
        path = tmp_path / f"{key_type.value}.sigstore.json"
        path.write_text(json.dumps(bundle.to_json()))
        ok = cli("bundle", "verify", path, "--artifact", artifact, "--key", pub, "--json")
        assert ok.code == 0, (key_type, ok.out, ok.err)
        assert ok.json()["signer"]["keyid"] == signer.public_key.keyid
        other = generate_key(key_type)
        _, other_pub = write_key_pair(other, tmp_path / f"other-{key_type.value}")
        denied = cli("bundle", "verify", path, "--artifact", artifact, "--key", other_pub, "--json")
        assert_fails_for(denied, (1, "the DSSE signature does not verify under key"), key_type)
        wrong = tmp_path / "wrong.bin"
        wrong.write_bytes(b"other")
        denied = cli("bundle", "verify", path, "--artifact", wrong, "--key", pub, "--json")
        assert_fails_for(denied, (1, "the in-toto statement has no subject with sha256"), key_type)


def test_usage_errors_from_the_library() -> None:
    doc = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": {}}
    with pytest.raises(UsageError):
        verify_bundle(doc, trust=None, artifact_sha256="xyz")
    with pytest.raises(MalformedDocumentError):
        verify_bundle(doc, trust=None)
    with pytest.raises(MalformedDocumentError):
        TrustRoot.from_json({"mediaType": "something/else"}, source="test")


def test_unlogged_key_bundle_with_a_trust_root_is_denied(cli: Cli, tmp_path: Path) -> None:
    from mlspec_attest.formats.bundle import sign_to_bundle
    from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
    from mlspec_attest.signing.keys import KeyType, write_key_pair

    signer = generate_key(KeyType.ECDSA_P256)
    _, pub = write_key_pair(signer, tmp_path / "k")
    statement = {"_type": "https://in-toto.io/Statement/v1", "predicateType": "x", "predicate": {},
                 "subject": [{"name": "a", "digest": {"sha256": "ab" * 32}}]}  # fmt: skip
    bundle, _ = sign_to_bundle(json.dumps(statement).encode(), INTOTO_PAYLOAD_TYPE, signer)
    path = tmp_path / "b.sigstore.json"
    path.write_text(json.dumps(bundle.to_json()))
    args = ["bundle", "verify", path, "--digest", "sha256:" + "ab" * 32, "--key", pub]
    assert cli(*args).code == 0
    denied = cli(*args, "--trusted-root", PRODUCTION)
    assert denied.code == 1
    assert "no transparency-log entry" in denied.out
