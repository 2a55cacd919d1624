"""``store reindex`` and ``query``: exit codes and the versioned JSON of each answer, with the
index in the store (SQLite) and in a real PostgreSQL server (``--store-url``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.postgres_server import PostgresServer
from tests.support import Pipeline

SCHEMA = "https://mlspec-attest.dev/query/v1"


def where(p: Pipeline, url: str | None) -> list[str | Path]:
    """``--store`` and, for PostgreSQL, ``--store-url``."""
    return ["--store", p.store_path, *(["--store-url", url] if url else [])]


def test_reindex_then_runs(cli: Cli, honest: Pipeline, index_url: str | None) -> None:
    r = cli("store", "reindex", *where(honest, index_url), "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["attestations"], doc["malformed"], doc["full"], doc["added"]) == (5, 0, True, 5)
    r = cli("query", "runs", *where(honest, index_url), "--json")
    assert r.code == 0 and r.clean
    doc = r.json()
    assert (doc["schemaVersion"], doc["query"], doc["reindexed"]) == (SCHEMA, "runs", False)
    assert [(x["runId"], x["stages"]) for x in doc["result"]] == [("run-a", 4)]
    text = cli("query", "runs", *where(honest, index_url))
    assert text.code == 0 and "run-a" in text.out


def test_reindex_is_incremental_unless_full(
    cli: Cli, honest: Pipeline, index_url: str | None
) -> None:
    assert cli("store", "reindex", *where(honest, index_url)).code == 0
    honest.sign("ingest", run_id="run-b")
    r = cli("store", "reindex", *where(honest, index_url), "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["full"], doc["added"], doc["removed"], doc["attestations"]) == (False, 1, 0, 6)
    r = cli("store", "reindex", *where(honest, index_url), "--full")
    assert r.code == 0 and "rebuilt: 6 attestations" in r.out


def test_query_rebuilds_a_missing_index(cli: Cli, honest: Pipeline, index_url: str | None) -> None:
    r = cli("query", "run", "run-a", *where(honest, index_url), "--json")
    assert r.code == 0 and r.json()["reindexed"] is True
    assert "rebuilt" in r.err
    stages = {s["stage"] for s in r.json()["result"]["stages"]}
    assert stages == {"ingest", "split", "train", "package"}
    text = cli("query", "run", "run-a", *where(honest, index_url))
    assert "data/split/train.csv" in text.out and "package" in text.out
    honest.sign("ingest", run_id="run-b")
    r = cli("query", "run", "run-b", *where(honest, index_url), "--json")
    assert r.code == 0 and r.json()["reindexed"] is True
    assert "updated (+1 -0 files)" in r.err


def test_models_and_datasets(cli: Cli, honest: Pipeline, index_url: str | None) -> None:
    raw = "sha256:" + hashlib.sha256((honest.ws / "data/raw.csv").read_bytes()).hexdigest()
    r = cli("query", "models", "--dataset", raw, *where(honest, index_url), "--json")
    assert r.code == 0
    models = r.json()["result"]
    assert [m["name"] for m in models] == ["model", "model", "dist/model"]
    package = "sha256:" + models[-1]["digest"]["sha256"]
    r = cli("query", "datasets", "--model", package, *where(honest, index_url))
    assert r.code == 0 and "read data/raw.csv" in r.out and "from ingest" in r.out


def test_signed_by_and_diff(cli: Cli, honest: Pipeline, index_url: str | None) -> None:
    key = honest.keys["release-engineer"].pub_path
    r = cli("query", "signed-by", "--key", key, *where(honest, index_url), "--json")
    assert r.code == 0
    assert r.json()["result"] == [
        {"runId": "run-a", "attestations": [r.json()["result"][0]["attestations"][0]]}
    ]
    assert r.json()["result"][0]["attestations"][0]["stage"] == "package"
    honest.sign("ingest", run_id="run-b")
    r = cli("query", "diff", "run-a", "run-b", *where(honest, index_url), "--json")
    assert r.code == 0 and r.json()["reindexed"] is True
    assert {s["stage"] for s in r.json()["result"]["stages"]} == {"split", "train", "package"}
    text = cli("query", "diff", "run-a", "run-b", *where(honest, index_url))
    assert "split: only in run-a" in text.out


def test_bad_input_is_exit_3_and_usage_exit_2(
    cli: Cli, honest: Pipeline, index_url: str | None
) -> None:
    store = where(honest, index_url)
    r = cli("query", "run", "no-such-run", *store, "--json")
    assert (r.code, r.json()["error"]["kind"]) == (3, "bad-input") and r.clean
    r = cli("query", "models", "--dataset", "md5:zz", *store)
    assert r.code == 3 and "not a digest" in r.err
    r = cli("query", "datasets", *store)
    assert r.code == 2
    r = cli("query", "signed-by", "--key", honest.ws / "data/raw.csv", *store)
    assert r.code == 3 and r.clean
    r = cli("query", "diff", "run-a", "nope", *store)
    assert r.code == 3
    empty = ["--store", honest.root / "empty", *store[2:]]
    r = cli("store", "reindex", *empty)
    assert r.code == 3 and "not an attestation store" in r.err


def test_the_index_url_comes_from_the_environment(
    cli: Cli,
    honest: Pipeline,
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLSPEC_ATTEST_STORE_URL", postgres_server.url)
    r = cli("store", "reindex", "--store", honest.store_path, "--json")
    assert r.code == 0, r.err
    assert r.json()["index"].startswith("postgresql://mlspec@")
    assert not (honest.store_path / "index.sqlite3").exists()


@pytest.mark.parametrize(
    ("url", "code", "says"),
    [
        ("mysql://u:pw-one@h/db", 3, "is not an index URL scheme"),
        ("postgresql://u:pw-two%zz@h/db", 3, "not a PostgreSQL URL"),
        ("postgresql://u:pw-three@127.0.0.1:1/db", 4, "cannot connect to the index database"),
    ],
)
def test_a_bad_url_or_a_server_that_refuses_is_a_clear_error(
    cli: Cli, honest: Pipeline, url: str, code: int, says: str
) -> None:
    for command in (["store", "reindex"], ["query", "runs"]):
        r = cli(*command, "--store", honest.store_path, "--store-url", url, "--json")
        assert (r.code, r.clean) == (code, True), r.err
        assert says in r.json()["error"]["message"]
        assert "pw-" not in r.out + r.err


def test_a_wrong_password_is_refused_without_showing_it(
    cli: Cli, honest: Pipeline, postgres_server: PostgresServer
) -> None:
    url = postgres_server.tcp_url("wrong-secret")
    r = cli("query", "runs", "--store", honest.store_path, "--store-url", url, "--json")
    assert (r.code, r.clean) == (4, True)
    assert "password authentication failed" in r.json()["error"]["message"]
    assert "wrong-secret" not in r.out + r.err
    ok = cli(
        "query", "runs", "--store", honest.store_path, "--store-url", postgres_server.tcp_url()
    )
    assert ok.code == 0 and "run-a" in ok.out
