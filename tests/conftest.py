"""Shared fixtures: real keys per role, a small signed pipeline, interop data.

Interop data comes from two places, both inside the repository: documents the reference
tools in the test dependencies make at test time (``tests/interop/reference.py``: in-toto,
model-signing), and public data that cannot be made offline, committed under
``tests/assets/`` (``support.asset``).

Nothing here fakes cryptography or hashing; helpers live in ``tests/support.py``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from mlspec_attest.signing.keys import KeyType, generate_key, write_key_pair

from .interop import reference
from .mlpipeline import MakeML, MLPipeline
from .postgres_server import index_url, postgres_server  # noqa: F401 - fixtures
from .support import ROLE_KEY_TYPES, KeyPair, Pipeline

# The suite must not write into the source tree: no example database, and
# hypothesis' caches (charmaps ...) go to a stable directory outside the tree.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "mlspec-attest-hypothesis")
settings.register_profile("mlspec-attest", database=None, deadline=None)
settings.load_profile("mlspec-attest")


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own MLSPEC_* settings must not leak into any test."""
    for var in (
        "MLSPEC_ATTEST_STORE",
        "MLSPEC_ATTEST_STORE_URL",
        "MLSPEC_ATTEST_KEY",
        "MLSPEC_ATTEST_POLICY",
        "MLSPEC_ATTEST_DEBUG",
        "MLSPEC_ATTEST_DIGEST_CACHE",
        "MLSPEC_ATTEST_DIGEST_ALGORITHM",
        "MLSPEC_ATTEST_DIGEST_SERIALIZATION",
        "MLSPEC_ATTEST_SHARD_SIZE",
        "MLSPEC_RUN_ID",
    ):
        monkeypatch.delenv(var, raising=False)
    # The engine reads with its defaults, whatever `mlspec-attest tune` saved on this machine.
    monkeypatch.setenv("MLSPEC_ATTEST_READ_STRATEGY", "default")


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    """One key pair per pipeline role, generated once per session (RSA is slow)."""
    directory = tmp_path_factory.mktemp("keys")
    out: dict[str, KeyPair] = {}
    for role, key_type in ROLE_KEY_TYPES.items():
        signer = generate_key(key_type)
        key_path, pub_path = write_key_pair(signer, directory / role)
        out[role] = KeyPair(role, signer, key_path, pub_path)
    return out


@pytest.fixture(scope="session")
def key_of_type(keys: dict[str, KeyPair]) -> dict[KeyType, KeyPair]:
    """A key pair for each of the four supported key types."""
    out: dict[KeyType, KeyPair] = {}
    for role, key_type in ROLE_KEY_TYPES.items():
        out.setdefault(key_type, keys[role])
    assert set(out) == set(KeyType)
    return out


@pytest.fixture
def make_pipeline(tmp_path: Path, keys: dict[str, KeyPair]) -> Callable[..., Pipeline]:
    """Factory: ``make_pipeline(name, **options)`` -> a Pipeline with a signed policy."""
    counter = iter(range(1000))

    def factory(name: str | None = None, **options: Any) -> Pipeline:
        return Pipeline(tmp_path / (name or f"p{next(counter)}"), keys, **options)

    return factory


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    """A policy signed by the owner; no stage signed yet."""
    return make_pipeline("pipeline")


@pytest.fixture
def honest(pipeline: Pipeline) -> Pipeline:
    """The full honest pipeline: every stage run and signed by its functionaries."""
    return pipeline.run()


# ------------------------------------------------ interop data made by the reference tools
@pytest.fixture(scope="session")
def intoto_demo(tmp_path_factory: pytest.TempPathFactory) -> reference.IntotoDemo:
    """in-toto's demo supply chain, made by in-toto (keys, layout template, links)."""
    return reference.build_intoto_demo(tmp_path_factory.mktemp("intoto-demo"))


@pytest.fixture(scope="session")
def intoto_pems(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rsa/ecdsa/ed25519 PEM keys made by securesystemslib, as in-toto's test keys are written."""
    return reference.build_intoto_pems(tmp_path_factory.mktemp("intoto") / "pems")


@pytest.fixture(scope="session")
def intoto_dir_tree(tmp_path_factory: pytest.TempPathFactory) -> reference.DirTree:
    """A tree and its ``dir:`` digests as in-toto's DirectoryResolver computes them."""
    return reference.build_dir_tree(tmp_path_factory.mktemp("intoto-dir"))


@pytest.fixture(scope="session")
def oms_fixtures(tmp_path_factory: pytest.TempPathFactory) -> reference.OmsFixtures:
    """model-signing ``cli-fixtures/``: older releases (tests/assets) + the current release's
    key and certificate signatures made by model-signing. Shared: copy before writing."""
    return reference.build_oms_fixtures(tmp_path_factory.mktemp("oms"))


@pytest.fixture(scope="session")
def oms_golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference test models with the manifests and payloads model-signing makes for them
    (``golden-models/``, ``golden-manifests/``, ``golden-payloads/``). Shared: do not write."""
    return reference.build_oms_golden(tmp_path_factory.mktemp("oms-golden"))


@pytest.fixture
def make_ml(tmp_path: Path, keys: dict[str, KeyPair]) -> MakeML:
    """Factory of real ML pipelines (tests/mlpipeline.py), each in its own folder."""
    counter = iter(range(100))

    def factory(**options: Any) -> MLPipeline:
        return MLPipeline(tmp_path / f"ml{next(counter)}", keys, **options)

    return factory


@pytest.fixture
def ml(make_ml: MakeML) -> MLPipeline:
    return make_ml()
