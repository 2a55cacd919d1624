"""interop/oms/trust.py, exactly: which trust a model check's options name, and how a
certificate file is read (mutation testing, docs/testing.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlspec_attest.errors import KeyLoadError, UsageError
from mlspec_attest.formats.limits import MAX_CERTIFICATES_BYTES
from mlspec_attest.interop.oms.trust import CertificateTrust, SigstoreTrust, trust_from_options

EXACTLY_ONE = (
    "name exactly one trust: public_key, certificate_chain, or trust_config with identity "
    "and issuer"
)


def test_no_trust_at_all_names_the_choices_and_nothing_given() -> None:
    with pytest.raises(UsageError) as info:
        trust_from_options(None, (), None, None, None)
    assert info.value.message == EXACTLY_ONE


def test_two_trusts_name_what_was_given(tmp_path: Path) -> None:
    key, config = tmp_path / "k.pub", tmp_path / "trust.json"
    with pytest.raises(UsageError) as info:
        trust_from_options(key, (), config, "me@example.com", "https://issuer")
    assert info.value.message == EXACTLY_ONE + " (got public_key, trust_config)"
    with pytest.raises(UsageError) as three:
        trust_from_options(key, (tmp_path / "ca.pem",), config, None, None)
    assert three.value.message == (
        EXACTLY_ONE + " (got public_key, certificate_chain, trust_config)"
    )


def test_an_identity_without_a_trust_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        trust_from_options(tmp_path / "k.pub", (), None, "me@example.com", None)
    assert info.value.message == "identity and issuer go with trust_config (Sigstore)"


@pytest.mark.parametrize(
    ("identity", "issuer"), [("me@example.com", None), (None, "https://issuer"), (None, None)]
)
def test_sigstore_needs_both_identity_and_issuer(
    tmp_path: Path, identity: str | None, issuer: str | None
) -> None:
    with pytest.raises(UsageError) as info:
        trust_from_options(None, (), tmp_path / "trust.json", identity, issuer)
    assert info.value.message == "Sigstore verification needs identity and issuer"


def test_sigstore_trust_with_both() -> None:
    trust = trust_from_options(None, (), Path("trust.json"), "me@example.com", "https://i")
    assert trust == SigstoreTrust(Path("trust.json"), "me@example.com", "https://i")


def test_an_oversize_certificate_file_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.pem"
    big.write_bytes(b"-" * (MAX_CERTIFICATES_BYTES + 1))
    with pytest.raises(KeyLoadError) as info:
        CertificateTrust.from_files([big])
    assert info.value.message == (
        f"certificate file {big}: larger than 1 MiB, the limit for a certificate file"
    )
