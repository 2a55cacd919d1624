"""``.intoto.jsonl``: a run's envelopes one per line, read back unchanged and still verifiable."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.cli import main as cli_main
from mlspec_attest.errors import MalformedDocumentError, UsageError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.jsonio import load_file
from mlspec_attest.formats.statement import StageStatement
from mlspec_attest.interop.intoto import export_jsonl, parse_jsonl, read_jsonl, write_jsonl

from ..support import STAGES, Pipeline


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Run]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run ``mlspec-attest`` in-process, with ``export`` registered as cli/main.py will.

    (No in-toto needed: ``export jsonl`` copies envelopes.)
    """
    monkeypatch.setitem(
        cli_main.COMMANDS,
        "export",
        cli_main.COMMANDS.get("export", ("export_cmd", "export", "Export a run for other tools.")),
    )

    def run(*args: str | Path) -> Run:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            cli_main.main([str(a) for a in args])
        out, err = capsys.readouterr()
        code = info.value.code
        return Run(code if isinstance(code, int) else 1, out, err)

    return run


def stored_bundles(p: Pipeline) -> list[Bundle]:
    run_dir = p.store.run_dir(p.run_id)
    return [Bundle.from_json(load_file(path)) for path in sorted(run_dir.iterdir())]


def test_export_jsonl_cli(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    out = tmp_path / "run-a.intoto.jsonl"
    result = cli("export", "jsonl", "--store", honest.store_path, "--out", out, "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["format"] == "intoto-jsonl"
    assert doc["runId"] == "run-a"
    bundles = stored_bundles(honest)
    assert doc["envelopes"] == len(bundles) == sum(len(s.signers) for s in STAGES.values())

    lines = out.read_bytes().splitlines()
    assert len(lines) == len(bundles)
    for line, bundle in zip(lines, bundles, strict=True):
        assert json.loads(line) == bundle.envelope.to_json()  # the stored envelope, unchanged
        assert b"\n" not in line and b": " not in line  # compact, one per line

    envelopes = read_jsonl(out)
    assert envelopes == [b.envelope for b in bundles]
    functionaries = honest.signed.policy.functionaries.values()
    for envelope in envelopes:
        assert envelope.payload_type == INTOTO_PAYLOAD_TYPE
        statement = StageStatement.from_payload(envelope.payload)
        allowed = honest.signed.policy.stage(statement.name)
        assert allowed is not None
        assert any(
            envelope.verified_by(f.key) for f in functionaries if f.name in allowed.functionaries
        )


def test_export_jsonl_text_and_run_selection(
    cli: Cli,
    honest: Pipeline,
    tmp_path: Path,
) -> None:
    honest.sign("ingest", run_id="run-b")
    out = tmp_path / "b.intoto.jsonl"
    ambiguous = cli("export", "jsonl", "--store", honest.store_path, "--out", out)
    assert ambiguous.code == 2
    result = cli("export", "jsonl", "--store", honest.store_path, "--run-id", "run-b", "--out", out)
    assert result.code == 0, result.err
    assert result.out.strip() == f"wrote 1 envelope(s) of run run-b to {out}"
    assert len(read_jsonl(out)) == 1


def test_export_jsonl_refuses_damaged_bundle(honest: Pipeline, tmp_path: Path) -> None:
    honest.bundle_path("split").write_text("{broken")
    with pytest.raises(MalformedDocumentError, match="split"):
        export_jsonl(honest.store, tmp_path / "x.intoto.jsonl", run_id=honest.run_id)
    assert not (tmp_path / "x.intoto.jsonl").exists()


def test_round_trip_and_bundle_lines(honest: Pipeline, tmp_path: Path) -> None:
    bundles = stored_bundles(honest)
    path = tmp_path / "all.intoto.jsonl"
    assert write_jsonl((b.envelope for b in bundles), path) == len(bundles)
    # Blank lines are skipped; a whole Sigstore bundle on a line is accepted too.
    data = path.read_bytes() + b"\n" + json.dumps(bundles[0].to_json()).encode() + b"\n"
    assert parse_jsonl(data) == [*(b.envelope for b in bundles), bundles[0].envelope]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"payloadType": "x"}\n{not json}\n', "line 1"),
        (b"\n\n[1, 2]\n", "line 3"),
        (b'{"a": 1, "a": 2}\n', "duplicate"),
    ],
)
def test_parse_errors_name_the_line(data: bytes, message: str) -> None:
    with pytest.raises(MalformedDocumentError, match=message):
        parse_jsonl(data, what="x.intoto.jsonl")


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MalformedDocumentError, match="not found"):
        read_jsonl(tmp_path / "none.intoto.jsonl")


def test_export_jsonl_unknown_run(honest: Pipeline, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        export_jsonl(honest.store, tmp_path / "x", run_id="bad id")
