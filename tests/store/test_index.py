"""The query index: built from real stores, answering each question, never trusted by verify.

Every test taking ``backend`` runs twice: on the SQLite index in the store and on a real
PostgreSQL server the session starts (tests/postgres_server.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mlspec_attest.errors import BadInputError
from mlspec_attest.store import index as index_module
from mlspec_attest.store.index import ensure_index, index_path, update_index
from mlspec_attest.store.index_query import parse_digest
from mlspec_attest.store.run_diff import diff_runs
from mlspec_attest.verify.summary import SummaryOptions, WrittenSummary, write_summary
from tests.store.conftest import Backend
from tests.support import KeyPair, Pipeline


def _sha(path: Path) -> tuple[str, str]:
    return "sha256", hashlib.sha256(path.read_bytes()).hexdigest()


def _product(backend: Backend, p: Pipeline, stage: str) -> tuple[str, str]:
    run = backend.index(p.store).run(p.run_id)
    product = next(s for s in run["stages"] if s["stage"] == stage)["products"][0]
    return "sha256", product["digest"]["sha256"]


def test_index_records_every_attestation_and_its_signer(honest: Pipeline, backend: Backend) -> None:
    build = backend.build(honest.store)
    assert (build.attestations, build.summaries, build.malformed) == (5, 0, 0)
    assert build.full and build.added == 5
    run = backend.index(honest.store).run("run-a")
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


def test_models_trained_on_a_dataset_follow_split_train_package(
    honest: Pipeline, backend: Backend
) -> None:
    index = backend.index(honest.store)
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


def test_datasets_behind_a_model_digest(honest: Pipeline, backend: Backend) -> None:
    index = backend.index(honest.store)
    package = _product(backend, honest, "package")
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


def test_runs_a_key_signed(honest: Pipeline, backend: Backend) -> None:
    honest.sign("ingest", run_id="run-b")
    index = backend.index(honest.store)
    signed = index.signed_by(keyid=honest.keys["data-engineer"].keyid)
    assert [(r["runId"], [a["stage"] for a in r["attestations"]]) for r in signed] == [
        ("run-a", ["ingest", "split"]),
        ("run-b", ["ingest"]),
    ]
    assert index.signed_by(keyid=honest.keys["owner"].keyid) == []
    assert index.signed_by(identity="someone@example.org") == []


def test_diff_of_two_runs(honest: Pipeline, backend: Backend) -> None:
    honest.sign("ingest", run_id="run-b")
    honest.sign("split", run_id="run-b")
    for role in ("ml-engineer", "ml-reviewer"):
        honest.sign("train", run_id="run-b", signer=role, metrics={"mae": 1.5})
    index = backend.index(honest.store)
    diff = diff_runs(index, "run-a", "run-b")
    assert not diff["identical"]
    by_stage = {s["stage"]: s for s in diff["stages"]}
    assert by_stage["package"] == {"stage": "package", "onlyIn": "run-a"}
    assert by_stage["train"]["metrics"] == {"mae": {"a": None, "b": 1.5}}
    assert "ingest" not in by_stage and "split" not in by_stage
    assert diff_runs(index, "run-a", "run-a")["identical"]


def test_a_malformed_bundle_is_recorded_not_fatal(honest: Pipeline, backend: Backend) -> None:
    (honest.store.run_dir("run-a") / "evil.deadbeef.sigstore.json").write_text("{not json")
    build = backend.build(honest.store)
    assert (build.attestations, build.malformed) == (6, 1)
    run = backend.index(honest.store).run("run-a")
    [bad] = [s for s in run["stages"] if s["error"]]
    assert bad["stage"] == "evil" and bad["file"].endswith("evil.deadbeef.sigstore.json")
    assert backend.index(honest.store).runs()[0]["malformed"] == 1


def test_a_file_name_that_is_no_utf8_is_left_out_not_fatal(
    honest: Pipeline, backend: Backend
) -> None:
    # the index holds text: such a name made every query exit 70 (UnicodeEncodeError)
    run = os.fsencode(honest.store.run_dir("run-a"))
    (Path(os.fsdecode(run + b"/evil\xff.sigstore.json"))).write_bytes(b"{not json")
    build = backend.build(honest.store)
    assert (build.attestations, build.malformed) == (5, 0)  # the five honest ones
    assert backend.index(honest.store).runs()[0]["malformed"] == 0


def _summary(p: Pipeline, signer: KeyPair, out: Path) -> WrittenSummary:
    """Verify ``p``'s run and keep its signed verification summary in the store."""
    report = p.verify()
    options = SummaryOptions("https://models.example/diabetes", "policy.signed.json")
    return write_summary(report, options, signer.signer, p.store, out)


