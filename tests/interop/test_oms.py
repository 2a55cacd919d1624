"""OpenSSF model-signing interop, library level: every fixture agrees with its README.

Real data only: signatures made by model-signing v0.2.0 … v1.1.0 (key, certificate,
Sigstore; committed in tests/assets), the key and certificate signatures of the installed
release and the manifests of the reference test models (made by model-signing in this
session, tests/interop/reference.py), the reference's committed golden payloads, and
signatures the reference library makes in the tests. Fixtures are copied to a temporary
folder before anything writes next to them.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mlspec_attest.errors import ArtifactPathError, ExitCode, KeyLoadError, MalformedDocumentError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.interop.oms.manifest import (
    PREDICATE_LEGACY,
    PREDICATE_V1,
    Resource,
    build_manifest,
    root_digest,
    unsafe_name_reason,
)
from mlspec_attest.interop.oms.signature import (
    CertificateTrust,
    KeyTrust,
    ModelSignatureDenied,
    Serialization,
    SigstoreTrust,
    check_model,
    oms_evidence,
    sign_model,
    verify_model,
)
from mlspec_attest.signing.dsse_pae import legacy_pae
from mlspec_attest.signing.keys import (
    KeyType,
    LocalKeySigner,
    generate_key,
    load_private_key,
    write_key_pair,
)
from mlspec_attest.verify.oms_evidence import check_oms_evidence

from ..sigstore.instance import OIDC_ISSUER, SigstoreInstance
from ..support import asset
from .reference import (
    OMS_CERTIFICATE_FIXTURE,
    OMS_KEY_FIXTURE,
    OMS_VERSION,
    OmsFixtures,
    copy_tree,
)

TRUST_DIR = asset("model-signing/trust-config")
IDENTITY = "stefanb@us.ibm.com"
ISSUER = "https://sigstore.verify.ibm.com/oauth2"
VERSIONS = ("v0.3.1", "v1.0.0", "v1.0.1", "v1.1.0")


@pytest.fixture(scope="module")
def fixtures(oms_fixtures: OmsFixtures) -> Path:
    """``cli-fixtures/``, shared by the tests that only read it."""
    return oms_fixtures.root


@pytest.fixture
def fresh(oms_fixtures: OmsFixtures, tmp_path: Path) -> Callable[[str], Path]:
    """``fresh(OMS_KEY_FIXTURE)``: a private copy of one fixture, for tests that write."""

    def copy(name: str) -> Path:
        return copy_tree(oms_fixtures.root / name, tmp_path / name)

    return copy


@pytest.fixture(scope="module")
def test_key(oms_fixtures: OmsFixtures) -> Path:
    """Keys made in this session: ``signing-key.pem`` (ECDSA P-384) and its public key, a
    certificate for it and a root -> intermediate CA chain; the current release's key and
    certificate fixtures are signed with them."""
    return oms_fixtures.generated


@pytest.fixture(scope="module")
def published_keys(oms_fixtures: OmsFixtures) -> Path:
    """The public TEST key and CA chain model-signing's older releases signed with."""
    return oms_fixtures.published


def trust_for(kind: str, keys: Path) -> KeyTrust | CertificateTrust | SigstoreTrust:
    trust_dir = TRUST_DIR
    prod = trust_dir / "prod_client_trust_config.json"
    if kind == "key":
        return KeyTrust.from_file(keys / "signing-key-pub.pem")
    chains = {
        "ca": ["ca-cert.pem"],
        "int-ca": ["int-ca-cert.pem"],
        "ca+int-ca": ["int-ca-cert.pem", "ca-cert.pem"],
    }
    if kind in chains:
        return CertificateTrust.from_files([keys / name for name in chains[kind]])
    config, identity, issuer = {
        "prod": (prod, IDENTITY, ISSUER),
        "staging": (trust_dir / "staging_client_trust_config.json", IDENTITY, ISSUER),
        "wrong-identity": (prod, "someone.else@us.ibm.com", ISSUER),
        "wrong-issuer": (prod, IDENTITY, "https://accounts.google.com"),
    }[kind]
    return SigstoreTrust(config, identity, issuer)


