"""A package the toolkit imports on first use is missing: every feature exits 4, one wording.

The absence is simulated at its true edge: ``sys.modules[name] = None`` is what
Python's import system itself treats as "this module cannot be imported", so the
code under test runs unchanged up to its import. Each case runs the real command
and asserts the exit code and the exact message and fix (mlspec_attest/errors.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlspec_attest.errors import PACKAGES, BackendError, ExitCode, install_hint, missing, require

from ..support import KeyPair, asset
from .conftest import Cli

CORE = "pip install 'mlspec-attest'"
Absent = Callable[..., None]


@pytest.fixture
def absent(monkeypatch: pytest.MonkeyPatch) -> Absent:
    """``absent("sigstore")``: the package and its submodules cannot be imported; modules of
    ours that import it at their top are imported again (as on first use)."""

    def hide(*packages: str, reimport: tuple[str, ...] = ()) -> None:
        for top in packages:
            for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
                monkeypatch.setitem(sys.modules, name, None)
            monkeypatch.setitem(sys.modules, top, None)
        for name in reimport:
            monkeypatch.delitem(sys.modules, name, raising=False)

    return hide


def expected(feature: str, package: str, fix: str) -> str:
    return f"error: {feature} needs {package}, which is not installed\n  fix: {fix}\n"


def assert_missing(result: object, feature: str, package: str, fix: str) -> None:
    code, err = result.code, result.err  # type: ignore[attr-defined]
    assert code == ExitCode.BACKEND == 4, err
    assert err.endswith(expected(feature, package, fix)), err
    assert "Traceback" not in err


#: Extras of the integrations with other tools: heavy frameworks a user already has, so
#: `all` leaves them out (each still exists, and the tests install them).
INTEGRATIONS = ("mlflow", "airflow", "prefect", "kfp")


def test_the_wording_and_the_extras() -> None:
    assert install_hint("metrics") == "pip install 'mlspec-attest[metrics]'"
    assert install_hint(None) == CORE
    assert {extra for _, extra in PACKAGES.values()} == {
        "metrics",
        "parquet",
        "serve",
        "postgres",
        "remote",
        "dask",
        "sbom",
        *INTEGRATIONS,
        None,
    }
    error = missing("pyarrow.parquet", "reading Parquet", ModuleNotFoundError(name="pyarrow"))
    assert isinstance(error, BackendError)
    assert error.exit_code == 4
    with pytest.raises(ValueError, match="not a package"):
        require("torch", "training")


def test_extras_in_pyproject_match_the_table() -> None:
    """The extras a message names exist, and `all` installs every one of them."""
    import tomllib

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    core = " ".join(project["dependencies"])
    for distribution, extra in PACKAGES.values():
        if extra is None:
            continue
        assert any(r.startswith(distribution) for r in extras[extra]), (distribution, extra)
        if extra not in INTEGRATIONS:
            assert extra in " ".join(extras["all"]), extra
    for distribution in ("in-toto", "securesystemslib", "sigstore", "blake3", "cbor2"):
        assert f"{distribution}>" in core or f"{distribution}>" in core, distribution
    assert not {"sigstore", "intoto", "blake3"} & set(extras), "core packages need no extra"


# --------------------------------------------------------------------------- blake3
def test_digest_blake3(cli: Cli, absent: Absent, tmp_path: Path) -> None:
    absent("blake3")
    (tmp_path / "f").write_bytes(b"x")
    result = cli("digest", "--algorithm", "blake3", tmp_path / "f")
    assert_missing(result, "the blake3 digest algorithm", "blake3", CORE)


def test_sign_blake3_fails_before_the_stage_command(
    cli: Cli, absent: Absent, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    absent("blake3")
    marker = tmp_path / "ran"
    result = cli(
        "sign", "--stage", "train", "--key", keys["owner"].key_path, "--product", tmp_path / "out",
        "--store", tmp_path / "store", "--base-dir", tmp_path, "--digest-algorithm", "blake3",
        "--", sys.executable, "-c", f"open({str(marker)!r}, 'w'); open({str(tmp_path / 'out')!r}, 'w')",
    )  # fmt: skip
    assert_missing(result, "the blake3 digest algorithm", "blake3", CORE)
    assert not marker.exists(), "the stage command ran before the missing package was found"


def test_model_signing_blake3_hash(absent: Absent, tmp_path: Path) -> None:
    from mlspec_attest.interop.oms.manifest import Serialization, build_manifest

    absent("blake3")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"w")
    with pytest.raises(BackendError) as info:
        build_manifest(tmp_path / "m", Serialization(method="files", hash_type="blake3"))
    assert info.value.diagnostics() == expected(
        "the blake3 digest algorithm", "blake3", CORE
    ).removeprefix("error: ").rstrip("\n")


# ----------------------------------------------------------------------- sigstore
def test_keyless_sign(cli: Cli, absent: Absent, tmp_path: Path) -> None:
    absent("sigstore")
    marker = tmp_path / "ran"
    (tmp_path / "out").write_text("x")
    result = cli(
        "sign", "--stage", "train", "--sigstore", "--identity-token", "a.b.c", "--product",
        tmp_path / "out", "--store", tmp_path / "store", "--base-dir", tmp_path,
        "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')",
    )  # fmt: skip
    assert_missing(result, "keyless signing (--sigstore)", "sigstore", CORE)
    assert not marker.exists()


def bundle_verify_args(*trust: str | Path) -> list[str | Path]:
    bundles = asset("sigstore/bundles/valid-staging")
    return [
        "bundle", "verify", bundles / "bundle_v3.txt.sigstore", "--artifact", bundles / "bundle_v3.txt",
        *trust, "--identity", "william@yossarian.net", "--issuer", "https://github.com/login/oauth",
    ]  # fmt: skip


def test_bundle_verify(cli: Cli, absent: Absent) -> None:
    absent("sigstore", reimport=("mlspec_attest.signing.sigstore._compat",))
    root = asset("sigstore/trust/sigstore-4.5.1-embedded/staging/trusted_root.json")
    result = cli(*bundle_verify_args("--trusted-root", root))
    assert_missing(result, "verifying Sigstore bundles", "sigstore", CORE)


def test_embedded_trust_root(cli: Cli, absent: Absent) -> None:
    absent("sigstore")
    result = cli(*bundle_verify_args("--instance", "staging"))
    assert_missing(result, "the embedded staging trust root", "sigstore", CORE)


def test_sigstore_dependency_names_itself(cli: Cli, absent: Absent) -> None:
    """A dependency of sigstore's that is gone is named, not sigstore."""

    # sigstore imported by an earlier test would not import its dependency again: import
    # it afresh here, then drop what this test imported (the fixture's monkeypatch puts
    # the earlier modules back).
    def sigstore_modules() -> set[str]:
        return {n for n in sys.modules if n == "sigstore" or n.startswith("sigstore.")}

    loaded = sigstore_modules()
    absent("rfc3161_client", reimport=("mlspec_attest.signing.sigstore._compat", *loaded))
    root = asset("sigstore/trust/sigstore-4.5.1-embedded/staging/trusted_root.json")
    try:
        result = cli(*bundle_verify_args("--trusted-root", root))
    finally:
        for name in sigstore_modules() - loaded:
            del sys.modules[name]
    assert_missing(result, "verifying Sigstore bundles", "rfc3161-client", CORE)


