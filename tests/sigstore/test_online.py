"""Against public Sigstore (network): run only with MLSPEC_ATTEST_ONLINE=1.

* the production trust root refreshed over TUF still verifies a real production bundle;
* keyless signing on the public staging instance, when the environment provides an
  OIDC token (SIGSTORE_ID_TOKEN, or ambient CI credentials such as GitHub Actions
  with ``id-token: write``), then offline verification of what was signed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlspec_attest.formats.bundle import sign_to_bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.signing.sigstore.identity import SigstoreIdentity
from mlspec_attest.signing.sigstore.trust_root import TrustRoot
from mlspec_attest.signing.sigstore.verify import verify_bundle

from ..support import asset

pytestmark = [
    pytest.mark.online,
    pytest.mark.skipif(
        not os.environ.get("MLSPEC_ATTEST_ONLINE"),
        reason="online test against public Sigstore: set MLSPEC_ATTEST_ONLINE=1 to run",
    ),
]

PRODUCTION_BUNDLE = asset("sigstore/bundles/valid-production")


def test_refreshed_production_root_verifies_a_production_bundle() -> None:
    trust = TrustRoot.refreshed("production")
    assert "refreshed over TUF" in trust.source
    doc = json.loads((PRODUCTION_BUNDLE / "bundle_v3_github.whl.sigstore").read_text())
    digest = (PRODUCTION_BUNDLE / "bundle_v3_github.whl.sha256").read_text().split()[0]
    verified = verify_bundle(
        doc,
        trust=trust,
        identities=[
            SigstoreIdentity(
                "https://token.actions.githubusercontent.com",
                identity="https://github.com/trailofbits/rfc8785.py/.github/workflows/"
                "release.yml@refs/tags/v0.1.2",
            )
        ],
        artifact_sha256=digest,
    )
    assert verified.method == "sigstore"


def test_keyless_signing_on_public_staging(tmp_path: Path) -> None:
    from mlspec_attest.errors import UsageError
    from mlspec_attest.signing.sigstore.sign import SigstoreSigner

    try:
        signer = SigstoreSigner.create(staging=True)
    except UsageError:
        pytest.skip("no OIDC identity token in this environment")
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "x", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://in-toto.io/attestation/link/v0.3",
        "predicate": {"name": "online-test"},
    }
    bundle, keyid = sign_to_bundle(json.dumps(statement).encode(), INTOTO_PAYLOAD_TYPE, signer)
    assert bundle.is_keyless and keyid == signer.keyid
    assert signer.signed_as is not None
    verified = verify_bundle(
        bundle.to_json(),
        trust=signer.trust_root(),
        identities=[
            SigstoreIdentity(signer.signed_as.issuer or "", identity=signer.signed_as.primary)
        ],
        artifact_sha256="ab" * 32,
    )
    assert verified.identity == signer.signed_as