@dataclass(frozen=True)
class Case:
    """One row of the README: fixture, trust, model path inside it, ignored paths, outcome."""

    fixture: str
    trust: str
    passes: bool
    model: str = ""
    ignore: tuple[str, ...] = ()
    check: str | None = None  # the problem a failing case must report

    @property
    def id(self) -> str:
        extra = f"+ignore:{','.join(self.ignore)}" if self.ignore else ""
        return f"{self.fixture}[{self.trust}{extra}]-{'pass' if self.passes else 'FAIL'}"


def _readme_cases() -> list[Case]:
    cases: list[Case] = []
    for v in VERSIONS:
        ignore = ("ignore-me",) if v == "v1.0.1" else ()
        # v0.3.1 and v1.0.0 signed the single FILE signme-1 (resource name ".").
        single = "signme-1" if v in ("v0.3.1", "v1.0.0") else ""
        cases.append(Case(f"{v}-elliptic-key", "key", True, single, ignore))
        cases.append(Case(f"{v}-sigstore", "prod", True, ignore=ignore))
        cases.append(Case(f"{v}-sigstore", "staging", False, ignore=ignore, check="sigstore"))
        cases.append(
            Case(f"{v}-sigstore", "wrong-identity", False, ignore=ignore, check="sigstore")
        )
        cases.append(Case(f"{v}-sigstore", "wrong-issuer", False, ignore=ignore, check="sigstore"))
    for v in ("v0.2.0", *VERSIONS):
        ignore = ("ignore-me",) if v == "v1.0.1" else ()
        cases.append(Case(f"{v}-certificate", "ca", True, ignore=ignore))
        cases.append(Case(f"{v}-certificate", "ca+int-ca", True, ignore=ignore))
        cases.append(
            Case(f"{v}-certificate", "int-ca", False, ignore=ignore, check="certificate-chain")
        )
    # v1.0.1 records no ignore_paths: without --ignore-paths the extra file is denied ...
    for method, trust in (("elliptic-key", "key"), ("certificate", "ca"), ("sigstore", "prod")):
        cases.append(Case(f"v1.0.1-{method}", trust, False, check="file-added"))
    # ... while v1.1.0 records ignore-me itself, as does the installed release, whose key and
    # certificate signatures are made in this session (with keys and a CA chain made here).
    cases.append(Case(OMS_KEY_FIXTURE, "key", True))
    cases.append(Case(OMS_CERTIFICATE_FIXTURE, "ca", True))
    cases.append(Case(OMS_CERTIFICATE_FIXTURE, "ca+int-ca", True))
    cases.append(Case(OMS_CERTIFICATE_FIXTURE, "int-ca", False, check="certificate-chain"))
    return cases


README_CASES = _readme_cases()


@pytest.mark.parametrize("case", README_CASES, ids=[c.id for c in README_CASES])
def test_fixture_agrees_with_readme(case: Case, oms_fixtures: OmsFixtures) -> None:
    folder = oms_fixtures.root / case.fixture
    model = folder / case.model if case.model else folder
    keys = oms_fixtures.keys_for(case.fixture)
    report = check_model(
        model, folder / "model.sig", trust_for(case.trust, keys), ignore_paths=case.ignore
    )
    assert report.passed is case.passes, [str(p) for p in report.problems]
    if case.passes:
        assert report.resources >= 1
        assert report.serialization is not None
    else:
        assert case.check in {p.check for p in report.problems}


def test_every_cli_fixture_is_covered(fixtures: Path) -> None:
    folders = {p.name for p in fixtures.iterdir() if p.name != "keys"}
    assert folders == {c.fixture for c in README_CASES}


def test_legacy_v020_uses_the_buggy_pae_and_digests_predicate(
    fixtures: Path, published_keys: Path
) -> None:
    folder = fixtures / "v0.2.0-certificate"
    report = verify_model(folder, folder / "model.sig", trust_for("ca", published_keys))
    assert report.predicate_type == PREDICATE_LEGACY and report.legacy
    assert report.pae == "legacy-v0.2"
    assert report.subject_digest is None  # v0.2 had no root digest
    assert report.resources == 2


def test_older_key_bundles_carry_raw_bytes(fixtures: Path, published_keys: Path) -> None:
    folder = fixtures / "v1.0.1-elliptic-key"
    report = verify_model(
        folder, folder / "model.sig", trust_for("key", published_keys), ignore_paths=["ignore-me"]
    )
    assert any("rawBytes" in n for n in report.notes)
    assert (
        report.signer["keyid"]
        == json.loads((fixtures / "v1.1.0-elliptic-key" / "model.sig").read_text())[
            "verificationMaterial"
        ]["publicKey"]["hint"]
    )