def test_verification_summaries_are_indexed_and_queried(
    honest: Pipeline, backend: Backend, keys: dict[str, KeyPair], tmp_path: Path
) -> None:
    written = _summary(honest, keys["owner"], tmp_path / "run-a.vsa.json")
    build = ensure_index(honest.store, backend.url)
    assert build is not None and build.summaries == 1 and build.malformed == 0
    index = backend.index(honest.store)
    [summary] = index.run("run-a")["summaries"]
    assert (summary["result"], summary["digest"]) == ("PASSED", written.digest)
    assert "sha256:" + summary["policyDigest"] == honest.signed.digest  # the VSA spells it bare
    assert summary["signer"]["keyid"] == keys["owner"].keyid
    assert summary["file"] == f"summaries/{written.digest}.sigstore.json"
    assert summary["subjects"] == [
        {"name": s.name, "role": s.name, "digest": dict(sorted(s.digest.items()))}
        for s in written.summary.subjects
    ]
    assert [s["name"] for s in summary["subjects"]] == ["model", "train-data"]
    model = summary["subjects"][0]
    expected_inputs = sorted(
        ({"stage": i.stage, "uri": i.uri, "sha256": i.sha256} for i in written.summary.inputs),
        key=lambda i: (i["stage"], i["uri"], i["sha256"]),
    )
    assert summary["inputs"] == expected_inputs and len(expected_inputs) == 5
    # every input names a stage attestation the index holds, by its payload digest
    payloads = {s["payloadDigest"] for s in index.run("run-a")["stages"]}
    assert {"sha256:" + i["sha256"] for i in summary["inputs"]} == payloads
    [listed] = index.runs()[0]["summaries"]
    assert (listed["result"], listed["digest"]) == ("PASSED", written.digest)
    # a summary's model subject leads to the data behind it
    [lineage] = index.inputs_of(("sha256", model["digest"]["sha256"]), "run-a")
    assert {s["stage"] for s in lineage["stages"]} == {"package", "train", "split", "ingest"}


def test_the_index_follows_new_attestations(pipeline: Pipeline, backend: Backend) -> None:
    pipeline.sign("ingest")
    first = ensure_index(pipeline.store, backend.url)
    assert first is not None and first.full
    assert ensure_index(pipeline.store, backend.url) is None  # fresh: nothing to do
    pipeline.sign("split")
    build = ensure_index(pipeline.store, backend.url)
    assert build is not None and not build.full
    assert (build.added, build.removed, build.attestations) == (1, 0, 2)
    index = backend.index(pipeline.store)
    assert {s["stage"] for s in index.run("run-a")["stages"]} == {"ingest", "split"}


