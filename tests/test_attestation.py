"""Building, signing and storing one stage (``attest.sign_stage``) and its inputs."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import pytest

from mlspec_attest import __version__
from mlspec_attest.attestation.record import (
    StageRecord,
    environment_facts,
    resolve_kind,
)
from mlspec_attest.attestation.stage import resolve_run_id, sign_stage
from mlspec_attest.cli.sign_options import parse_param
from mlspec_attest.digest.directory import DirectoryManifest
from mlspec_attest.errors import (
    ArtifactPathError,
    BadInputError,
    CommandFailedError,
    ExitCode,
    MalformedDocumentError,
    UsageError,
)
from mlspec_attest.evidence.metrics_file import load_metrics_file
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.jsonio import load_file, loads_strict
from mlspec_attest.formats.stages import check_stage_name
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.store.ledger import AttestationStore

from .support import FakeClock, KeyPair

PY = sys.executable


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "ws/data").mkdir(parents=True)
    (tmp_path / "ws/data/in.csv").write_text("a,b\n1,2\n")
    return tmp_path / "ws"


@pytest.fixture
def store(tmp_path: Path) -> AttestationStore:
    return AttestationStore(tmp_path / "store")


def store_files(store: AttestationStore) -> list[str]:
    if not store.root.exists():
        return []
    return sorted(
        p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file()
    )


def sign(
    record: StageRecord, key: KeyPair, store: AttestationStore, ws: Path, **kw: object
) -> object:
    return sign_stage(record, key.signer, store, run_id="r1", base_dir=ws, echo=False, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------- signing
def test_signed_stage_is_stored_and_verifies(
    ws: Path, store: AttestationStore, keys: dict[str, KeyPair]
) -> None:
    (ws / "out.txt").write_text("result")
    record = StageRecord(
        stage="train",
        materials=[ws / "data/in.csv"],
        products=[ws / "out.txt"],
        parameters={"lr": 0.1},
        metrics={"mae": 3.5},
        roles={"train": ws / "data/in.csv"},
        started_on="2025-01-01T00:00:00Z",
    )
    clock = FakeClock()
    result = sign_stage(
        record, keys["ml-engineer"].signer, store, run_id="r1", base_dir=ws, clock=clock
    )
    assert result.run_id == "r1"
    assert (
        result.path == store.run_dir("r1") / f"train.{keys['ml-engineer'].keyid[:8]}.sigstore.json"
    )
    bundle = Bundle.from_json(load_file(result.path))
    assert bundle == result.bundle
    assert bundle.key_hint == keys["ml-engineer"].keyid
    assert bundle.envelope.verified_by(keys["ml-engineer"].public)
    assert not bundle.envelope.verified_by(keys["ml-reviewer"].public)
    assert [s.keyid for s in bundle.envelope.signatures] == [""]  # the bundle carries the hint
    statement = StageStatement.from_payload(bundle.envelope.payload)
    assert statement == result.statement
    meta = statement.metadata
    assert (meta.stage, meta.kind, meta.run_id) == ("train", "train", "r1")
    assert meta.started_on == "2025-01-01T00:00:00Z"
    assert meta.finished_on == "2025-06-01T12:00:00Z"  # from the fake clock
    assert meta.parameters == {"lr": 0.1}
    assert meta.metrics == {"mae": 3.5}
    assert meta.roles == {"train": "data/in.csv"}
    assert [m.name for m in statement.materials] == ["data/in.csv"]
    assert statement.materials[0].digest == {"sha256": hashlib.sha256(b"a,b\n1,2\n").hexdigest()}
    assert [p.name for p in statement.products] == ["out.txt"]
    assert statement.products[0].annotations == {"mlspec.size": 6}
    assert statement.environment["tool"] == {"name": "mlspec-attest", "version": __version__}
    assert store.current_run() == "r1"


def test_directory_product_stores_its_manifest(
    ws: Path, store: AttestationStore, keys: dict[str, KeyPair]
) -> None:
    (ws / "model/sub").mkdir(parents=True)
    (ws / "model/w.bin").write_bytes(b"\x00" * 10)
    (ws / "model/sub/c.json").write_text("{}")
    result = sign(StageRecord("train", products=[ws / "model"]), keys["ml-engineer"], store, ws)
    [product] = result.statement.products  # type: ignore[attr-defined]
    assert product.name == "model"
    assert product.annotations == {"mlspec.kind": "directory", "mlspec.files": 2, "mlspec.size": 12}
    blob = store.get_blob(product.digest["manifest-sha256"])
    assert blob is not None
    manifest = DirectoryManifest.from_json(loads_strict(blob))
    assert manifest.root == product.digest["sha256"]
    assert [e.path for e in manifest.entries] == ["sub/c.json", "w.bin"]


def test_same_path_twice_is_recorded_once(
    ws: Path, store: AttestationStore, keys: dict[str, KeyPair]
) -> None:
    record = StageRecord(
        "ingest", materials=[ws / "data/in.csv", ws / "data/../data/in.csv"], products=[ws / "data"]
    )
    result = sign(record, keys["owner"], store, ws)
    assert [m.name for m in result.statement.materials] == ["data/in.csv"]  # type: ignore[attr-defined]


def test_paths_outside_the_base_are_refused(
    tmp_path: Path, ws: Path, store: AttestationStore, keys: dict[str, KeyPair]
) -> None:
    (tmp_path / "outside.txt").write_text("x")
    with pytest.raises(ArtifactPathError, match="outside the base directory"):
        sign(StageRecord("train", products=[tmp_path / "outside.txt"]), keys["owner"], store, ws)
    assert store_files(store) == []


def test_product_symlink_leaving_the_base_is_refused(
    tmp_path: Path, ws: Path, store: AttestationStore, keys: dict[str, KeyPair]
) -> None:
    # Inside a directory, links leaving the root are refused (digest.py); a
    # product that is itself such a link must be refused too, or the attested
    # name ("model.pkl", inside the base) hides bytes read from elsewhere.
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/model.pkl").write_bytes(b"not from this pipeline")
    (ws / "model.pkl").symlink_to(tmp_path / "elsewhere/model.pkl")
    with pytest.raises(ArtifactPathError):
        sign(StageRecord("train", products=[ws / "model.pkl"]), keys["owner"], store, ws)
    assert not store.run_dir("r1").exists()


def test_missing_product(ws: Path, store: AttestationStore, keys: dict[str, KeyPair]) -> None:
    with pytest.raises(ArtifactPathError, match="no such file"):
        sign(StageRecord("train", products=[ws / "model.pkl"]), keys["owner"], store, ws)
    assert not store.run_dir("r1").exists()


def test_no_products(ws: Path, store: AttestationStore, keys: dict[str, KeyPair]) -> None:
    with pytest.raises(UsageError, match="has no products"):
        sign(StageRecord("train", materials=[ws / "data/in.csv"]), keys["owner"], store, ws)


def test_role_must_name_a_material_or_product(
    ws: Path, store: AttestationStore, keys: dict[str, KeyPair]
) -> None:
    (ws / "other.csv").write_text("x")
    record = StageRecord("train", products=[ws / "data/in.csv"], roles={"train": ws / "other.csv"})
    with pytest.raises(UsageError, match=r"roles\['train'\] = "):
        sign(record, keys["owner"], store, ws)


def test_nan_metric_is_rejected(
    ws: Path, store: AttestationStore, keys: dict[str, KeyPair]
) -> None:
    record = StageRecord("train", products=[ws / "data/in.csv"], metrics={"mae": math.nan})
    with pytest.raises(MalformedDocumentError, match="not finite"):
        sign(record, keys["owner"], store, ws)
    assert not store.run_dir("r1").exists()


def test_schema_violations_fail_at_signing(
    ws: Path, store: AttestationStore, keys: dict[str, KeyPair]
) -> None:
    record = StageRecord("train", products=[ws / "data/in.csv"], parameters={"x": [1, 2]})  # type: ignore[dict-item]
    with pytest.raises(BadInputError, match="stage schema"):
        sign(record, keys["owner"], store, ws)
    assert not store.run_dir("r1").exists()


# ------------------------------------------------------- command wrapping
def test_failed_command_attests_nothing(
    ws: Path, store: AttestationStore, keys: dict[str, KeyPair]
) -> None:
    (ws / "out.txt").write_text("stale")
    record = StageRecord("train", materials=[ws / "data/in.csv"], products=[ws / "out.txt"])
    with pytest.raises(CommandFailedError) as info:
        sign(record, keys["owner"], store, ws, command=[PY, "-c", "import sys; sys.exit(7)"])
    assert info.value.returncode == 7
    assert info.value.exit_code == ExitCode.DENIED
    assert "exited with status 7" in info.value.message
    assert store_files(store) == []


def test_command_output_is_digested(
    ws: Path,
    store: AttestationStore,
    keys: dict[str, KeyPair],
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = (
        "import sys, pathlib; pathlib.Path('made.txt').write_text('made');"
        "print('hello'); print('warn', file=sys.stderr)"
    )
    record = StageRecord("train", products=[ws / "made.txt"])
    monkeypatch.chdir(ws)
    result = sign(record, keys["owner"], store, ws, command=[PY, "-c", script])
    statement = result.statement  # type: ignore[attr-defined]
    assert statement.command.argv == (PY, "-c", script)
    assert statement.command.exit_code == 0
    assert statement.command.stdout_sha256 == hashlib.sha256(b"hello\n").hexdigest()
    assert statement.command.stderr_sha256 == hashlib.sha256(b"warn\n").hexdigest()
    byproducts = statement.to_json()["predicate"]["byproducts"]
    assert byproducts["return-value"] == 0
    assert byproducts["stdout-sha256"] == hashlib.sha256(b"hello\n").hexdigest()
    # the product was written by the command, so it was hashed after it ran
    assert statement.products[0].digest == {"sha256": hashlib.sha256(b"made").hexdigest()}
    assert capfd.readouterr().out == ""  # echo=False


def test_command_output_is_passed_through(
    ws: Path, store: AttestationStore, keys: dict[str, KeyPair], capfd: pytest.CaptureFixture[str]
) -> None:
    record = StageRecord("train", products=[ws / "data/in.csv"])
    sign_stage(
        record,
        keys["owner"].signer,
        store,
        run_id="r1",
        base_dir=ws,
        command=[PY, "-c", "print('visible')"],
    )
    assert "visible" in capfd.readouterr().out


def test_command_not_found(ws: Path, store: AttestationStore, keys: dict[str, KeyPair]) -> None:
    record = StageRecord("train", products=[ws / "data/in.csv"])
    with pytest.raises(BadInputError, match="command not found"):
        sign(record, keys["owner"], store, ws, command=["/nonexistent/tool-xyz"])
    assert store_files(store) == []


def test_metrics_file_is_read_after_the_command(
    ws: Path, store: AttestationStore, keys: dict[str, KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ws)
    script = "import pathlib; pathlib.Path('m.json').write_text('{\"mae\": 2.5}')"
    record = StageRecord(
        "evaluate",
        products=[ws / "data/in.csv"],
        metrics={"extra": 1.0},
        metrics_file=ws / "m.json",
    )
    result = sign(record, keys["owner"], store, ws, command=[PY, "-c", script])
    assert result.statement.metadata.metrics == {"mae": 2.5, "extra": 1.0}  # type: ignore[attr-defined]


# ----------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lr=0.1", ("lr", 0.1)),
        ("depth=4", ("depth", 4)),
        ("warm=true", ("warm", True)),
        ("none=null", ("none", None)),
        ("name=gbm", ("name", "gbm")),
        ('quoted="7"', ("quoted", "7")),
        ("empty=", ("empty", "")),
        ("eq=a=b", ("eq", "a=b")),
        ("list=[1,2]", ("list", "[1,2]")),
        ("obj={}", ("obj", "{}")),
        ("nan=NaN", ("nan", "NaN")),
    ],
)
def test_parse_param(text: str, expected: tuple[str, object]) -> None:
    assert parse_param(text) == expected


@pytest.mark.parametrize("text", ["x=Infinity", "x=-Infinity"])
def test_parse_param_non_json_constants_stay_strings(text: str) -> None:
    # Like NaN, Infinity is not a JSON scalar: it must stay text, not become a
    # float that cannot be signed (RFC 8785 has no representation for it).
    key, value = parse_param(text)
    assert (key, value) == ("x", text.partition("=")[2])


@pytest.mark.parametrize("text", ["novalue", "=value", ""])
def test_parse_param_errors(text: str) -> None:
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_param(text)


# ----------------------------------------------------------- metrics file
def write_json(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_metrics_file_flat(tmp_path: Path) -> None:
    path = write_json(tmp_path / "m.json", '{"mae": 1.5, "r2": 0.9}')
    assert load_metrics_file(path) == ({"mae": 1.5, "r2": 0.9}, {})


def test_metrics_file_with_slices(tmp_path: Path) -> None:
    doc = {
        "metrics": {"mae": 1.5},
        "slices": {"sex": {"f": {"count": 3, "metrics": {"mae": 1.0}}}},
    }
    path = write_json(tmp_path / "m.json", json.dumps(doc))
    assert load_metrics_file(path) == (doc["metrics"], doc["slices"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"mae": NaN}', "not valid JSON"),
        ('{"mae": Infinity}', "not valid JSON"),
        ('{"mae": "low"}', "not a number"),
        ('{"mae": true}', "not a number"),
        ('{"mae": 1, "mae": 2}', "duplicate key"),
        ("[1, 2]", "expected a JSON object"),
        ('{"metrics": {}, "extra": 1}', "unknown field"),
        ('{"metrics": []}', "must be objects"),
        ('{"slices": {"sex": []}}', "must be an object"),
        ('{"slices": {"sex": {"f": {"count": 1}}}}', "needs 'count' and 'metrics'"),
        ('{"slices": {"sex": {"f": {"count": -1, "metrics": {}}}}}', "non-negative integer"),
        ('{"slices": {"sex": {"f": {"count": 1.5, "metrics": {}}}}}', "non-negative integer"),
        ('{"slices": {"sex": {"f": {"count": 2, "metrics": {"m": "x"}}}}}', "not a number"),
        ("{", "not valid JSON"),
    ],
)
def test_metrics_file_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(MalformedDocumentError, match=message):
        load_metrics_file(write_json(tmp_path / "m.json", text))


def test_metrics_file_missing(tmp_path: Path) -> None:
    with pytest.raises(MalformedDocumentError, match="file not found"):
        load_metrics_file(tmp_path / "nope.json")


# ---------------------------------------------------- names, kinds, runs
@pytest.mark.parametrize("name", ["train", "data-split", "s1", "a.b_c", "x" * 64])
def test_valid_stage_names(name: str) -> None:
    assert check_stage_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "Train", "-x", "a b", "a/b", "x" * 65, "é", "../x", "train\n"]
)
def test_invalid_stage_names(name: str) -> None:
    with pytest.raises(UsageError, match="stage name"):
        check_stage_name(name)


def test_resolve_kind() -> None:
    assert resolve_kind("train", None) == "train"
    assert resolve_kind("my-step", None) == "custom"
    assert resolve_kind("my-step", "evaluate") == "evaluate"
    with pytest.raises(UsageError, match="unknown stage kind"):
        resolve_kind("x", "deploy")


def test_resolve_run_id(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path)
    fresh = resolve_run_id(store, None, new_run=False)
    # An implicit run is claimed at once, under the store lock, so stages signed
    # in parallel join it (tests/test_store_concurrency.py).
    assert store.current_run() == fresh
    assert resolve_run_id(store, None, new_run=False) == fresh  # joins the current run
    newer = resolve_run_id(store, None, new_run=True)
    assert newer != fresh and store.current_run() == newer
    # An explicit id moves the marker only when its attestation is stored.
    assert resolve_run_id(store, "explicit", new_run=True) == "explicit"
    assert store.current_run() == newer
    with pytest.raises(UsageError):
        resolve_run_id(store, "bad id", new_run=False)


def test_environment_facts() -> None:
    facts = environment_facts()
    assert facts["tool"] == {"name": "mlspec-attest", "version": __version__}
    assert facts["platform"] == sys.platform