@pytest.mark.parametrize("fixture", ["v1.1.0-certificate", OMS_CERTIFICATE_FIXTURE])
def test_recorded_ignore_paths_are_a_set(fixture: str, oms_fixtures: OmsFixtures) -> None:
    folder = oms_fixtures.root / fixture
    trust = trust_for("ca", oms_fixtures.keys_for(fixture))
    report = verify_model(folder, folder / "model.sig", trust)
    assert report.serialization is not None
    assert report.serialization.ignore_paths >= {"ignore-me", "model.sig", ".git"}
    assert report.subject_digest == report.manifest_digest


def test_single_file_signature_on_its_folder_says_what_to_do(
    fixtures: Path, published_keys: Path
) -> None:
    folder = fixtures / "v1.0.0-elliptic-key"
    report = check_model(folder, folder / "model.sig", trust_for("key", published_keys))
    assert not report.passed
    assert {p.check for p in report.problems} == {"file-added", "file-removed"}
    assert any("single file" in n for n in report.notes)


# --- golden manifests and payloads ------------------------------------------------------------

GOLDEN_MODELS = {
    "deep_model_folder": "deep_model",
    "empty_model_file": "empty_file_model",
    "empty_model_folder": "empty_folder_model",
    "model_folder_with_empty_file": "empty_file_inside_model",
    "sample_model_file": "file_model",
    "sample_model_folder": "sample_model",
    "symlink_model_folder": "symlink_model",
}
GOLDEN_SERIALIZATIONS = {
    "": Serialization("files", allow_symlinks=True),
    "_shard": Serialization("shards", allow_symlinks=True, shard_size=1_000_000_000),
    "_small_shards": Serialization("shards", allow_symlinks=True, shard_size=8),
}


@pytest.fixture(scope="module")
def golden_models(oms_golden: Path) -> Path:
    """The reference test models (the empty folder and the symlink model included).

    model-signing's ``symlink_model_folder`` is a folder holding a link to a file outside
    it whose content is the sample model file.
    """
    return oms_golden / "golden-models"


GOLDEN_CASES = [(m, s) for m in GOLDEN_MODELS for s in GOLDEN_SERIALIZATIONS]


@pytest.mark.parametrize(("model", "suffix"), GOLDEN_CASES)
def test_golden_payload_is_byte_identical(
    golden_models: Path, oms_golden: Path, model: str, suffix: str
) -> None:
    """Byte for byte model-transparency's committed golden payload, and as data what the
    installed model-signing makes (whose JSON key order varies from run to run)."""
    manifest, problems = build_manifest(
        golden_models / model / GOLDEN_MODELS[model], GOLDEN_SERIALIZATIONS[suffix]
    )
    assert problems == []
    golden = asset(f"model-signing/golden-payloads/signing-TestPayload/{model}{suffix}")
    assert manifest.payload().decode() + "\n" == golden.read_text()
    made = oms_golden / "golden-payloads" / "signing-TestPayload" / f"{model}{suffix}"
    assert json.loads(manifest.payload()) == json.loads(made.read_text())


@pytest.mark.parametrize(("model", "suffix"), GOLDEN_CASES)
def test_golden_manifest(golden_models: Path, oms_golden: Path, model: str, suffix: str) -> None:
    manifest, _ = build_manifest(
        golden_models / model / GOLDEN_MODELS[model], GOLDEN_SERIALIZATIONS[suffix]
    )
    folder = "file" if suffix == "" else "file_shard"
    name = model + ("_small_shards" if suffix == "_small_shards" else "")
    golden = oms_golden / "golden-manifests" / folder / "TestSerializer" / name
    assert [f"{r.name}:{r.digest}" for r in manifest.resources] == golden.read_text().split()


def test_symlinks_are_refused_unless_the_serialization_allows_them(golden_models: Path) -> None:
    model = golden_models / "symlink_model_folder" / "symlink_model"
    _, problems = build_manifest(model, Serialization())
    assert [p.check for p in problems] == ["symlink"]


# --- round trips -------------------------------------------------------------------------------


def has_reference() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("model_signing", "OpenSSL"))


