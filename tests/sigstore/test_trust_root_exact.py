"""The Sigstore trust-root loader, exactly: what mutation testing found unpinned.

The signer's ClientTrustConfig (:func:`load_signing_config`): a file that is not
one is refused with its own message and remedy; without a file, production (or
staging) comes over TUF, and a TUF failure names the instance. The network is
faked at its edge, ``ClientTrustConfig.from_tuf`` (the one call that fetches),
so sigstore-python's ``production()``/``staging()`` run unchanged. A missing
sigstore-python is simulated as tests/cli/test_missing_packages.py does
(``sys.modules[name] = None``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import sigstore.errors
import sigstore.models

from mlspec_attest.errors import BackendError, MalformedDocumentError
from mlspec_attest.signing.sigstore.trust_root import (
    CLIENT_TRUST_CONFIG_MEDIA_TYPE,
    INSTANCES,
    TRUSTED_ROOT_MEDIA_TYPE,
    TrustRoot,
    load_signing_config,
    load_trusted_root,
    trust_root_of,
)

from ..support import asset

CONFIG = asset("sigstore/trust/sigstore-4.5.1-embedded/production/client_trust_config.json")
ROOT = asset("sigstore/trust/sigstore-4.5.1-embedded/staging/trusted_root.json")
NOT_A_CONFIG_REMEDY = (
    f"pass the ClientTrustConfig JSON of the instance (mediaType {CLIENT_TRUST_CONFIG_MEDIA_TYPE})"
)


def _write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "trust_config.json"
    path.write_text(json.dumps(doc))
    return path


def test_a_trust_config_of_another_media_type_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, {"mediaType": TRUSTED_ROOT_MEDIA_TYPE})
    with pytest.raises(MalformedDocumentError) as caught:
        load_signing_config(path)
    assert str(caught.value) == (
        f"trust config {path}: not a Sigstore ClientTrustConfig "
        f"(mediaType {TRUSTED_ROOT_MEDIA_TYPE!r})"
    )
    assert caught.value.remedy == NOT_A_CONFIG_REMEDY


def test_a_trust_config_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, [CLIENT_TRUST_CONFIG_MEDIA_TYPE])
    with pytest.raises(MalformedDocumentError) as caught:
        load_signing_config(path)
    assert str(caught.value) == (
        f"trust config {path}: not a Sigstore ClientTrustConfig (mediaType None)"
    )
    assert caught.value.remedy == NOT_A_CONFIG_REMEDY


def test_the_trusted_root_of_a_signing_config_keeps_its_source() -> None:
    config = load_signing_config(CONFIG)
    root = trust_root_of(config, source=f"trust config {CONFIG}")
    assert root.source == f"trust config {CONFIG}"
    assert root.describe() == {"source": f"trust config {CONFIG}", "digest": root.digest}
    assert root.document["mediaType"] == TRUSTED_ROOT_MEDIA_TYPE


@pytest.fixture
def tuf(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The TUF repositories asked for; each fetch fails as an unreachable network does."""
    asked: list[str] = []

    def from_tuf(cls: type, url: str, offline: bool = False) -> Any:
        asked.append(url)
        raise sigstore.errors.Error(f"cannot reach {url}")

    monkeypatch.setattr(sigstore.models.ClientTrustConfig, "from_tuf", classmethod(from_tuf))
    return asked


@pytest.mark.parametrize(
    ("kwargs", "instance"),
    [({}, "production"), ({"staging": False}, "production"), ({"staging": True}, "staging")],
    ids=["default", "production", "staging"],
)
def test_without_a_file_the_instance_comes_over_tuf(
    tuf: list[str], kwargs: dict[str, bool], instance: str
) -> None:
    with pytest.raises(BackendError) as caught:
        load_signing_config(None, **kwargs)
    assert tuf == [INSTANCES[instance]]
    assert str(caught.value) == (
        f"cannot load the Sigstore {instance} configuration over TUF: "
        f"cannot reach {INSTANCES[instance]}"
    )
    remedy = caught.value.remedy
    assert remedy is not None
    assert remedy.startswith("check the network, or pass ")
    assert remedy.endswith(" FILE for a private instance")


