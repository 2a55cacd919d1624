"""``mlspec-attest model verify|sign``: exit codes, JSON documents and the reference CLI.

Runs the real entry point in-process (``mlspec_attest.cli.main.main``), so the
exit-code mapping is the one users get. Until the ``model`` group is listed in
``cli/main.py`` COMMANDS, the tests register it for their own duration.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.cli import main as cli_main
from mlspec_attest.signing.keys import KeyType, generate_key, write_key_pair

from ..sigstore.instance import OIDC_ISSUER, SigstoreInstance
from .reference import OMS_KEY_FIXTURE, OmsFixtures, copy_tree
from .test_oms import (
    IDENTITY,
    ISSUER,
    README_CASES,
    TRUST_DIR,
    Case,
    needs_reference,
    reference_verify_key,
)

TRUST = TRUST_DIR
#: In parametrized arguments, stands for the folder of the keys made in this session
#: (``signing-key.pem`` P-384, ``signing-key-pub.pem``, ``ca-cert.pem``, ...).
KEYS = Path("<session-keys>")


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Run = Callable[..., Result]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    if "model" not in cli_main.COMMANDS:
        monkeypatch.setitem(
            cli_main.COMMANDS, "model", ("model_cmd", "model", "OpenSSF model-signing.")
        )

    def invoke(*args: str | Path) -> Result:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            cli_main.main([str(a) for a in args])
        out, err = capsys.readouterr()
        code = info.value.code
        result = Result(code if isinstance(code, int) else 0, out, err)
        assert "Traceback" not in out + err
        return result

    return invoke


@pytest.fixture(scope="module")
def fixtures(oms_fixtures: OmsFixtures) -> Path:
    return oms_fixtures.root


@pytest.fixture(scope="module")
def keys(oms_fixtures: OmsFixtures) -> Path:
    """The keys made in this session (the current release's fixtures are signed with them)."""
    return oms_fixtures.generated


def with_keys(args: list[str | Path], keys: Path) -> list[str | Path]:
    """``KEYS / name`` placeholders of a parametrized argument list -> ``keys / name``."""
    return [
        keys / a.relative_to(KEYS) if isinstance(a, Path) and a.is_relative_to(KEYS) else a
        for a in args
    ]


def trust_args(kind: str, keys: Path) -> list[str | Path]:
    prod = TRUST / "prod_client_trust_config.json"
    staging = TRUST / "staging_client_trust_config.json"
    table: dict[str, list[str | Path]] = {
        "key": ["--public-key", keys / "signing-key-pub.pem"],
        "ca": ["--certificate-chain", keys / "ca-cert.pem"],
        "int-ca": ["--certificate-chain", keys / "int-ca-cert.pem"],
        "ca+int-ca": [
            "--certificate-chain",
            keys / "int-ca-cert.pem",
            "--certificate-chain",
            keys / "ca-cert.pem",
        ],
        "prod": ["--trust-config", prod, "--identity", IDENTITY, "--issuer", ISSUER],
        "staging": ["--trust-config", staging, "--identity", IDENTITY, "--issuer", ISSUER],
        "wrong-identity": ["--trust-config", prod, "--identity", "x@y.z", "--issuer", ISSUER],
        "wrong-issuer": [
            "--trust-config",
            prod,
            "--identity",
            IDENTITY,
            "--issuer",
            "https://accounts.google.com",
        ],
    }
    return table[kind]


@pytest.mark.parametrize("case", README_CASES, ids=[c.id for c in README_CASES])
def test_cli_fixture_agrees_with_readme(case: Case, oms_fixtures: OmsFixtures, run: Run) -> None:
    folder = oms_fixtures.root / case.fixture
    model = folder / case.model if case.model else folder
    ignore: list[str | Path] = []
    for name in case.ignore:
        ignore += ["--ignore-paths", folder / name]  # paths on disk, as model_signing takes them
    r = run(
        "model", "verify", model, "--signature", folder / "model.sig",
        *trust_args(case.trust, oms_fixtures.keys_for(case.fixture)), *ignore, "--json",
    )  # fmt: skip
    doc = r.json()
    assert doc["schemaVersion"] == "https://mlspec-attest.dev/model-verification/v1"
    if case.passes:
        assert (r.code, doc["result"]) == (0, "PASSED"), doc["problems"]
    else:
        assert (r.code, doc["result"]) == (1, "DENIED")
        assert case.check in {p["check"] for p in doc["problems"]}


@pytest.fixture
def signed_fixture(oms_fixtures: OmsFixtures, tmp_path: Path) -> Path:
    """A private copy of the installed model-signing's key signature (made this session)."""
    return copy_tree(oms_fixtures.root / OMS_KEY_FIXTURE, tmp_path / "model")


Verify = Callable[..., Result]


@pytest.fixture
def verify_key(run: Run, keys: Path) -> Verify:
    """``verify_key(model, *extra)``: ``model verify`` with the session's public key."""

    def verify(model: Path, *extra: str | Path) -> Result:
        return run(
            "model", "verify", model, "--signature", model / "model.sig",
            "--public-key", keys / "signing-key-pub.pem", "--json", *extra,
        )  # fmt: skip

    return verify


def test_byte_flip_is_denied_naming_the_file(signed_fixture: Path, verify_key: Verify) -> None:
    target = signed_fixture / "signme-2"
    data = bytearray(target.read_bytes())
    data[3] ^= 0x01
    target.write_bytes(bytes(data))
    r = verify_key(signed_fixture)
    assert r.code == 1
    (problem,) = r.json()["problems"]
    assert problem["check"] == "digest-mismatch"
    assert problem["message"].startswith("signme-2 ")
    assert problem["expected"].startswith("sha256:32dcb1f8")


def test_added_and_removed_files_are_denied(
    signed_fixture: Path, run: Run, verify_key: Verify, keys: Path
) -> None:
    (signed_fixture / "signme-1").unlink()
    (signed_fixture / "sub").mkdir()
    (signed_fixture / "sub" / "extra.bin").write_bytes(b"x")
    r = verify_key(signed_fixture)
    assert r.code == 1
    found = {(p["check"], p["message"].split()[0]) for p in r.json()["problems"]}
    assert found == {("file-added", "sub/extra.bin"), ("file-removed", "signme-1")}
    text = run(
        "model", "verify", signed_fixture, "--signature", signed_fixture / "model.sig",
        "--public-key", keys / "signing-key-pub.pem",
    )  # fmt: skip
    assert text.code == 1 and "DENIED" in text.out and "sub/extra.bin" in text.out


def test_user_ignore_paths_are_added_to_the_recorded_set(
    signed_fixture: Path, verify_key: Verify
) -> None:
    (signed_fixture / "notes.txt").write_text("local notes")
    denied = verify_key(signed_fixture)
    assert denied.code == 1
    assert [(p["check"], p["message"].split()[0]) for p in denied.json()["problems"]] == [
        ("file-added", "notes.txt")
    ]
    r = verify_key(signed_fixture, "--ignore-paths", signed_fixture / "notes.txt")
    assert r.code == 0
    assert "notes.txt" in r.json()["ignored"]


def test_wrong_key_is_denied_not_crashed(signed_fixture: Path, run: Run, tmp_path: Path) -> None:
    _, other = write_key_pair(generate_key(KeyType.ECDSA_P384), tmp_path / "other")
    r = run(
        "model", "verify", signed_fixture, "--signature", signed_fixture / "model.sig",
        "--public-key", other, "--json",
    )  # fmt: skip
    assert r.code == 1
    assert [p["check"] for p in r.json()["problems"]] == ["key-hint"]
    # without the hint, the signature itself fails under the wrong key
    bundle = json.loads((signed_fixture / "model.sig").read_text())
    del bundle["verificationMaterial"]["publicKey"]
    (signed_fixture / "model.sig").write_text(json.dumps(bundle))
    r = run(
        "model", "verify", signed_fixture, "--signature", signed_fixture / "model.sig",
        "--public-key", other, "--json",
    )  # fmt: skip
    assert r.code == 1
    assert [p["check"] for p in r.json()["problems"]] == ["signature"]


def test_raw_bytes_naming_another_key_is_denied(fixtures: Path, run: Run, tmp_path: Path) -> None:
    _, other = write_key_pair(generate_key(KeyType.ECDSA_P256), tmp_path / "other")
    folder = fixtures / "v1.0.1-elliptic-key"
    r = run(
        "model", "verify", folder, "--signature", folder / "model.sig",
        "--public-key", other, "--ignore-paths", folder / "ignore-me", "--json",
    )  # fmt: skip
    assert r.code == 1
    assert [p["check"] for p in r.json()["problems"]] == ["key-hint"]


def test_altered_payload_is_denied(signed_fixture: Path, verify_key: Verify) -> None:
    import base64

    bundle = json.loads((signed_fixture / "model.sig").read_text())
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"]).replace(b"signme-2", b"signme-3")
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    (signed_fixture / "model.sig").write_text(json.dumps(bundle))
    r = verify_key(signed_fixture)
    assert r.code == 1
    assert [p["check"] for p in r.json()["problems"]] == ["signature"]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ([], 2),
        (
            [
                "--public-key",
                KEYS / "signing-key-pub.pem",
                "--certificate-chain",
                KEYS / "ca-cert.pem",
            ],
            2,
        ),
        (["--trust-config", TRUST / "prod_client_trust_config.json"], 2),
        (["--public-key", KEYS / "signing-key-pub.pem", "--identity", IDENTITY], 2),
        (["--public-key", KEYS / "signing-key.pem"], 3),
        (["--public-key", KEYS / "missing.pem"], 3),
        (["--certificate-chain", KEYS / "signing-key-pub.pem"], 3),
    ],
)
def test_usage_and_bad_trust_input(
    args: list[str | Path], code: int, signed_fixture: Path, run: Run, keys: Path
) -> None:
    r = run(
        "model", "verify", signed_fixture, "--signature", signed_fixture / "model.sig",
        *with_keys(args, keys), "--json",
    )  # fmt: skip
    assert r.code == code
    assert r.json()["result"] == "ERROR"