def test_model_verify_sigstore(cli: Cli, absent: Absent, tmp_path: Path) -> None:
    absent("sigstore")
    model = asset("model-signing/cli-fixtures/v1.1.0-sigstore")
    result = cli(
        "model", "verify", model, "--signature", model / "model.sig",
        "--trust-config", asset("model-signing/trust-config/prod_client_trust_config.json"),
        "--identity", "stefanb@us.ibm.com", "--issuer", "https://sigstore.verify.ibm.com/oauth2",
    )  # fmt: skip
    assert_missing(result, "verifying Sigstore model signatures", "sigstore", CORE)


def test_policy_with_a_sigstore_trust_root(
    cli: Cli, absent: Absent, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """A trust root that cannot be checked is not signed into a policy with a warning."""
    absent("sigstore", reimport=("mlspec_attest.signing.sigstore._compat",))
    root = asset("sigstore/trust/sigstore-4.5.1-embedded/staging/trusted_root.json")
    (tmp_path / "root.json").write_bytes(root.read_bytes())
    (tmp_path / "policy.yaml").write_text(
        "apiVersion: mlspec-attest/v1\nkind: Policy\nmetadata: {name: p}\n"
        'expires: "2099-01-01T00:00:00Z"\n'
        "functionaries:\n  t:\n    sigstore: {issuer: 'https://i.test', identity: a@b.test}\n"
        "trust:\n  sigstore:\n    trustedRoot: root.json\n"
        "stages:\n  - {name: train, kind: train, functionaries: [t], products: ['CREATE m']}\n"
    )
    result = cli(
        "policy", "sign", tmp_path / "policy.yaml", "--key", keys["owner"].key_path,
        "--out", tmp_path / "signed.json",
    )  # fmt: skip
    assert_missing(result, "verifying Sigstore bundles", "sigstore", CORE)
    assert not (tmp_path / "signed.json").exists()


# ------------------------------------------------------------------------- in-toto
@pytest.mark.parametrize(
    ("package", "distribution"), [("in_toto", "in-toto"), ("securesystemslib", "securesystemslib")]
)
def test_intoto_layout(
    cli: Cli,
    absent: Absent,
    tmp_path: Path,
    keys: dict[str, KeyPair],
    package: str,
    distribution: str,
) -> None:
    absent(package)
    layout = tmp_path / "root.layout"
    layout.write_text(json.dumps({"signed": {"_type": "layout", "steps": []}, "signatures": []}))
    result = cli(
        "verify", "--policy", layout, "--policy-key", keys["owner"].pub_path, "--store", tmp_path
    )
    assert_missing(result, "in-toto interop (layouts and links)", distribution, CORE)


# -------------------------------------------------------------- metrics and Parquet
@pytest.mark.parametrize(
    ("package", "distribution"), [("sklearn", "scikit-learn"), ("numpy", "numpy")]
)
def test_metrics_compute(
    cli: Cli, absent: Absent, tmp_path: Path, package: str, distribution: str
) -> None:
    absent(package)
    (tmp_path / "p.csv").write_text("y,p\n1.0,1.5\n2.0,2.5\n")
    result = cli(
        "metrics", "compute", tmp_path / "p.csv", "--task", "regression", "--label", "y",
        "--prediction", "p",
    )  # fmt: skip
    assert_missing(
        result, "computing metrics", distribution, "pip install 'mlspec-attest[metrics]'"
    )


def test_leakage_check_parquet(cli: Cli, absent: Absent, tmp_path: Path) -> None:
    absent("pyarrow")
    for name in ("train", "holdback"):
        (tmp_path / f"{name}.parquet").write_bytes(b"PAR1")
    result = cli(
        "leakage", "check", f"train={tmp_path / 'train.parquet'}",
        f"holdback={tmp_path / 'holdback.parquet'}",
    )  # fmt: skip
    assert_missing(result, "reading Parquet", "pyarrow", "pip install 'mlspec-attest[parquet]'")


def test_sign_with_a_parquet_material(
    cli: Cli, absent: Absent, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """Row fingerprints of a Parquet material cannot be taken: exit 4, not an "unreadable"
    record that the hold-back check would deny at deploy time."""
    absent("pyarrow")
    (tmp_path / "train.parquet").write_bytes(b"PAR1")
    (tmp_path / "model.bin").write_bytes(b"m")
    result = cli(
        "sign", "--stage", "train", "--key", keys["owner"].key_path, "--material",
        tmp_path / "train.parquet", "--product", tmp_path / "model.bin", "--base-dir", tmp_path,
        "--store", tmp_path / "store",
    )  # fmt: skip
    assert_missing(result, "reading Parquet", "pyarrow", "pip install 'mlspec-attest[parquet]'")
    assert not (tmp_path / "store" / "runs").exists()


# ------------------------------------------------------------------------------ CEL
def test_policy_requirements(absent: Absent) -> None:
    from mlspec_attest.policy import celexpr

    absent("celpy")
    with pytest.raises(BackendError) as info:
        celexpr._cel()
    assert (
        info.value.message
        == "policy requirements (CEL expressions) needs cel-python, which is not installed"
    )
    assert info.value.remedy == CORE


def test_installed_but_broken_says_what_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A package that is there but does not import (a wrong version) is not "not installed"."""
    monkeypatch.setitem(sys.modules, "sigstore._internal.timestamp", None)
    error = missing(
        "sigstore",
        "verifying Sigstore bundles",
        ImportError("cannot import name 'TimestampSource'", name="sigstore._internal.timestamp"),
    )
    assert error.message == (
        "verifying Sigstore bundles needs sigstore, which cannot be imported "
        "(cannot import name 'TimestampSource')"
    )
    assert error.remedy == CORE
