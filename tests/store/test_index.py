"""The query index: built from real stores, answering each question, never trusted by verify."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from mlspec_attest.errors import BadInputError
from mlspec_attest.store.index import build_index, ensure_index, index_path
from mlspec_attest.store.index_query import AttestationIndex, parse_digest
from mlspec_attest.store.run_diff import diff_runs
from tests.support import Pipeline


def _index(p: Pipeline) -> AttestationIndex:
    ensure_index(p.store)
    return AttestationIndex.open(index_path(p.store))


def _sha(path: Path) -> tuple[str, str]:
    return "sha256", hashlib.sha256(path.read_bytes()).hexdigest()


def _product(p: Pipeline, stage: str) -> tuple[str, str]:
    index = _index(p)
    run = index.run(p.run_id)
    product = next(s for s in run["stages"] if s["stage"] == stage)["products"][0]
    return "sha256", product["digest"]["sha256"]


def test_index_records_every_attestation_and_its_signer(honest: Pipeline) -> None:
    build = build_index(honest.store)
    assert (build.attestations, build.summaries, build.malformed) == (5, 0, 0)
    run = _index(honest).run("run-a")
    stages = [(s["stage"], s["signer"]["keyid"]) for s in run["stages"]]
    assert sorted(stages) == sorted(
        [
            ("ingest", honest.keys["data-engineer"].keyid),
            ("split", honest.keys["data-engineer"].keyid),
            ("train", honest.keys["ml-engineer"].keyid),
            ("train", honest.keys["ml-reviewer"].keyid),
            ("package", honest.keys["release-engineer"].keyid),
        ]
    )
    split = next(s for s in run["stages"] if s["stage"] == "split")
    assert [m["name"] for m in split["materials"]] == ["data/raw.csv"]
    assert {p["name"]: p["role"] for p in split["products"]} == {
        "data/split/train.csv": "train",
        "data/split/holdback.csv": "holdback",
    }
    assert split["payloadDigest"].startswith("sha256:") and split["error"] is None
    assert split["policyDigest"] == honest.signed.digest


def test_models_trained_on_a_dataset_follow_split_train_package(honest: Pipeline) -> None:
    index = _index(honest)
    raw = _sha(honest.ws / "data/raw.csv")
    models = index.models_from(raw)
    assert [(m["runId"], m["stage"], m["name"]) for m in models] == [
        ("run-a", "train", "model"),
        ("run-a", "train", "model"),
        ("run-a", "package", "dist/model"),
    ]
    # The hold-back split is read by no training stage: no model came from it.
    assert index.models_from(_sha(honest.ws / "data/split/holdback.csv")) == []
    assert index.models_from(("sha256", "0" * 64)) == []


def test_datasets_behind_a_model_digest(honest: Pipeline) -> None:
    index = _index(honest)
    package = _product(honest, "package")
    [lineage] = index.inputs_of(package)
    assert lineage["runId"] == "run-a"
    read = {
        (s["stage"], m["name"], m["producedBy"]) for s in lineage["stages"] for m in s["materials"]
    }
    assert read == {
        ("package", "model", "train"),
        ("train", "data/split/train.csv", "split"),
        ("split", "data/raw.csv", "ingest"),
    }


def test_runs_a_key_signed(honest: Pipeline) -> None:
    honest.sign("ingest", run_id="run-b")
    index = _index(honest)
    signed = index.signed_by(keyid=honest.keys["data-engineer"].keyid)
    assert [(r["runId"], [a["stage"] for a in r["attestations"]]) for r in signed] == [
        ("run-a", ["ingest", "split"]),
        ("run-b", ["ingest"]),
    ]
    assert index.signed_by(keyid=honest.keys["owner"].keyid) == []
    assert index.signed_by(identity="someone@example.org") == []


def test_diff_of_two_runs(honest: Pipeline) -> None:
    honest.sign("ingest", run_id="run-b")
    honest.sign("split", run_id="run-b")
    for role in ("ml-engineer", "ml-reviewer"):
        honest.sign("train", run_id="run-b", signer=role, metrics={"mae": 1.5})
    index = _index(honest)
    diff = diff_runs(index, "run-a", "run-b")
    assert not diff["identical"]
    by_stage = {s["stage"]: s for s in diff["stages"]}
    assert by_stage["package"] == {"stage": "package", "onlyIn": "run-a"}
    assert by_stage["train"]["metrics"] == {"mae": {"a": None, "b": 1.5}}
    assert "ingest" not in by_stage and "split" not in by_stage
    assert diff_runs(index, "run-a", "run-a")["identical"]


def test_a_malformed_bundle_is_recorded_not_fatal(honest: Pipeline) -> None:
    (honest.store.run_dir("run-a") / "evil.deadbeef.sigstore.json").write_text("{not json")
    build = build_index(honest.store)
    assert (build.attestations, build.malformed) == (6, 1)
    run = _index(honest).run("run-a")
    [bad] = [s for s in run["stages"] if s["error"]]
    assert bad["stage"] == "evil" and bad["file"].endswith("evil.deadbeef.sigstore.json")
    assert _index(honest).runs()[0]["malformed"] == 1


def test_the_index_follows_new_attestations(pipeline: Pipeline) -> None:
    pipeline.sign("ingest")
    assert ensure_index(pipeline.store) is not None
    assert ensure_index(pipeline.store) is None  # fresh: not rebuilt
    pipeline.sign("split")
    build = ensure_index(pipeline.store)
    assert build is not None and build.attestations == 2
    assert {s["stage"] for s in _index(pipeline).run("run-a")["stages"]} == {"ingest", "split"}


def _tamper(path: Path) -> None:
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE attestations SET keyid = 'evil', stage = 'forged'")
        connection.execute("DELETE FROM digests")
        connection.execute("INSERT INTO runs(run_id) VALUES ('run-fake')")
    connection.close()


def test_a_tampered_index_never_changes_a_verification(
    honest: Pipeline, make_pipeline: Callable[..., Pipeline]
) -> None:
    before = honest.verify()
    build_index(honest.store)
    _tamper(index_path(honest.store))
    after = honest.verify()
    assert before.passed and after.passed
    assert after.to_json()["checks"] == before.to_json()["checks"]
    # A denied run stays denied, whatever the index claims.
    partial = make_pipeline("partial").run(skip=("package",))
    denied = partial.verify()
    build_index(partial.store)
    _tamper(index_path(partial.store))
    assert not denied.passed and not partial.verify().passed


def test_a_query_is_only_as_good_as_the_index_and_reindex_repairs_it(honest: Pipeline) -> None:
    build_index(honest.store)
    _tamper(index_path(honest.store))
    tampered = AttestationIndex.open(index_path(honest.store))
    assert "run-fake" in tampered.run_ids()  # the fingerprint still matches: no rebuild
    assert tampered.models_from(_sha(honest.ws / "data/raw.csv")) == []
    tampered.close()
    build_index(honest.store)
    repaired = AttestationIndex.open(index_path(honest.store))
    assert repaired.run_ids() == ["run-a"]
    assert len(repaired.models_from(_sha(honest.ws / "data/raw.csv"))) == 3


def test_parse_digest() -> None:
    assert parse_digest("sha256:" + "a" * 64) == ("sha256", "a" * 64)
    for bad in ("a" * 64, "sha256:XYZ", "sha256:", ""):
        with pytest.raises(BadInputError):
            parse_digest(bad)
