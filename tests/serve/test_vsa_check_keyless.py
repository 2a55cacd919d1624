"""A keyless verification summary: signed by a Sigstore identity on the loopback instance
(tests/sigstore/instance.py: real Fulcio certificates and Rekor entries on 127.0.0.1),
checked by the gate against that identity and the instance's trust root.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlspec_attest.errors import GateDeniedError
from mlspec_attest.formats.bundle import sign_to_bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.serve.gate import open_model
from mlspec_attest.serve.vsa_check import VerifierTrust, check_summary
from mlspec_attest.signing.sigstore.identity import SigstoreIdentity
from mlspec_attest.signing.sigstore.sign import SigstoreSigner
from mlspec_attest.signing.sigstore.trust_root import TrustRoot

from ..cli.conftest import Cli, cli  # noqa: F401 - the in-process CLI fixture
from ..sigstore.instance import (  # noqa: F401 - fixtures
    OIDC_ISSUER,
    SigstoreInstance,
    sigstore_instance,
    sigstore_instance_factory,
)
from .test_gate_support import iris_rows, make_model_dir, summary_for, verifier, write_keys

VERIFIER = "verifier@example.com"


@pytest.fixture
def keyless(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, Path, SigstoreInstance]:
    """A model and its summary, signed keyless as VERIFIER."""
    instance: SigstoreInstance = request.getfixturevalue("sigstore_instance")
    model = make_model_dir(tmp_path / "iris")
    signer = SigstoreSigner.create(
        identity_token=instance.token(VERIFIER), trust_config=instance.trust_config_path
    )
    summary = summary_for(model, time_verified=datetime.now(UTC))
    bundle, _ = sign_to_bundle(summary.to_payload(), INTOTO_PAYLOAD_TYPE, signer)
    vsa = tmp_path / "iris.vsa.sigstore.json"
    vsa.write_text(json.dumps(bundle.to_json()))
    return model, vsa, instance


def trust_of(instance: SigstoreInstance, identity: str = VERIFIER) -> VerifierTrust:
    return VerifierTrust(
        identities=(SigstoreIdentity(OIDC_ISSUER, identity=identity),),
        trust_root=TrustRoot.from_file(instance.trust_config_path),
    )


def test_a_keyless_summary_by_the_trusted_identity_opens_the_model(
    keyless: tuple[Path, Path, SigstoreInstance],
) -> None:
    model, vsa, instance = keyless
    checked = check_summary(vsa, trust_of(instance))
    assert checked.signer == f"{VERIFIER} (issuer {OIDC_ISSUER})"
    served = open_model(model, checked)
    assert served.predictor.predict(iris_rows()) == [0, 1, 2]


def test_another_identity_is_denied(keyless: tuple[Path, Path, SigstoreInstance]) -> None:
    _, vsa, instance = keyless
    with pytest.raises(GateDeniedError) as info:
        check_summary(vsa, trust_of(instance, "mallory@example.com"))
    [reason] = info.value.reasons  # type: ignore[misc]
    assert reason.check.value == "signature"
    assert "does not verify" in reason.message


def test_the_command_takes_a_verifier_identity_and_a_trust_config(
    keyless: tuple[Path, Path, SigstoreInstance],
    cli: Cli,  # noqa: F811
) -> None:
    model, vsa, instance = keyless
    base = ["gate", "--vsa", vsa, "--model", model, "--verifier-issuer", OIDC_ISSUER, "--json"]
    result = cli(
        *base, "--verifier-identity", VERIFIER, "--trust-config", instance.trust_config_path
    )
    assert result.code == 0, result.err
    assert VERIFIER in result.json()["vsa"]["signer"]
    # Without a trust root the keyless summary cannot be checked: exit 4, not a denial.
    result = cli(*base, "--verifier-identity", VERIFIER)
    assert result.code == 4
    assert "no Sigstore trust root" in result.json()["error"]["message"]
    # Trusting only a key: a certificate is not that key.
    pub = write_keys(verifier(), model.parent / "keys", "verifier")[1]
    result = cli("gate", "--vsa", vsa, "--model", model, "--verifier-key", pub, "--json")
    assert result.code == 1
    assert result.json()["reasons"][0]["found"] == "a Sigstore certificate"