needs_reference = pytest.mark.skipif(
    not has_reference(),
    reason="model-signing (and pyopenssl) not installed: pip install model-signing==1.1.1 pyopenssl",
)


def reference_verify_key(
    model: Path, signature: Path, public_key: Path
) -> subprocess.CompletedProcess[str]:
    """``model_signing verify key`` (1.1.1 spells its flags with underscores)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "model_signing",
            "verify",
            "key",
            "--public_key",
            str(public_key),
            "--signature",
            str(signature),
            str(model),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def sample_model(golden_models: Path, tmp_path: Path) -> Path:
    model = copy_tree(golden_models / "sample_model_folder" / "sample_model", tmp_path / "model")
    (model / ".git").mkdir()
    (model / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (model / "README.local").write_text("not part of the model\n")
    return model


@pytest.fixture(scope="module")
def p256(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_key_pair(generate_key(KeyType.ECDSA_P256), tmp_path_factory.mktemp("k") / "p256")


ROUND_TRIPS = [
    Serialization("files", "sha256"),
    Serialization("files", "blake2b"),
    Serialization("files", "blake3"),
    Serialization("shards", "sha256", shard_size=8),
    Serialization("shards", "blake2b", shard_size=8),
    Serialization("shards", "sha256", shard_size=1_000_000_000),
]


@pytest.mark.parametrize(
    "spec", ROUND_TRIPS, ids=[f"{s.method}-{s.hash_type}-{s.shard_size}" for s in ROUND_TRIPS]
)
def test_round_trip_ours(spec: Serialization, sample_model: Path, test_key: Path) -> None:
    if spec.hash_type == "blake3":
        pytest.importorskip("blake3", reason="blake3 extra not installed")
    sig = sample_model / "model.sig"
    signed = sign_model(
        sample_model,
        sig,
        load_private_key(test_key / "signing-key.pem"),
        serialization=spec,
        ignore_paths=["README.local"],
    )
    assert signed.manifest.serialization.ignore_paths == {
        "README.local",
        "model.sig",
        ".git",
        ".gitattributes",
        ".github",
        ".gitignore",
    }
    report = verify_model(sample_model, sig, trust_for("key", test_key))
    assert report.subject_digest == signed.manifest.root_digest
    assert report.resources == len(signed.manifest.resources)
    (sample_model / "d0" / "f01").write_bytes(b"This is file f01 in d1.")
    denied = check_model(sample_model, sig, trust_for("key", test_key))
    assert {p.check for p in denied.problems} == {"digest-mismatch"}
    assert all(p.message.startswith("d0/f01") for p in denied.problems)


@needs_reference
@pytest.mark.parametrize("key", ["p384-test-key", "p256"])
def test_reference_accepts_our_signature(
    key: str, sample_model: Path, test_key: Path, p256: tuple[Path, Path]
) -> None:
    private, public = (
        (test_key / "signing-key.pem", test_key / "signing-key-pub.pem")
        if key == "p384-test-key"
        else p256
    )
    sig = sample_model / "model.sig"
    sign_model(sample_model, sig, load_private_key(private), ignore_paths=["README.local"])
    done = reference_verify_key(sample_model, sig, public)
    assert done.returncode == 0, done.stderr
    assert "Verification succeeded" in done.stdout
    (sample_model / "f2").write_bytes(b"tampered")
    done = reference_verify_key(sample_model, sig, public)
    assert done.returncode == 1


@needs_reference
def test_reference_accepts_our_single_file_signature(tmp_path: Path, test_key: Path) -> None:
    model = tmp_path / "weights.bin"
    model.write_bytes(os.urandom(4096))
    sig = tmp_path / "weights.sig"
    signed = sign_model(model, sig, load_private_key(test_key / "signing-key.pem"))
    assert [r.name for r in signed.manifest.resources] == ["."]
    done = reference_verify_key(model, sig, test_key / "signing-key-pub.pem")
    assert done.returncode == 0, done.stderr


REFERENCE_ONLY_WE_VERIFY = {
    # what model_signing's library can sign but its own verify CLI cannot check
    "blake2": ("files", "blake2"),
    "blake3": ("files", "blake3"),
    "shards-sha256": ("shards", "sha256"),
    "shards-blake2": ("shards", "blake2"),
}


@needs_reference
@pytest.mark.parametrize("name", sorted(REFERENCE_ONLY_WE_VERIFY))
def test_we_verify_reference_signatures_it_cannot(
    name: str, sample_model: Path, test_key: Path, tmp_path: Path
) -> None:
    from model_signing import hashing, signing

    method, algorithm = REFERENCE_ONLY_WE_VERIFY[name]
    config = hashing.Config()
    if method == "files":
        config.use_file_serialization(hashing_algorithm=algorithm)
    else:
        config.use_shard_serialization(hashing_algorithm=algorithm, shard_size=8)
    config.set_ignored_paths(paths=["README.local"])
    sig = tmp_path / f"{name}.sig"
    signing.Config().use_elliptic_key_signer(
        private_key=test_key / "signing-key.pem"
    ).set_hashing_config(config).sign(sample_model, sig)
    report = verify_model(sample_model, sig, trust_for("key", test_key))
    assert report.serialization is not None
    assert report.serialization.method == method
    done = reference_verify_key(sample_model, sig, test_key / "signing-key-pub.pem")
    assert done.returncode == 1  # the reference CLI always re-hashes with files/sha256


@pytest.fixture(scope="module")
def loopback_keyless(
    sigstore_instance_factory: Callable[[str], SigstoreInstance],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, SigstoreInstance]:
    """The sigstore method of the installed model-signing, as its CLI fixtures are made, but
    on the loopback Sigstore: ``model_signing`` signs keyless with the instance's trust
    config and an identity token for ml@example.com."""
    from model_signing import hashing, signing

    instance = sigstore_instance_factory("main")
    model = tmp_path_factory.mktemp("oms-keyless") / f"{OMS_VERSION}-sigstore"
    model.mkdir()
    for name, data in (("signme-1", b"signme-1"), ("signme-2", b"signme-2"), ("ignore-me", b"")):
        (model / name).write_bytes(data)
    config = signing.Config().use_sigstore_signer(
        identity_token=instance.token("ml@example.com"), trust_config=instance.trust_config_path
    )
    config.set_hashing_config(hashing.Config().set_ignored_paths(paths=["ignore-me", "model.sig"]))
    config.sign(model, model / "model.sig")
    return model, instance


@needs_reference
@pytest.mark.parametrize("trust", ["loopback", "other-instance", "wrong-identity", "wrong-issuer"])
def test_reference_keyless_signature_on_the_loopback_sigstore(
    trust: str,
    loopback_keyless: tuple[Path, SigstoreInstance],
    sigstore_instance_factory: Callable[[str], SigstoreInstance],
) -> None:
    """As the published sigstore fixtures (right trust config and identity pass; another
    instance's trust config, a wrong identity or issuer fail), and the reference agrees."""
    model, instance = loopback_keyless
    config, identity, issuer = {
        "loopback": (instance.trust_config_path, "ml@example.com", OIDC_ISSUER),
        "other-instance": (
            sigstore_instance_factory("other").trust_config_path,
            "ml@example.com",
            OIDC_ISSUER,
        ),
        "wrong-identity": (instance.trust_config_path, "mallory@example.com", OIDC_ISSUER),
        "wrong-issuer": (instance.trust_config_path, "ml@example.com", "https://issuer.example"),
    }[trust]
    report = check_model(model, model / "model.sig", SigstoreTrust(config, identity, issuer))
    passes = trust == "loopback"
    assert report.passed is passes, [str(p) for p in report.problems]
    if passes:
        assert report.serialization is not None
        assert report.serialization.ignore_paths >= {"ignore-me", "model.sig"}
    else:
        assert "sigstore" in {p.check for p in report.problems}
    done = subprocess.run(
        [
            sys.executable, "-m", "model_signing", "verify", "sigstore",
            "--signature", str(model / "model.sig"), "--trust_config", str(config),
            "--identity", identity, "--identity_provider", issuer, str(model),
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert (done.returncode == 0) is passes, done.stdout + done.stderr


def test_signing_refuses_non_ec_keys(sample_model: Path) -> None:
    with pytest.raises(KeyLoadError, match="ECDSA"):
        sign_model(sample_model, sample_model / "model.sig", generate_key(KeyType.ED25519))


def test_signing_refuses_symlinks_unless_allowed(tmp_path: Path, test_key: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "a").write_bytes(b"a")
    (model / "b").symlink_to(model / "a")
    key = load_private_key(test_key / "signing-key.pem")
    with pytest.raises(ArtifactPathError, match="symbolic link"):
        sign_model(model, tmp_path / "m.sig", key)
    sign_model(model, tmp_path / "m.sig", key, serialization=Serialization(allow_symlinks=True))
    verify_model(model, tmp_path / "m.sig", trust_for("key", test_key))


# --- forged statements: signed with the right key, content refused --------------------------


def sign_statement(statement: dict[str, Any], signer: LocalKeySigner, path: Path) -> Path:
    payload = json.dumps(statement, indent=2).encode()
    envelope = Envelope.sign(payload, INTOTO_PAYLOAD_TYPE, [signer], keyid_hint=False)
    bundle = Bundle.for_public_key(envelope, signer.public_key.keyid)
    path.write_text(json.dumps(bundle.to_json()))
    return path


def statement_for(resources: list[dict[str, str]], **serialization: Any) -> dict[str, Any]:
    root = root_digest(Resource(r["name"], r["algorithm"], r["digest"]) for r in resources)
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "forged", "digest": {"sha256": root}}],
        "predicateType": PREDICATE_V1,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                **serialization,
            },
            "resources": resources,
        },
    }


