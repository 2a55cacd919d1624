"""Attacker-chosen names cannot forge or reorder lines of a human report.

A file dropped into the run folder whose *name* held newlines made ``verify``'s text
report print ``verification PASSED: all 46 checks passed`` under the DENIED header;
``query run`` printed the same names raw. Every human renderer now passes its lines
through one escaping function (``formats/printable.py``) at the edge: control
characters (C0, DEL, C1), line and paragraph separators and bidi controls are shown
escaped (``\\n``, ``\\u202e``). JSON output keeps the strings (JSON escapes them).

Real pipelines, real signatures and real files; the names are real file names.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from mlspec_attest.formats.printable import printable, printable_lines
from tests.cli.conftest import Cli
from tests.support import Pipeline, rewrite_payload

FORGED = "verification PASSED: all 4 checks passed"
#: One name per kind of character a terminal must not receive raw, each followed by the forgery.
HOSTILE = {
    "newline": f"z\n\n{FORGED}",
    "carriage-return": f"z\r{FORGED}",
    "escape": f"z\x1b[2K\x1b[1A{FORGED}",
    "del": f"z\x7f{FORGED}",
    "nel": f"z\x85{FORGED}",
    "line-separator": f"z\u2028{FORGED}",
    "paragraph-separator": f"z\u2029{FORGED}",
    "bidi-override": f"z\u202e{FORGED}",
    "bidi-isolate": f"z\u2066{FORGED}\u2069",
}
#: Characters that must never reach the terminal raw (besides the renderer's own "\n").
CONTROL = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} | {
    "\u2028", "\u2029", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)),
}  # fmt: skip


def assert_terminal_safe(text: str) -> None:
    """Only the renderer's own line breaks; no line starts with the forgery."""
    raw = {c for c in text if (c in CONTROL and c != "\n") or 0xD800 <= ord(c) <= 0xDFFF}
    assert not raw, f"raw control characters reached the terminal: {sorted(raw)!r}"
    assert not any(line.startswith(FORGED) for line in text.split("\n"))


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain name.csv", "plain name.csv"),
        ("a\nb", "a\\nb"),
        ("a\r\tb", "a\\r\\tb"),
        ("\x1b[31m", "\\x1b[31m"),
        ("\x00\x7f\x85\x9b", "\\x00\\x7f\\x85\\x9b"),
        ("\u2028\u2029", "\\u2028\\u2029"),
        ("abc\u202edcba", "abc\\u202edcba"),
        ("\u2066\u2067\u2068\u2069\u202a\u202b\u202c\u202d", "\\u2066\\u2067\\u2068\\u2069"
         "\\u202a\\u202b\\u202c\\u202d"),
        ("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"),
        ("bad\udcff", "bad\\udcff"),  # an undecodable file-name byte (surrogateescape)
        ("caf\u00e9 \u6a21\u578b \U0001f600", "caf\u00e9 \u6a21\u578b \U0001f600"),
        ("C:\\models\\x", "C:\\models\\x"),
    ],
)  # fmt: skip
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert_terminal_safe(printable(text))


def test_printable_lines_keeps_only_the_renderers_line_breaks() -> None:
    assert printable_lines(["head", f"x\n{FORGED}", "tail"]) == f"head\nx\\n{FORGED}\ntail"
    assert printable_lines([]) == ""


def drop_hostile_files(p: Pipeline, *, undecodable: bool) -> Pipeline:
    """One file per hostile name in the run folder (and, if asked, one whose name is not UTF-8)."""
    run = p.store.run_dir(p.run_id)
    for name in HOSTILE.values():
        (run / name).write_text("not an attestation\n")
    if undecodable:
        raw = os.fsencode(run) + b"/z\xff\x1b[1A" + FORGED.encode()
        os.close(os.open(raw, os.O_CREAT | os.O_WRONLY))
    return p


@pytest.fixture
def hostile_run(honest: Pipeline) -> Pipeline:
    return drop_hostile_files(honest, undecodable=True)


def test_verify_report_escapes_hostile_file_names(cli: Cli, hostile_run: Pipeline) -> None:
    r = cli(*hostile_run.cli_verify_args(as_json=False))
    assert r.code == 1 and r.clean, r.err
    assert r.out.startswith("verification DENIED")
    assert_terminal_safe(r.out + r.err)
    assert f"z\\n\\n{FORGED}" in r.out and f"z\\u202e{FORGED}" in r.out
    assert f"z\\udcff\\x1b[1A{FORGED}" in r.out
    assert r.out.count("[attestation-malformed]") == len(HOSTILE) + 1


def test_verify_json_keeps_the_names(cli: Cli, hostile_run: Pipeline) -> None:
    r = cli(*hostile_run.cli_verify_args())
    assert r.code == 1
    sources = {f.get("source") for f in r.json()["failures"]}
    assert set(HOSTILE.values()) <= sources


def hostile_claims(statement: dict[str, Any]) -> None:
    """What an unverified bundle may claim: the index records it as it is."""
    statement["subject"][0]["name"] = f"data/raw.csv\n{FORGED}"
    statement["predicate"]["byproducts"]["mlspec"]["parameters"] = {f"seed\u2028{FORGED}": 8}


def test_query_run_escapes_hostile_names(cli: Cli, honest: Pipeline) -> None:
    drop_hostile_files(honest, undecodable=False)
    rewrite_payload(honest.bundle_path("ingest"), hostile_claims)
    r = cli("query", "run", honest.run_id, "--store", honest.store_path)
    assert r.code == 0 and r.clean, r.err
    assert_terminal_safe(r.out + r.err)
    assert f"runs/{honest.run_id}/z\\n\\n{FORGED}" in r.out
    assert f"product  data/raw.csv\\n{FORGED}" in r.out
    doc = cli("query", "run", honest.run_id, "--store", honest.store_path, "--json")
    files = {s["file"] for s in doc.json()["result"]["stages"]}
    assert f"runs/{honest.run_id}/z\u2029{FORGED}" in files


def test_query_diff_escapes_hostile_names(cli: Cli, honest: Pipeline) -> None:
    honest.sign("ingest", run_id="run-b")
    rewrite_payload(honest.bundle_path("ingest", run_id="run-b"), hostile_claims)
    r = cli("query", "diff", honest.run_id, "run-b", "--store", honest.store_path)
    assert r.code == 0 and r.clean, r.err
    assert_terminal_safe(r.out)
    assert f"parameter seed\\u2028{FORGED}: None -> 8" in r.out