def test_missing_inputs_are_bad_input(
    signed_fixture: Path, run: Run, verify_key: Verify, keys: Path, tmp_path: Path
) -> None:
    r = verify_key(tmp_path / "no-such-model")
    assert r.code == 3
    r = run(
        "model", "verify", signed_fixture, "--signature", tmp_path / "none.sig",
        "--public-key", keys / "signing-key-pub.pem", "--json",
    )  # fmt: skip
    assert r.code == 3
    (tmp_path / "junk.sig").write_text("{not json")
    r = run(
        "model", "verify", signed_fixture, "--signature", tmp_path / "junk.sig",
        "--public-key", keys / "signing-key-pub.pem", "--json",
    )  # fmt: skip
    assert (r.code, r.json()["error"]["type"]) == (3, "MalformedDocumentError")


def test_sigstore_missing_is_a_backend_error(
    fixtures: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sigstore", None)
    folder = fixtures / "v1.1.0-sigstore"
    r = run(
        "model", "verify", folder, "--signature", folder / "model.sig", *trust_args("prod", fixtures),
        "--json",
    )  # fmt: skip
    assert r.code == 4
    error = r.json()["error"]
    # sigstore is a core dependency: its absence is a broken install (mlspec_attest.errors)
    assert error["message"].startswith("verifying Sigstore model signatures needs sigstore")
    assert error["remedy"] == "pip install 'mlspec-attest'"


# --- sign ----------------------------------------------------------------------------------------


@pytest.fixture
def model_dir(oms_golden: Path, tmp_path: Path) -> Path:
    return copy_tree(
        oms_golden / "golden-models" / "sample_model_folder" / "sample_model", tmp_path / "m"
    )


@pytest.mark.parametrize(
    "how",
    [
        [],
        ["--hash", "blake2b"],
        ["--hash", "blake3"],
        ["--serialization", "shards", "--shard-size", "8"],
        ["--serialization", "shards", "--hash", "blake2b", "--shard-size", "5"],
    ],
)
def test_sign_then_verify(
    how: list[str], model_dir: Path, run: Run, verify_key: Verify, keys: Path
) -> None:
    if "blake3" in how:
        pytest.importorskip("blake3", reason="blake3 extra not installed")
    r = run(
        "model", "sign", model_dir, "--key", keys / "signing-key.pem",
        "--signature", model_dir / "model.sig", *how, "--json",
    )  # fmt: skip
    assert r.code == 0, r.err
    signed = r.json()
    assert signed["result"] == "SIGNED"
    assert "model.sig" in signed["serialization"]["ignore_paths"]
    r = verify_key(model_dir)
    assert r.code == 0, r.out
    doc = r.json()
    assert doc["rootDigest"] == signed["rootDigest"]
    assert doc["serialization"] == signed["serialization"]


@needs_reference
def test_reference_cli_accepts_a_cli_signature(model_dir: Path, run: Run, keys: Path) -> None:
    (model_dir / "scratch").mkdir()
    (model_dir / "scratch" / "tmp.txt").write_text("left out")
    r = run(
        "model", "sign", model_dir, "--key", keys / "signing-key.pem",
        "--signature", model_dir / "model.sig", "--ignore-paths", model_dir / "scratch",
    )  # fmt: skip
    assert r.code == 0, r.err
    done = reference_verify_key(model_dir, model_dir / "model.sig", keys / "signing-key-pub.pem")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ([], 2),
        (["--key", KEYS / "signing-key.pem", "--sigstore"], 2),
        (["--sigstore"], 2),
        (["--key", KEYS / "signing-key.pem", "--serialization", "shards", "--hash", "blake3"], 2),
        (["--sigstore", "--identity-token", "not-a-jwt"], 3),
    ],
)
def test_sign_usage(
    args: list[str | Path],
    code: int,
    model_dir: Path,
    run: Run,
    keys: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SIGSTORE_ID_TOKEN", raising=False)
    r = run(
        "model", "sign", model_dir, "--signature", model_dir / "model.sig",
        *with_keys(args, keys), "--json",
    )  # fmt: skip
    assert r.code == code
    assert not (model_dir / "model.sig").exists()


def test_sign_refuses_non_ec_keys(model_dir: Path, run: Run, tmp_path: Path) -> None:
    key, _ = write_key_pair(generate_key(KeyType.ED25519), tmp_path / "ed")
    r = run("model", "sign", model_dir, "--key", key, "--signature", tmp_path / "m.sig", "--json")
    assert r.code == 3
    assert "ECDSA" in r.json()["error"]["message"]


def test_sigstore_sign_round_trip(
    model_dir: Path, run: Run, tmp_path: Path, sigstore_instance: SigstoreInstance
) -> None:
    """Keyless `model sign --sigstore` against the loopback Sigstore, verified offline."""
    sig = tmp_path / "model.sig"
    trust = str(sigstore_instance.trust_config_path)
    signed = run(
        "model", "sign", model_dir, "--signature", sig, "--sigstore",
        "--identity-token", sigstore_instance.token("ml@example.com"), "--trust-config", trust,
    )  # fmt: skip
    assert signed.code == 0, signed.err
    verify = ["model", "verify", model_dir, "--signature", sig, "--trust-config", trust]
    ok = run(*verify, "--identity", "ml@example.com", "--issuer", OIDC_ISSUER)
    assert ok.code == 0, ok.err
    wrong = run(*verify, "--identity", "mallory@example.com", "--issuer", OIDC_ISSUER, "--json")
    assert wrong.code == 1
    assert [p["check"] for p in wrong.json()["problems"]] == ["sigstore"]


def test_help_names_every_trust(run: Run) -> None:
    r = run("model", "verify", "--help")
    assert r.code == 0
    for flag in ("--public-key", "--certificate-chain", "--trust-config", "--ignore-paths"):
        assert flag in r.out