@pytest.mark.parametrize(
    "name", ["../outside", "/etc/passwd", "a/../../b", "a//b", "./a", "C:\\x", "..\\x"]
)
def test_unsafe_resource_names_are_denied(
    name: str, fresh: Callable[[str], Path], test_key: Path
) -> None:
    folder = fresh(OMS_KEY_FIXTURE)
    signer = load_private_key(test_key / "signing-key.pem")
    sig = sign_statement(
        statement_for([{"algorithm": "sha256", "digest": "00" * 32, "name": name}]),
        signer,
        folder.parent / "forged.sig",
    )
    report = check_model(folder, sig, trust_for("key", test_key))
    assert not report.passed
    assert "resource-name" in {p.check for p in report.problems}
    with pytest.raises(ModelSignatureDenied):
        verify_model(folder, sig, trust_for("key", test_key))


@pytest.mark.parametrize("name", ["w", "a/b", "x:weights", ".hidden", "a b/c", "."])
def test_safe_resource_names(name: str) -> None:
    assert unsafe_name_reason(name) is None


def test_implicit_git_ignore_never_hides_a_signed_file(tmp_path: Path, test_key: Path) -> None:
    """Signatures recording no ignore paths: git metadata is left out unless it is signed."""
    model = tmp_path / "m"
    model.mkdir()
    (model / "w").write_bytes(b"weights")
    (model / ".gitattributes").write_text("*.bin filter=lfs\n")
    (model / ".git").mkdir()
    (model / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    manifest, _ = build_manifest(model, Serialization(), extra_ignore=[".git"])
    assert [r.name for r in manifest.resources] == [".gitattributes", "w"]
    statement = statement_for([r.to_json() for r in manifest.resources])
    sig = sign_statement(statement, load_private_key(test_key / "signing-key.pem"), tmp_path / "s")
    report = verify_model(model, sig, trust_for("key", test_key))
    assert ".git" in report.ignored and ".gitattributes" not in report.ignored
    denied = check_model(model, sig, trust_for("key", test_key), ignore_git_paths=False)
    assert [p.message.split()[0] for p in denied.problems] == [".git/HEAD"]


def test_inconsistent_root_is_denied(fresh: Callable[[str], Path], test_key: Path) -> None:
    folder = fresh(OMS_KEY_FIXTURE)
    statement = json.loads(
        base64.b64decode(json.loads((folder / "model.sig").read_text())["dsseEnvelope"]["payload"])
    )
    statement["subject"][0]["digest"]["sha256"] = "11" * 32
    sig = sign_statement(
        statement, load_private_key(test_key / "signing-key.pem"), folder.parent / "forged.sig"
    )
    report = check_model(folder, sig, trust_for("key", test_key))
    assert [p.check for p in report.problems] == ["root-digest"]


def test_legacy_pae_signed_by_a_key_verifies(tmp_path: Path, test_key: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "w").write_bytes(b"weights")
    manifest, _ = build_manifest(model, Serialization())
    signer = load_private_key(test_key / "signing-key.pem")
    payload = manifest.payload()
    sig = signer.sign(legacy_pae(payload))
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": signer.public_key.keyid}},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(sig).decode()}],
        },
    }
    (tmp_path / "m.sig").write_text(json.dumps(bundle))
    report = verify_model(model, tmp_path / "m.sig", trust_for("key", test_key))
    assert report.pae == "legacy-v0.2"


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda b: b.update(mediaType="application/json"), "mediaType"),
        (lambda b: b["dsseEnvelope"].update(payloadType="text/plain"), "payloadType"),
        (
            lambda b: b["dsseEnvelope"]["signatures"].append(b["dsseEnvelope"]["signatures"][0]),
            "one DSSE",
        ),
        (lambda b: b["dsseEnvelope"].update(payload="%%%"), "base64"),
    ],
)
def test_malformed_bundles_are_bad_input(
    mutate: Callable[[dict[str, Any]], None],
    error: str,
    fresh: Callable[[str], Path],
    test_key: Path,
) -> None:
    folder = fresh(OMS_KEY_FIXTURE)
    bundle = json.loads((folder / "model.sig").read_text())
    mutate(bundle)
    (folder / "model.sig").write_text(json.dumps(bundle))
    with pytest.raises(MalformedDocumentError, match=error) as info:
        check_model(folder, folder / "model.sig", trust_for("key", test_key))
    assert info.value.exit_code == ExitCode.BAD_INPUT


