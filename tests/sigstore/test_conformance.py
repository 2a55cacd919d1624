"""The 70 sigstore-conformance ``bundle-verify`` vectors through ``mlspec-attest bundle verify``.

The vectors are committed in tests/assets/sigstore/conformance/bundle-verify (see
tests/assets/README.md for their source). Layout, as in sigstore-conformance: one folder
per vector with ``bundle.sigstore.json``; optional ``artifact`` (default ``a.txt``
beside the folders), ``identity``/``issuer`` (defaults below), ``key.pub`` (verify
with the key instead of an identity) and ``trusted_root.json`` (default: the
production root embedded in sigstore 4.5.1). A folder ending ``_fail`` must fail.

sigstore-python 4.5.1 agrees on 66; mlspec-attest must never pass a ``_fail``
vector, must agree on at least as many, and agrees on all 70 (managed-key bundles,
Rekor intoto entries and the inclusive TSA validity end are handled in
``mlspec_attest/signing/sigstore/_compat.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..support import asset
from .conftest import Cli, CliResult
from .reasons import CONFORMANCE_FAIL, assert_fails_for

CONFORMANCE = asset("sigstore/conformance/bundle-verify")
DEFAULT_ROOT = asset("sigstore/trust/sigstore-4.5.1-embedded/production/trusted_root.json")
DEFAULT_IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
DEFAULT_ISSUER = "https://token.actions.githubusercontent.com"
SIGSTORE_PYTHON_SCORE = 66

VECTORS = sorted(p.name for p in CONFORMANCE.iterdir() if p.is_dir())
# exit code of every vector run so far in this session (the summary reuses them)
RESULTS: dict[str, int] = {}


def vector_args(name: str) -> list[str | Path]:
    folder = CONFORMANCE / name
    artifact = folder / "artifact" if (folder / "artifact").exists() else CONFORMANCE / "a.txt"
    root = folder / "trusted_root.json"
    args: list[str | Path] = [
        "bundle",
        "verify",
        folder / "bundle.sigstore.json",
        "--artifact",
        artifact,
        "--trusted-root",
        root if root.exists() else DEFAULT_ROOT,
        "--json",
    ]
    if (folder / "key.pub").exists():
        return [*args, "--key", folder / "key.pub"]
    identity = folder / "identity"
    issuer = folder / "issuer"
    return [
        *args,
        "--identity",
        identity.read_text().strip() if identity.exists() else DEFAULT_IDENTITY,
        "--issuer",
        issuer.read_text().strip() if issuer.exists() else DEFAULT_ISSUER,
    ]


def run_vector(cli: Cli, name: str) -> CliResult:
    result = cli(*vector_args(name))
    assert result.clean, result.err
    RESULTS[name] = result.code
    return result


def test_all_seventy_vectors_present() -> None:
    assert len(VECTORS) == 70
    assert sum(v.endswith("_fail") for v in VECTORS) > 30
    assert set(CONFORMANCE_FAIL) == {v for v in VECTORS if v.endswith("_fail")}


@pytest.mark.parametrize("name", VECTORS)
def test_vector(cli: Cli, name: str) -> None:
    result = run_vector(cli, name)
    if name.endswith("_fail"):
        # Denied (1) or malformed (3), for the reason the vector is about.
        assert_fails_for(result, CONFORMANCE_FAIL[name], name)
    else:
        assert result.code == 0, f"{name} must verify, exit {result.code}"


def test_agreement_score(cli: Cli) -> None:
    for name in VECTORS:
        if name not in RESULTS:
            run_vector(cli, name)
    passed_fail = [n for n in VECTORS if n.endswith("_fail") and RESULTS[n] == 0]
    assert passed_fail == [], f"_fail vectors passed: {passed_fail}"
    disagree = [n for n in VECTORS if (RESULTS[n] == 0) == n.endswith("_fail")]
    agreements = len(VECTORS) - len(disagree)
    assert agreements >= SIGSTORE_PYTHON_SCORE, f"{agreements}/70; disagree: {disagree}"
    assert agreements == 70, f"{agreements}/70; disagree: {disagree}"