def test_only_bundles_not_yet_indexed_are_read(
    honest: Pipeline, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.build(honest.store)
    read: list[str] = []
    real = index_module.read_stored

    def counting(path: Path, what: str) -> object:
        read.append(path.name)
        return real(path, what)

    monkeypatch.setattr(index_module, "read_stored", counting)
    honest.sign("ingest", run_id="run-b")
    build = ensure_index(honest.store, backend.url)
    assert build is not None and not build.full and build.added == 1
    assert read == [honest.bundle_path("ingest", run_id="run-b").name]


@pytest.mark.parametrize("per_directory", [True, False], ids=["per-directory", "whole-table"])
def test_incremental_updates_equal_a_full_rebuild(
    honest: Pipeline,
    backend: Backend,
    keys: dict[str, KeyPair],
    tmp_path: Path,
    per_directory: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The indexed files of changed directories are read one directory at a time, or (many
    # changed) the whole table at once: the same rows either way.
    monkeypatch.setattr(index_module, "DIR_QUERIES", 200 if per_directory else 0)
    backend.build(honest.store)
    # new bundles and a new run, a stored summary, a malformed file ...
    honest.sign("ingest", run_id="run-b")
    honest.sign("split", run_id="run-b")
    _summary(honest, keys["owner"], tmp_path / "vsa.json")
    (honest.store.run_dir("run-a") / "junk.sigstore.json").write_text("[]")
    # ... a file replaced by other bytes, and a run removed whole
    replaced = honest.bundle_path("split", run_id="run-b")
    replaced.write_bytes(honest.bundle_path("ingest", run_id="run-b").read_bytes())
    honest.sign("ingest", run_id="run-c")
    ensure_index(honest.store, backend.url)
    shutil.rmtree(honest.store.run_dir("run-c"))
    build = update_index(honest.store, backend.url)
    assert not build.full and (build.added, build.removed) == (0, 1)
    incremental = backend.dump(honest.store)
    assert [r[0] for r in incremental["runs"]] == ["run-a", "run-b"]
    assert incremental["orphan_digests"] == []
    assert backend.build(honest.store).full
    assert backend.dump(honest.store) == incremental
    split_b = next(
        s
        for s in backend.index(honest.store).run("run-b")["stages"]
        if s["file"].endswith(replaced.name)
    )
    assert split_b["stage"] == "ingest"  # what the file holds now, read again


def test_an_index_of_another_schema_version_is_rebuilt(
    pipeline: Pipeline, backend: Backend
) -> None:
    pipeline.sign("ingest")
    backend.build(pipeline.store)
    backend.sql(
        pipeline.store, "UPDATE meta SET value = 'mlspec-attest-index/v1' WHERE key = 'schema'"
    )
    pipeline.sign("split")
    build = ensure_index(pipeline.store, backend.url)
    assert build is not None and build.full and build.attestations == 2


def test_an_index_file_that_is_not_a_database_is_rebuilt(pipeline: Pipeline) -> None:
    pipeline.sign("ingest")
    index_path(pipeline.store).write_bytes(b"not a database, " * 512)
    build = ensure_index(pipeline.store)
    assert build is not None and build.full and build.attestations == 1


def test_a_tampered_index_never_changes_a_verification(
    honest: Pipeline, make_pipeline: Callable[..., Pipeline], backend: Backend
) -> None:
    before = honest.verify()
    backend.build(honest.store)
    backend.tamper(honest.store)
    after = honest.verify()
    assert before.passed and after.passed
    assert after.to_json()["checks"] == before.to_json()["checks"]
    # A denied run stays denied, whatever the index claims.
    partial = make_pipeline("partial").run(skip=("package",))
    denied = partial.verify()
    backend.build(partial.store)
    backend.tamper(partial.store)
    assert not denied.passed and not partial.verify().passed


def test_a_query_is_only_as_good_as_the_index_and_a_full_reindex_repairs_it(
    honest: Pipeline, backend: Backend
) -> None:
    backend.build(honest.store)
    backend.tamper(honest.store)
    tampered = backend.index(honest.store)
    assert "run-fake" in tampered.run_ids()  # the fingerprint still matches: no update
    assert tampered.models_from(_sha(honest.ws / "data/raw.csv")) == []
    tampered.close()
    # An incremental update reads only bundles it has not seen: it repairs nothing.
    assert not update_index(honest.store, backend.url).full
    assert "run-fake" in backend.index(honest.store).run_ids()
    backend.build(honest.store)
    repaired = backend.index(honest.store)
    assert repaired.run_ids() == ["run-a"]
    assert len(repaired.models_from(_sha(honest.ws / "data/raw.csv"))) == 3


def test_parse_digest() -> None:
    assert parse_digest("sha256:" + "a" * 64) == ("sha256", "a" * 64)
    for bad in ("a" * 64, "sha256:XYZ", "sha256:", ""):
        with pytest.raises(BadInputError):
            parse_digest(bad)