def test_duplicate_json_keys_are_bad_input(fresh: Callable[[str], Path], test_key: Path) -> None:
    folder = fresh(OMS_KEY_FIXTURE)
    text = (folder / "model.sig").read_text()
    (folder / "model.sig").write_text(text[:-1] + ',"mediaType":"x"}')
    with pytest.raises(MalformedDocumentError, match="duplicate"):
        check_model(folder, folder / "model.sig", trust_for("key", test_key))


def test_not_a_model_signature_is_bad_input(tmp_path: Path, test_key: Path) -> None:
    statement = statement_for([])
    statement["predicateType"] = "https://slsa.dev/provenance/v1"
    sig = sign_statement(statement, load_private_key(test_key / "signing-key.pem"), tmp_path / "s")
    (tmp_path / "m").mkdir()
    with pytest.raises(MalformedDocumentError, match="not a model signature"):
        check_model(tmp_path / "m", sig, trust_for("key", test_key))


# --- certificate chains made here ---------------------------------------------------------------


@dataclass
class Pki:
    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate
    inter_key: ec.EllipticCurvePrivateKey


def make_cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    usage: str = "sign",
    days: tuple[int, int] = (-1, 365),
) -> x509.Certificate:
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=days[0]))
        .not_valid_after(now + timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        ku = dict.fromkeys(
            [
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "crl_sign",
                "encipher_only",
                "decipher_only",
                "digital_signature",
            ],
            False,
        )
        builder = builder.add_extension(x509.KeyUsage(key_cert_sign=True, **ku), critical=True)
    elif usage == "sign":
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki() -> Pki:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = make_cert("test-root", root_key, None, root_key, ca=True)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = make_cert("test-intermediate", inter_key, root, root_key, ca=True)
    return Pki(root, root_key, inter, inter_key)


def write_pem(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def certificate_signature(
    model: Path, out: Path, leaf_key: ec.EllipticCurvePrivateKey, chain: list[x509.Certificate]
) -> Path:
    """A bundle as `model_signing sign certificate` writes it: leaf first, then the chain."""
    manifest, _ = build_manifest(model, Serialization())
    payload = manifest.payload()
    sig = leaf_key.sign(
        b"DSSEv1 %d %s %d %s"
        % (len(INTOTO_PAYLOAD_TYPE), INTOTO_PAYLOAD_TYPE.encode(), len(payload), payload),
        ec.ECDSA(hashes.SHA256()),
    )
    raw = [
        {"rawBytes": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()}
        for c in chain
    ]
    out.write_text(
        json.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "verificationMaterial": {
                    "x509CertificateChain": {"certificates": raw},
                    "tlogEntries": [],
                },
                "dsseEnvelope": {
                    "payload": base64.b64encode(payload).decode(),
                    "payloadType": INTOTO_PAYLOAD_TYPE,
                    "signatures": [{"sig": base64.b64encode(sig).decode(), "keyid": ""}],
                },
            }
        )
    )
    return out