@pytest.fixture
def no_sigstore(monkeypatch: pytest.MonkeyPatch) -> None:
    """sigstore-python cannot be imported (as if not installed)."""
    for name in [n for n in sys.modules if n == "sigstore" or n.startswith("sigstore.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "sigstore", None)


@pytest.mark.usefixtures("no_sigstore")
def test_keyless_signing_without_sigstore(tmp_path: Path) -> None:
    with pytest.raises(BackendError) as caught:
        load_signing_config(CONFIG)
    message = str(caught.value)
    assert message.startswith("keyless signing (")
    assert message.endswith(") needs sigstore, which is not installed")
    assert caught.value.remedy == "pip install 'mlspec-attest'"


@pytest.mark.usefixtures("no_sigstore")
def test_verifying_without_sigstore() -> None:
    with pytest.raises(BackendError) as caught:
        load_trusted_root(json.loads(ROOT.read_text()), str(ROOT))
    assert str(caught.value) == "verifying Sigstore bundles needs sigstore, which is not installed"
    assert caught.value.remedy == "pip install 'mlspec-attest'"


def test_an_instance_sigstore_python_ships_no_root_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """An instance of ours whose trusted root this sigstore-python does not embed."""
    monkeypatch.setitem(INSTANCES, "private", "https://tuf.example.org")
    with pytest.raises(BackendError) as caught:
        TrustRoot.embedded("private")
    assert str(caught.value) == "sigstore-python ships no trusted root for https://tuf.example.org"


def test_an_embedded_root_names_its_instance_and_sigstore_version() -> None:
    from importlib.metadata import version

    root = TrustRoot.embedded("staging")
    assert root.source == f"instance:staging (embedded in sigstore {version('sigstore')})"
    assert root.document["mediaType"] == TRUSTED_ROOT_MEDIA_TYPE


def test_an_embedded_root_without_sigstore_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sigstore-python installed without its distribution metadata: version unknown."""
    import importlib.metadata

    def no_metadata(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", no_metadata)
    root = TrustRoot.embedded("staging")
    assert root.source == "instance:staging (embedded in sigstore ?)"


def test_a_corrupt_embedded_root_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sigstore-python whose shipped trusted_root.json is damaged (the file read is faked)."""
    import sigstore._utils

    def damaged(name: str, url: str) -> bytes:
        assert (name, url) == ("trusted_root.json", INSTANCES["staging"])
        return b'{"mediaType": '

    monkeypatch.setattr(sigstore._utils, "read_embedded", damaged)
    with pytest.raises(MalformedDocumentError) as caught:
        TrustRoot.embedded("staging")
    assert str(caught.value).startswith("embedded staging trust root: not valid JSON")


class _Damaged:
    """A meta-path finder for a damaged install: importing ``name`` fails with an
    ImportError that names no module (as a broken extension or a raise in a module does)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname == self.name:
            raise ImportError("damaged install")


@pytest.mark.parametrize(
    ("module", "call", "feature"),
    [
        (
            "sigstore._utils",
            lambda: TrustRoot.embedded("staging"),
            "the embedded staging trust root",
        ),
        (
            "sigstore.models",
            lambda: TrustRoot.refreshed("staging"),
            "refreshing the staging trust root",
        ),
        (
            "sigstore_models.trustroot",
            lambda: load_trusted_root({}, "x"),
            "verifying Sigstore bundles",
        ),
        (
            "sigstore.models",
            lambda: load_signing_config(None),
            "keyless signing (keyless=KeylessOptions(...))",
        ),
    ],
)
def test_an_import_failing_without_a_module_name_still_names_sigstore(
    monkeypatch: pytest.MonkeyPatch, module: str, call: Any, feature: str
) -> None:
    for name in [n for n in sys.modules if n == module or n.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_Damaged(module), *sys.meta_path])
    with pytest.raises(BackendError) as info:
        call()
    assert (
        info.value.message
        == f"{feature} needs sigstore, which cannot be imported (damaged install)"
    )
    assert info.value.remedy == "pip install 'mlspec-attest'"
