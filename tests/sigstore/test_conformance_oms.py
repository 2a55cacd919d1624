"""The sigstore-conformance ``_fail`` vectors through the OpenSSF model-signing path.

``model verify --trust-config`` verifies Sigstore signatures with the one Sigstore
verifier (``verify_bundle``), so it must refuse every vector ``bundle verify`` refuses,
with the same verdict (denied, exit 1; malformed, exit 3) and the same reason. Each
vector runs through :func:`check_model` (the library behind ``model verify``) on a
small model folder, and through ``bundle verify`` (tests/sigstore/test_conformance.py).

A message signature is never a model signature, yet the OMS path verifies it first
(over the digest the bundle claims) so a broken one is refused for what is broken in
it. Only the two vectors whose defect *is* the artifact cannot fail for the same words:
the OMS path has no artifact beside the bundle. ``message-digest-mismatch`` claims a
digest its signature does not cover (denied all the same, exit 1); ``wrong-material``
is a sound bundle for another file, refused as what it is: no model signature (exit 3).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlspec_attest.errors import MlspecError
from mlspec_attest.interop.oms.signature import KeyTrust, SigstoreTrust, check_model

from .conftest import Cli
from .reasons import CONFORMANCE_FAIL, reason_of
from .test_conformance import (
    CONFORMANCE,
    DEFAULT_IDENTITY,
    DEFAULT_ISSUER,
    DEFAULT_ROOT,
    run_vector,
)

FAIL_VECTORS = sorted(CONFORMANCE_FAIL)
# Their defect is the artifact (a.txt), which a model signature's check never sees:
# (exit code, words of the reason) on the OMS path.
ARTIFACT_DEFECTS = {
    "message-digest-mismatch_fail": (1, "Signature is invalid for input"),
    "wrong-material_fail": (3, "bundle carries no DSSE envelope"),
}


def oms_outcome(name: str, model: Path) -> tuple[int, str]:
    """(exit code, reason) of the OMS path: 1 and the problem for a denial, else the error's."""
    folder = CONFORMANCE / name
    root = folder / "trusted_root.json"
    try:
        if (folder / "key.pub").exists():
            trust: KeyTrust | SigstoreTrust = KeyTrust.from_file(folder / "key.pub")
        else:
            identity = folder / "identity"
            issuer = folder / "issuer"
            trust = SigstoreTrust(
                root if root.exists() else DEFAULT_ROOT,
                identity.read_text().strip() if identity.exists() else DEFAULT_IDENTITY,
                issuer.read_text().strip() if issuer.exists() else DEFAULT_ISSUER,
            )
        report = check_model(model, folder / "bundle.sigstore.json", trust)
    except MlspecError as exc:
        return int(exc.exit_code), exc.message
    assert not report.passed, f"{name}: the OMS path passed a _fail vector"
    return 1, "; ".join(p.message for p in report.problems)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    (folder / "weights.bin").write_bytes(b"w")
    return folder


@pytest.mark.parametrize("name", FAIL_VECTORS)
def test_oms_refuses_like_bundle_verify(cli: Cli, model: Path, name: str) -> None:
    code, reason = oms_outcome(name, model)
    cli_result = run_vector(cli, name)
    if name in ARTIFACT_DEFECTS:
        oms_code, oms_words = ARTIFACT_DEFECTS[name]
        assert (code, oms_words in reason) == (oms_code, True), (name, code, reason)
        assert cli_result.code == 1
        return
    expected_code, words = CONFORMANCE_FAIL[name]
    assert (code, words in reason) == (expected_code, True), (name, code, reason)
    assert (cli_result.code, words in reason_of(cli_result)) == (code, True)


def test_only_artifact_defects_differ() -> None:
    """The exceptions are few and named: every other vector gives bundle verify's reason."""
    assert set(ARTIFACT_DEFECTS) <= set(FAIL_VECTORS)
    assert len(ARTIFACT_DEFECTS) <= 2