@pytest.mark.parametrize(
    ("leaf_kind", "trusted", "check"),
    [
        ("good", "root", None),
        ("good", "intermediate", "certificate-chain"),
        ("good", "other-root", "certificate-chain"),
        ("server-auth-only", "root", "certificate-usage"),
        ("issued-by-non-ca", "root", "certificate-chain"),
        ("expired-intermediate", "root", "certificate-chain"),
    ],
)
def test_certificate_chain_rules(
    leaf_kind: str, trusted: str, check: str | None, pki: Pki, tmp_path: Path
) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "w").write_bytes(b"weights")
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    inter, inter_key = pki.intermediate, pki.inter_key
    if leaf_kind == "issued-by-non-ca":
        inter_key = ec.generate_private_key(ec.SECP256R1())
        inter = make_cert("not-a-ca", inter_key, pki.root, pki.root_key, ca=False)
    if leaf_kind == "expired-intermediate":
        inter_key = ec.generate_private_key(ec.SECP256R1())
        inter = make_cert("old-ca", inter_key, pki.root, pki.root_key, ca=True, days=(-30, -10))
    usage = "server" if leaf_kind == "server-auth-only" else "sign"
    leaf = make_cert("signer", leaf_key, inter, inter_key, ca=False, usage=usage)
    sig = certificate_signature(model, tmp_path / "m.sig", leaf_key, [leaf, inter])
    if trusted == "other-root":
        other_key = ec.generate_private_key(ec.SECP256R1())
        anchor = make_cert("test-root", other_key, None, other_key, ca=True)
    else:
        anchor = pki.root if trusted == "root" else pki.intermediate
    trust = CertificateTrust.from_files([write_pem(tmp_path / "trust.pem", anchor)])
    report = check_model(model, sig, trust)
    if check is None:
        assert report.passed, [str(p) for p in report.problems]
        assert report.signer["root"]["subject"] == "CN=test-root"
    else:
        assert check in {p.check for p in report.problems}


