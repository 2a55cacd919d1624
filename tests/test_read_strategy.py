"""The read strategy: measured by `tune`, saved, trusted only for this machine, never changing a digest."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlspec_attest.cli.main import cli
from mlspec_attest.digest import read_strategy
from mlspec_attest.digest._reader import FileReader, open_regular
from mlspec_attest.digest.engine import digest_file, digest_shards
from mlspec_attest.digest.read_strategy import DEFAULT, ReadStrategy, document, load
from mlspec_attest.digest.tuning import measure
from mlspec_attest.formats.limits import MiB

STRATEGIES = [
    ReadStrategy(None, 64 * 1024, 4 * MiB, 1),
    ReadStrategy(None, 16 * MiB, 4 * MiB, 3),
    ReadStrategy(1 * MiB, 256 * 1024, 64 * 1024, 2),
    ReadStrategy(1 * MiB, 4 * MiB, 64 * MiB, None),
    DEFAULT,
]


@pytest.fixture(autouse=True)
def _fresh_current() -> object:
    read_strategy.current.cache_clear()
    yield None
    read_strategy.current.cache_clear()


def saved(path: Path, tuned: ReadStrategy, changes: dict[str, object] | None = None) -> Path:
    doc = document(tuned, "2026-12-07T00:00:00Z", [])
    doc.update(changes or {})
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.describe())
def test_every_strategy_gives_the_same_digests(tmp_path: Path, strategy: ReadStrategy) -> None:
    data = os.urandom(3 * MiB + 12345)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    reader = FileReader("sha256", None, strategy)
    fd, st = open_regular(str(path))
    try:
        assert reader.digest_fd(fd, st.st_size, str(path)) == (
            hashlib.sha256(data).digest(),
            len(data),
        )
    finally:
        os.close(fd)
    for start, end in [(0, MiB + 7), (5, 3 * MiB), (MiB, len(data))]:
        expected = hashlib.sha256(data[start:end]).digest()
        assert reader.digest_range(str(path), start, end) == expected


def test_the_engine_uses_the_saved_strategy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tuned = ReadStrategy(1 * MiB, 64 * 1024, 64 * 1024, 1)
    monkeypatch.setenv(read_strategy.ENV, str(saved(tmp_path / "rs.json", tuned)))
    assert read_strategy.current().strategy == tuned
    assert FileReader("sha256", None).strategy == tuned
    data = os.urandom(2 * MiB + 1)
    (tmp_path / "m.bin").write_bytes(data)
    assert digest_file(str(tmp_path / "m.bin"))[0] == hashlib.sha256(data).digest()
    shards = digest_shards([str(tmp_path / "m.bin")], "sha256", MiB)
    assert shards[0][0] == [hashlib.sha256(data[k : k + MiB]).digest() for k in (0, MiB, 2 * MiB)]


def test_no_mmap_overrides_a_saved_strategy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(read_strategy.ENV, str(saved(tmp_path / "rs.json", DEFAULT)))
    monkeypatch.setenv("MLSPEC_ATTEST_NO_MMAP", "1")
    loaded = read_strategy.current()
    assert loaded.strategy.mmap_min is None
    assert "MLSPEC_ATTEST_NO_MMAP" in loaded.source


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"machine": {"cpu": "another"}}, "another machine"),
        ({"schema": "https://example.com/x"}, "not a"),
        ({"strategy": {**DEFAULT._asdict(), "chunk": 3}}, "'chunk' is 3"),
        ({"strategy": {**DEFAULT._asdict(), "chunk": True}}, "'chunk' is True"),
        ({"strategy": {**DEFAULT._asdict(), "mmap_min": 1 << 40}}, "'mmap_min'"),
        ({"strategy": {**DEFAULT._asdict(), "shard_workers": 0}}, "'shard_workers' is 0"),
        ({"strategy": {**DEFAULT._asdict(), "extra": 1}}, "exactly"),
        ({"strategy": [1, 2]}, "exactly"),
    ],
)
def test_a_doubtful_file_is_ignored(tmp_path: Path, change: dict[str, object], reason: str) -> None:
    tuned = ReadStrategy(None, 1 * MiB, 4 * MiB, 1)
    loaded = load(saved(tmp_path / "rs.json", tuned, change))
    assert loaded.strategy == DEFAULT
    assert reason in loaded.source


def test_unreadable_files_are_ignored_with_a_reason(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text(" " * (read_strategy.MAX_FILE_BYTES + 1) + "{}")
    assert "larger than" in load(big).source
    dup = tmp_path / "dup.json"
    dup.write_text('{"schema": 1, "schema": 2}')
    assert load(dup).strategy == DEFAULT and "ignored" in load(dup).source
    assert "no " in load(tmp_path / "missing.json").source
    assert load(None).strategy == DEFAULT


def test_measure_picks_a_valid_strategy_that_round_trips(tmp_path: Path) -> None:
    lines: list[str] = []
    result = measure(tmp_path, 64 * MiB, 1, lines.append)
    questions = {t["question"] for t in result.timings}
    assert {"large file", "shard threads"} <= questions
    assert sum("<- chosen" in line for line in lines) == len(questions)
    assert not list(tmp_path.iterdir())  # the scratch file is gone
    path = tmp_path / "rs.json"
    path.write_text(json.dumps(result.document()))
    assert load(path).strategy == result.strategy
    assert result.strategy.shard_workers is not None


def test_tune_cli_saves_and_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "cache" / "rs.json"
    monkeypatch.setenv(read_strategy.ENV, str(target))
    runner = CliRunner()
    out = runner.invoke(cli, ["tune", "--size-mib", "64", "--reps", "1", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["saved"] == str(target) and target.exists()
    read_strategy.current.cache_clear()
    shown = runner.invoke(cli, ["tune", "--show", "--json"])
    assert json.loads(shown.output)["strategy"] == doc["strategy"]
    assert json.loads(shown.output)["source"].startswith("measured ")


def test_tune_refuses_a_small_scratch_file_and_a_bad_directory(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["tune", "--size-mib", "8"]).exit_code == 2
    (tmp_path / "file").write_text("x")
    bad = runner.invoke(cli, ["tune", "--dir", str(tmp_path / "file" / "sub"), "--dry-run"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
