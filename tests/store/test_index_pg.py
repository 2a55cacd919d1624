"""The PostgreSQL index on a real server: the same answers as SQLite, one schema per store,
readers never see half an update, and bad URLs or servers are clear errors."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mlspec_attest.errors import BackendError, BadInputError, StoreError
from mlspec_attest.store.index import (
    build_index,
    ensure_index,
    index_location,
    store_id,
    update_index,
)
from mlspec_attest.store.index_pg import schema_name
from mlspec_attest.store.index_query import AttestationIndex
from mlspec_attest.store.run_diff import diff_runs
from mlspec_attest.verify.summary import SummaryOptions, write_summary
from tests.postgres_server import PASSWORD, PostgresServer
from tests.support import KeyPair, Pipeline


def _answers(index: AttestationIndex, p: Pipeline) -> dict[str, Any]:
    """Every kind of question, asked of one index."""
    raw = ("sha256", hashlib.sha256((p.ws / "data/raw.csv").read_bytes()).hexdigest())
    run = index.run("run-a")
    package = next(s for s in run["stages"] if s["stage"] == "package")["products"][0]
    model = ("sha256", package["digest"]["sha256"])
    return {
        "runs": index.runs(),
        "run": {r: index.run(r) for r in index.run_ids()},
        "models": index.models_from(raw),
        "datasets": index.inputs_of(model),
        "signed-by": {
            role: index.signed_by(keyid=key.keyid) for role, key in sorted(p.keys.items())
        },
        "diff": [diff_runs(index, a, b) for a in index.run_ids() for b in index.run_ids()],
    }


def test_both_backends_give_the_same_answers(
    honest: Pipeline, postgres_server: PostgresServer, keys: dict[str, KeyPair], tmp_path: Path
) -> None:
    # Run ids that sort one way by code point and another by language (the server's
    # database collates with ICU en-US), a malformed bundle, a summary, a re-signed stage.
    honest.sign("ingest", run_id="Run-B")
    honest.sign("train", run_id="Run-B", signer="ml-engineer", metrics={"mae": 2.0})
    honest.sign("ingest", run_id="run-a", signer="release-engineer", build=False)
    (honest.store.run_dir("run-a") / "zz.bad.sigstore.json").write_text("{")
    write_summary(
        honest.verify(),
        SummaryOptions("https://models.example/m", "policy.signed.json"),
        keys["owner"].signer,
        honest.store,
        tmp_path / "vsa.json",
    )
    answers = []
    for url in (None, postgres_server.url):
        ensure_index(honest.store, url)
        index = AttestationIndex(index_location(honest.store, url).reader())
        with index.snapshot():
            answers.append(_answers(index, honest))
        index.close()
    sqlite, postgres = answers
    assert [r["runId"] for r in sqlite["runs"]] == ["Run-B", "run-a"]
    # (the malformed bundle and the unauthorised ingest signer deny the run)
    assert sqlite["run"]["run-a"]["summaries"][0]["result"] == "FAILED"
    for kind in sqlite:
        assert postgres[kind] == sqlite[kind], kind


def test_two_stores_in_one_database_never_mix(
    make_pipeline: Any, postgres_server: PostgresServer
) -> None:
    url = postgres_server.url
    first, second = make_pipeline("first"), make_pipeline("second")
    first.sign("ingest", run_id="run-1")
    second.sign("ingest", run_id="run-2")
    second.sign("split", run_id="run-2")
    for p in (first, second):
        build_index(p.store, url)
    assert schema_name(store_id(first.store)) != schema_name(store_id(second.store))
    for p, runs in ((first, ["run-1"]), (second, ["run-2"])):
        location = index_location(p.store, url)
        state = location.state()
        assert state is not None and state.store == str(p.store.root.resolve())
        index = AttestationIndex(location.reader())
        assert index.run_ids() == runs
        index.close()


def test_a_full_rebuild_is_swapped_in_and_leaves_one_schema(
    pipeline: Pipeline, postgres_server: PostgresServer
) -> None:
    pipeline.sign("ingest")
    url = postgres_server.url
    build_index(pipeline.store, url)
    build_index(pipeline.store, url)
    schema = schema_name(store_id(pipeline.store))
    with psycopg.connect(url) as pg:
        names = pg.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (schema + "%",)
        ).fetchall()
    assert names == [(schema,)]


def test_a_reader_sees_one_state_while_the_index_is_updated(
    pipeline: Pipeline, postgres_server: PostgresServer
) -> None:
    url = postgres_server.url
    pipeline.sign("ingest")
    build_index(pipeline.store, url)
    index = AttestationIndex(index_location(pipeline.store, url).reader())
    with index.snapshot():
        assert index.run_ids() == ["run-a"]
        pipeline.sign("ingest", run_id="run-b")
        build = update_index(pipeline.store, url)  # commits while the reader is inside
        assert not build.full and build.added == 1
        assert index.run_ids() == ["run-a"]
        assert index.runs()[0]["attestations"] == 1
    assert index.run_ids() == ["run-a", "run-b"]
    index.close()


def test_a_damaged_index_is_an_error_until_a_full_reindex_repairs_it(
    pipeline: Pipeline, postgres_server: PostgresServer
) -> None:
    url = postgres_server.url
    pipeline.sign("ingest")
    build_index(pipeline.store, url)
    schema = schema_name(store_id(pipeline.store))
    with psycopg.connect(url) as pg:
        pg.execute(f'DROP TABLE "{schema}".meta')
        pg.execute(f'CREATE TABLE "{schema}".meta (junk int)')
    with pytest.raises(StoreError, match="failed") as info:
        ensure_index(pipeline.store, url)
    assert info.value.remedy is not None and "in full" in info.value.remedy
    assert build_index(pipeline.store, url).attestations == 1
    assert ensure_index(pipeline.store, url) is None


def test_urls_that_are_not_postgresql_are_bad_input(pipeline: Pipeline) -> None:
    pipeline.sign("ingest")
    for url in ("mysql://u@h/db", "sqlite:///x.db", "/tmp/index.sqlite3"):
        with pytest.raises(BadInputError, match="not an index URL scheme"):
            ensure_index(pipeline.store, url)
    with pytest.raises(BadInputError, match="not a PostgreSQL URL") as info:
        ensure_index(pipeline.store, "postgresql://u:s3cr%zzet@localhost/db")
    assert "s3cr" not in info.value.message
    with pytest.raises(BadInputError, match="port 'http' is not a number"):
        ensure_index(pipeline.store, "postgresql://u@localhost:http/db")


def test_a_server_that_refuses_is_unavailable(
    pipeline: Pipeline, postgres_server: PostgresServer
) -> None:
    pipeline.sign("ingest")
    with pytest.raises(StoreError, match="cannot connect to the index database") as info:
        ensure_index(pipeline.store, "postgresql://u:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in info.value.message and "Connection refused" in info.value.message
    wrong = postgres_server.tcp_url("not-the-password")
    with pytest.raises(StoreError, match="password authentication failed") as info:
        ensure_index(pipeline.store, wrong)
    assert "not-the-password" not in info.value.message + str(info.value.remedy)
    assert ensure_index(pipeline.store, postgres_server.tcp_url(PASSWORD)) is not None


def test_without_psycopg_the_error_names_the_extra(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.sign("ingest")
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(BackendError, match="needs psycopg") as info:
        ensure_index(pipeline.store, "postgresql://u@localhost/db")
    assert info.value.remedy == "pip install 'mlspec-attest[postgres]'"