# --- package-stage evidence -------------------------------------------------------------------


def test_oms_evidence_round_trip(fresh: Callable[[str], Path], published_keys: Path) -> None:
    folder = fresh("v1.1.0-certificate")
    sig = folder / "model.sig"
    record = oms_evidence(folder, sig, trust_for("ca", published_keys))
    assert json.loads(json.dumps(record)) == record
    assert record["method"] == "certificate"
    assert record["rootDigest"] == record["manifestDigest"]
    assert record["resources"] == 2
    assert check_oms_evidence(record, folder, signature_path=sig) == []
    (folder / "signme-2").write_bytes(b"changed!")
    problems = check_oms_evidence(record, folder, signature_path=sig)
    assert len(problems) == 1 and "differs from the signed model" in problems[0]
    sig.write_text(sig.read_text() + " ")
    assert len(check_oms_evidence(record, folder, signature_path=sig)) == 2


def test_oms_evidence_for_the_legacy_format(fixtures: Path, published_keys: Path) -> None:
    folder = fixtures / "v0.2.0-certificate"
    record = oms_evidence(folder, folder / "model.sig", trust_for("ca", published_keys))
    assert record["legacy"] is True and record["rootDigest"] is None
    assert check_oms_evidence(record, folder) == []


def test_oms_evidence_names_the_sigstore_signer(fixtures: Path, published_keys: Path) -> None:
    folder = fixtures / "v1.1.0-sigstore"
    record = oms_evidence(folder, folder / "model.sig", trust_for("prod", published_keys))
    assert (record["signer"]["identity"], record["signer"]["issuer"]) == (IDENTITY, ISSUER)
    assert len(record["signer"]["trustConfig"]["sha256"]) == 64
    assert len(record["signer"]["certificate"]["sha256"]) == 64


def test_oms_evidence_refuses_a_denied_model(fixtures: Path, published_keys: Path) -> None:
    folder = fixtures / "v1.0.1-sigstore"
    with pytest.raises(ModelSignatureDenied) as info:
        oms_evidence(folder, folder / "model.sig", trust_for("prod", published_keys))
    assert info.value.exit_code == ExitCode.DENIED
    assert "file-added" in info.value.diagnostics()


@pytest.mark.parametrize("record", [None, {}, {"schemaVersion": "x"}, []])
def test_check_oms_evidence_rejects_other_records(record: Any, tmp_path: Path) -> None:
    assert check_oms_evidence(record, tmp_path) != []
