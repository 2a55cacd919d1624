"""``store reindex`` and ``query``: exit codes and the versioned JSON of each answer."""

from __future__ import annotations

import hashlib

from tests.cli.conftest import Cli
from tests.support import Pipeline

SCHEMA = "https://mlspec-attest.dev/query/v1"


def test_reindex_then_runs(cli: Cli, honest: Pipeline) -> None:
    r = cli("store", "reindex", "--store", honest.store_path, "--json")
    assert r.code == 0, r.err
    assert r.json()["attestations"] == 5 and r.json()["malformed"] == 0
    r = cli("query", "runs", "--store", honest.store_path, "--json")
    assert r.code == 0 and r.clean
    doc = r.json()
    assert (doc["schemaVersion"], doc["query"], doc["reindexed"]) == (SCHEMA, "runs", False)
    assert [(x["runId"], x["stages"]) for x in doc["result"]] == [("run-a", 4)]
    text = cli("query", "runs", "--store", honest.store_path)
    assert text.code == 0 and "run-a" in text.out


def test_query_rebuilds_a_missing_index(cli: Cli, honest: Pipeline) -> None:
    r = cli("query", "run", "run-a", "--store", honest.store_path, "--json")
    assert r.code == 0 and r.json()["reindexed"] is True
    assert "rebuilt" in r.err
    stages = {s["stage"] for s in r.json()["result"]["stages"]}
    assert stages == {"ingest", "split", "train", "package"}
    text = cli("query", "run", "run-a", "--store", honest.store_path)
    assert "data/split/train.csv" in text.out and "package" in text.out


def test_models_and_datasets(cli: Cli, honest: Pipeline) -> None:
    raw = "sha256:" + hashlib.sha256((honest.ws / "data/raw.csv").read_bytes()).hexdigest()
    r = cli("query", "models", "--dataset", raw, "--store", honest.store_path, "--json")
    assert r.code == 0
    models = r.json()["result"]
    assert [m["name"] for m in models] == ["model", "model", "dist/model"]
    package = "sha256:" + models[-1]["digest"]["sha256"]
    r = cli("query", "datasets", "--model", package, "--store", honest.store_path)
    assert r.code == 0 and "read data/raw.csv" in r.out and "from ingest" in r.out


def test_signed_by_and_diff(cli: Cli, honest: Pipeline) -> None:
    key = honest.keys["release-engineer"].pub_path
    r = cli("query", "signed-by", "--key", key, "--store", honest.store_path, "--json")
    assert r.code == 0
    assert r.json()["result"] == [
        {"runId": "run-a", "attestations": [r.json()["result"][0]["attestations"][0]]}
    ]
    assert r.json()["result"][0]["attestations"][0]["stage"] == "package"
    honest.sign("ingest", run_id="run-b")
    r = cli("query", "diff", "run-a", "run-b", "--store", honest.store_path, "--json")
    assert r.code == 0 and r.json()["reindexed"] is True
    assert {s["stage"] for s in r.json()["result"]["stages"]} == {"split", "train", "package"}
    text = cli("query", "diff", "run-a", "run-b", "--store", honest.store_path)
    assert "split: only in run-a" in text.out


def test_bad_input_is_exit_3_and_usage_exit_2(cli: Cli, honest: Pipeline) -> None:
    store = honest.store_path
    r = cli("query", "run", "no-such-run", "--store", store, "--json")
    assert (r.code, r.json()["error"]["kind"]) == (3, "bad-input") and r.clean
    r = cli("query", "models", "--dataset", "md5:zz", "--store", store)
    assert r.code == 3 and "not a digest" in r.err
    r = cli("query", "datasets", "--store", store)
    assert r.code == 2
    r = cli("query", "signed-by", "--key", honest.ws / "data/raw.csv", "--store", store)
    assert r.code == 3 and r.clean
    r = cli("query", "diff", "run-a", "nope", "--store", store)
    assert r.code == 3
    r = cli("store", "reindex", "--store", honest.root / "empty")
    assert r.code == 3 and "not an attestation store" in r.err
