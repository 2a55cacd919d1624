"""Attacker-chosen text cannot forge, drive or reorder lines of any human output.

``verify``, ``query`` and ``model`` were fixed first (tests/cli/test_verify_hostile_names.py);
these are the other renderers: ``inspect``, ``log``, ``gate``, ``export``, ``policy test``
and ``show``, ``analyze``, ``schema infer``, ``validate``, ``leakage``, ``metrics``,
``objectives``, ``bundle verify``, error messages (``emit_error``) and the progress bar.
Each hostile value (a newline followed by a forged verdict, an ESC sequence, a bidi override,
rich markup) is fed through the real command: the text output shows it escaped on one line,
the JSON output keeps it as it is.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.cli.progress import TerminalProgress
from mlspec_attest.formats.printable import printable
from mlspec_attest.formats.yamlio import load_yaml, plain
from mlspec_attest.log.writer import InferenceLog
from mlspec_attest.signing.keys import KeyType, generate_key, write_key_pair
from tests.cli.conftest import Cli, CliResult
from tests.cli.test_verify_hostile_names import FORGED, assert_terminal_safe
from tests.log import tamper
from tests.log.conftest import ORIGIN, request
from tests.serve.test_gate_support import (
    POLICY_DIGEST,
    RESOURCE_URI,
    make_model_dir,
    signed,
    summary_for,
    verifier,
    write_keys,
)
from tests.support import Pipeline, rewrite_payload

#: A newline and a forged verdict, a screen-clearing escape, a bidi override, rich markup.
HOSTILE = f"evil\n{FORGED}\x1b[2J\u202e[red]x"  # no "/": it is also a file name
SHOWN = printable(HOSTILE)
#: The same without a newline: what a file name quoted in a message may hold.
NAME = "z\x1b[2J\u202e[red]x"


def test_the_hostile_value_is_shown_escaped() -> None:
    assert printable(HOSTILE) == f"evil\\n{FORGED}\\x1b[2J\\u202e[red]x"


def shows(result: CliResult, shown: str = SHOWN) -> str:
    """The command's text output (stdout and stderr): it holds ``shown`` on one line, and
    no raw control character, and no line starts with the forgery."""
    text = result.out + result.err
    assert result.clean, text
    assert_terminal_safe(text)
    assert any(shown in line for line in text.split("\n")), text
    return text


# ------------------------------------------------------------------ inspect
def test_inspect_escapes_the_bundles_names(cli: Cli, honest: Pipeline) -> None:
    def hostile(statement: dict[str, Any]) -> None:
        statement["subject"][0]["name"] = HOSTILE
        statement["predicate"]["command"] = ["python", HOSTILE]

    bundle = honest.bundle_path("ingest")
    rewrite_payload(bundle, hostile)
    r = cli("inspect", bundle)
    assert r.code == 0
    shows(r)
    assert f"product   {SHOWN}  sha256:" in r.out and f"command: python {SHOWN}" in r.out
    statement = cli("inspect", bundle, "--json").json()["statement"]
    assert statement["subject"][0]["name"] == HOSTILE
    assert statement["predicate"]["command"] == ["python", HOSTILE]


# ------------------------------------------------------------------ error messages
def test_an_error_message_shows_a_quoted_name_escaped(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / f"{NAME}.json"
    path.write_text("[]")
    r = cli("inspect", path)
    assert r.code == 3
    shows(r, printable(f"error: {path}: not a bundle"))
    assert "\\x1b[2J\\u202e[red]x" in r.err
    doc = cli("inspect", path, "--json").json()
    assert doc["error"]["message"].startswith(f"{path}: not a bundle")


def test_an_error_message_keeps_its_own_lines(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / f"{NAME}.json"
    path.write_text(json.dumps({"schemaVersion": 2, "metrics": {}}))
    r = cli("metrics", "validate", path)
    assert r.code == 3 and r.clean
    lines = r.err.rstrip("\n").split("\n")
    assert len(lines) > 1 and all(line.startswith("  - ") for line in lines[1:])
    assert lines[0].startswith(f"error: metrics file {printable(path)}: not a valid")
    assert_terminal_safe(r.err)


# ------------------------------------------------------------------ log
@pytest.fixture
def hostile_log(tmp_path: Path) -> tuple[Path, Path]:
    """A log whose record 5 has a hostile request id and path, and its public key."""
    signer = generate_key(KeyType.ED25519)
    _, pub = write_key_pair(signer, tmp_path / "logkey")
    directory = tmp_path / "log"
    with InferenceLog.open(directory, signer, origin=ORIGIN, checkpoint_interval_s=0) as log:
        for i in range(8):
            hostile = {"request_id": HOSTILE, "path": f"/v2/{HOSTILE}"} if i == 5 else {}
            log.append(**request(i, **hostile))
    return directory, pub


def test_log_trace_escapes_the_records_fields(cli: Cli, hostile_log: tuple[Path, Path]) -> None:
    directory, pub = hostile_log
    r = cli("log", "trace", HOSTILE, "--log", directory, "--key", pub)
    assert r.code == 0
    text = shows(r)
    assert f"request {SHOWN} is record 5" in text and f"POST /v2/{SHOWN} -> 200" in text
    doc = cli("log", "trace", HOSTILE, "--log", directory, "--key", pub, "--json").json()
    assert doc["requestId"] == HOSTILE and doc["record"]["path"] == f"/v2/{HOSTILE}"


def test_log_verify_escapes_a_findings_request_id(cli: Cli, hostile_log: tuple[Path, Path]) -> None:
    directory, pub = hostile_log
    tamper.replace_in_record(directory, 5, b"python-httpx", b"pYthon-httpx")
    r = cli("log", "verify", directory, "--key", pub, "--exact")
    assert r.code == 1
    shows(r, f"problem: edited seq 5 (request {SHOWN})")
    doc = cli("log", "verify", directory, "--key", pub, "--exact", "--json").json()
    assert [f["requestId"] for f in doc["findings"]] == [HOSTILE]


def test_log_prove_check_escapes_the_proofs_request_id(
    cli: Cli, hostile_log: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, pub = hostile_log
    r = cli("log", "prove", HOSTILE, "--log", directory, "--key", pub)
    assert r.code == 0
    shows(r, f"inclusion proof: request {SHOWN} is record 5")
    proof = tmp_path / "proof.json"
    proof.write_text(cli("log", "prove", HOSTILE, "--log", directory, "--json").out)
    assert json.loads(proof.read_text())["requestId"] == HOSTILE
    checked = cli("log", "prove", "--log", directory, "--check", proof, "--key", pub)
    assert checked.code == 0
    shows(checked, f"inclusion proof PASSED: request {SHOWN} is record 5")


# ------------------------------------------------------------------ gate
class Gate:
    def __init__(self, root: Path) -> None:
        self.model = make_model_dir(root / "iris")
        self.pub = write_keys(verifier(), root / "keys", "verifier")[1]
        self.vsa = root / "iris.vsa.sigstore.json"
        details = {"runId": HOSTILE, "policy": "iris"}
        self.vsa.write_bytes(signed(summary_for(self.model, resource_uri=HOSTILE, details=details)))

    def __call__(self, cli: Cli, *extra: str) -> CliResult:
        return cli("gate", "--vsa", self.vsa, "--verifier-key", self.pub, "--model", self.model,
                   "--policy-digest", POLICY_DIGEST, *extra)  # fmt: skip


def test_gate_escapes_the_summarys_fields(cli: Cli, tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    r = gate(cli)
    assert r.code == 0
    shows(r, f"  run id         {SHOWN}")
    assert f"  resource       {SHOWN}" in r.out
    doc = gate(cli, "--json").json()
    assert doc["summary"]["runId"] == HOSTILE and doc["summary"]["resourceUri"] == HOSTILE


def test_gate_denied_escapes_the_reasons(cli: Cli, tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    r = gate(cli, "--resource-uri", RESOURCE_URI)
    assert r.code == 1
    shows(r, f"      found:    {SHOWN}")
    [reason] = gate(cli, "--resource-uri", RESOURCE_URI, "--json").json()["reasons"]
    assert reason["found"] == HOSTILE


# ------------------------------------------------------------------ export
def test_export_jsonl_escapes_the_file_name(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    out = tmp_path / f"{HOSTILE}.intoto.jsonl"
    r = cli("export", "jsonl", "--store", honest.store_path, "--run-id", honest.run_id,
            "--out", out)  # fmt: skip
    assert r.code == 0
    shows(r, printable(f"of run {honest.run_id} to {out}"))
    again = cli("export", "jsonl", "--store", honest.store_path, "--run-id", honest.run_id,
                "--out", out, "--json")  # fmt: skip
    assert again.json()["file"] == str(out)


# ------------------------------------------------------------------ policy
def hostile_policy(honest: Pipeline) -> Path:
    """The recorded run's policy named HOSTILE (a policy's name is any non-empty string)."""
    text = honest.policy_yaml.read_text()
    draft = honest.policy_yaml.parent / "hostile.yaml"
    draft.write_text(text.replace("name: test-pipeline", f"name: {json.dumps(HOSTILE)}", 1))
    return draft


def test_policy_test_and_show_escape_the_policys_name(cli: Cli, honest: Pipeline) -> None:
    draft = hostile_policy(honest)
    store = ("--store", honest.store_path, "--run-id", honest.run_id)
    r = cli("policy", "test", draft, *store)
    assert r.code == 0
    shows(r, f"DRAFT: not a verdict: policy {SHOWN} would")
    doc = cli("policy", "test", draft, *store, "--json").json()
    assert doc["report"]["policy"]["name"] == HOSTILE
    shown = cli("policy", "show", draft)
    assert shown.code == 0
    shows(shown, f"policy {SHOWN}  expires")


def test_policy_test_suite_escapes_a_cases_folder_name(
    cli: Cli, honest: Pipeline, tmp_path: Path
) -> None:
    case = tmp_path / "suite" / HOSTILE
    case.mkdir(parents=True)
    (case / "case.yaml").write_text(
        f"store: {honest.store_path}\nrun: {honest.run_id}\nexpect: pass\n"
    )
    args = ("policy", "test", honest.policy_yaml, "--suite", tmp_path / "suite")
    r = cli(*args)
    assert r.code == 0
    shows(r, f"ok   {SHOWN}: pass, as expected")
    assert [c["name"] for c in cli(*args, "--json").json()["cases"]] == [HOSTILE]


def test_policy_lint_and_verify_escape_the_file_name(
    cli: Cli, honest: Pipeline, tmp_path: Path
) -> None:
    bad = tmp_path / f"{NAME}.yaml"
    bad.write_text("apiVersion: mlspec-attest/v1\nkind: Policy\n")
    r = cli("policy", "lint", bad)
    assert r.code == 3
    shows(r, f"{printable(bad)}:1: error:")
    copy = tmp_path / f"{NAME}.signed.json"
    copy.write_bytes(honest.signed_policy_path.read_bytes())
    other = honest.keys["data-engineer"].pub_path
    denied = cli("policy", "verify", copy, "--policy-key", other)
    assert denied.code == 1
    shows(denied, f"{printable(copy)}: FAILED")


# ------------------------------------------------------------------ data
def write_csv(path: Path, rows: Iterable[Sequence[Any]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_analyze_escapes_column_names_and_values(cli: Cli, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "d.csv", [["num", HOSTILE], *([i, HOSTILE] for i in range(4))])
    r = cli("analyze", data, "--slice", HOSTILE)
    assert r.code == 0
    text = shows(r)
    assert f"slice {SHOWN}: {SHOWN} (4 rows)" in text and f"top: {SHOWN} (4)" in text
    header, num, hostile = r.out.split("\n")[2:5]  # aligned on the escaped name
    assert header.startswith(f"{'feature':<{len(SHOWN)}}  type ")
    assert num.startswith(f"{'num':<{len(SHOWN)}}  number ")
    assert hostile.startswith(f"{SHOWN}  string ")
    doc = cli("analyze", data, "--slice", HOSTILE, "--json").json()
    assert HOSTILE in doc["features"] and list(doc["slices"]) == [HOSTILE]


def test_schema_infer_cannot_inject_a_key_through_the_file_name(cli: Cli, tmp_path: Path) -> None:
    name = "d\rdeprecated: true\u2028x\x85.csv"
    data = write_csv(tmp_path / name, [["num"], [1], [2]])
    r = cli("schema", "infer", data, "--name", "s")
    assert r.code == 0
    shows(r, "rows of d\\rdeprecated: true\\u2028x\\x85.csv.")
    schema = plain(load_yaml(r.out, what="schema", max_bytes=1 << 20))  # one key each
    assert schema["deprecated"] is False


def test_validate_escapes_the_data_file_name(cli: Cli, tmp_path: Path) -> None:
    data = write_csv(tmp_path / f"{HOSTILE}.csv", [["num"], [1], [2]])
    schema = tmp_path / "s.yaml"
    inferred = cli("schema", "infer", data, "--name", "s", "--out", schema)
    assert inferred.code == 0 and inferred.err == f"wrote {schema}\n"
    r = cli("validate", data, "--schema", schema)
    assert r.code == 0
    shows(r, printable(f"PASSED  {data} matches data schema s version 1"))


def test_leakage_escapes_a_dropped_column(cli: Cli, tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", [["a", HOSTILE], [1, 2], [3, 4]])
    test = write_csv(tmp_path / "test.csv", [["a"], [5], [6]])
    doc = cli("leakage", "check", f"train={train}", f"test={test}", "--json").json()
    [column] = doc["splits"]["train"]["droppedColumns"]  # canonicalized: case, bidi controls
    assert column.startswith("evil\nverification passed") and "\x1b[2j" in column
    r = cli("leakage", "check", f"train={train}", f"test={test}")
    assert r.code == 0
    shows(r, f"columns left out: {printable(column)} (")


def test_metrics_escape_slice_names(cli: Cli, tmp_path: Path) -> None:
    rows: list[list[Any]] = [["y", "p", HOSTILE], *([i % 2, i % 2, HOSTILE] for i in range(6))]
    data = write_csv(tmp_path / "preds.csv", rows)
    out = tmp_path / "metrics.json"
    task = ("--task", "classification", "--label", "y", "--prediction", "p", "--slice", HOSTILE)
    r = cli("metrics", "compute", data, *task, "--out", out)
    assert r.code == 0
    shows(r, f"slices: {SHOWN} (1)")
    assert list(json.loads(out.read_text())["slices"]) == [HOSTILE]
    checked = cli("metrics", "validate", out)
    assert checked.code == 0
    shows(checked, f"slices: {SHOWN} (1)")


def test_objectives_lint_escapes_the_documents_name(cli: Cli, tmp_path: Path) -> None:
    template = cli("objectives", "init").out
    doc = tmp_path / "objectives.yaml"
    doc.write_text(template.replace("name: diabetes-progression", f"name: {json.dumps(HOSTILE)}"))
    r = cli("objectives", "lint", doc)
    assert r.code == 0
    shows(r, f"ok ({SHOWN} v")


# ------------------------------------------------------------------ bundle verify
def test_bundle_verify_escapes_the_file_name(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    bundle = tmp_path / f"{HOSTILE}.sigstore.json"
    bundle.write_bytes(honest.bundle_path("ingest").read_bytes())
    key = ("--key", honest.keys["data-engineer"].pub_path)
    ok = cli("bundle", "verify", bundle, "--artifact", honest.ws / "data/raw.csv", *key)
    assert ok.code == 0
    shows(ok, printable(f"bundle verification PASSED: {bundle} signed by key "))
    other = cli("bundle", "verify", bundle, "--artifact", honest.ws / "data/split/train.csv", *key)
    assert other.code == 1
    shows(other, printable(f"bundle verification FAILED: {bundle}: the in-toto statement"))
    doc = cli(
        "bundle", "verify", bundle, "--artifact", honest.ws / "data/split/train.csv", *key, "--json"
    )
    assert doc.json()["reason"].startswith(f"{bundle}: the in-toto statement")


# ------------------------------------------------------------------ progress bar
class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_a_name_escaped_without_markup() -> None:
    stream = Terminal()
    progress = TerminalProgress(show_after=0, stream=stream)
    progress.begin("d[/x]\x1b[2J\u202e[red]", 1, 10)  # "[/x]" made rich raise MarkupError
    progress.advance(5)
    progress.end()
    assert "hashing d[/x]\\x1b[2J\\u202e[red]" in stream.getvalue()
