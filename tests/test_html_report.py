"""The HTML audit report and policy page: structure, denials first, escaping, no network.

Reports come from real verifications of the small ML pipeline (tests/mlpipeline.py:
real keys, real signatures, real files) and from real signed verification summaries;
the page is parsed with the standard library's HTML parser, as a browser would tokenize
it, so "inert" means: no element or attribute the hostile text tried to create exists.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlspec_attest.cli.main import main
from mlspec_attest.cli.policy_html import policy_html
from mlspec_attest.formats.htmldoc import CSP, escape, join, tag
from mlspec_attest.formats.statement import ResourceDescriptor
from mlspec_attest.formats.svgdag import Edge, layer_of
from mlspec_attest.formats.vsa import InputAttestation, Result, VerificationSummary
from mlspec_attest.verify.html_report import report_html, summary_html

from .mlpipeline import REQUIREMENTS, MakeML, MLPipeline

HOSTILE = ("<script>alert(1)</script>", '"><img src=x onerror=alert(2)>', "' onmouseover='alert(3)")
FAILING_TEST = {
    "metrics": {"mae": 90.0, "r2": 0.1},
    "slices": {"sex": {"F": {"count": 60, "metrics": {"mae": 48.0}},
                       "M": {"count": 55, "metrics": {"mae": 70.0}}}},
}  # fmt: skip


class Parsed(HTMLParser):
    """Every start tag with its attributes, and the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def named(self, name: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == name]

    def ids(self, name: str) -> list[str]:
        return [str(a["id"]) for a in self.named(name) if a.get("id")]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """``mlspec-attest ARGS`` through the one entry point that maps errors to exit codes."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), out, err


def stage_nodes(parsed: Parsed, graph: str = "stage-dag") -> list[dict[str, str | None]]:
    """The node groups of one graph (``<g id="GRAPH-node-N">``)."""
    return [a for a in parsed.named("g") if str(a.get("id", "")).startswith(f"{graph}-node-")]


def parse(page: str) -> Parsed:
    parsed = Parsed()
    parsed.feed(page)
    parsed.close()
    return parsed


def assert_self_contained(page: str) -> None:
    parsed = parse(page)
    csp = [a for a in parsed.named("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert [a["content"] for a in csp] == [CSP]
    assert "default-src 'none'" in CSP
    for name, attrs in parsed.tags:
        assert name not in ("script", "link", "iframe", "object", "embed", "img", "base")
        for key, value in attrs.items():
            assert not key.startswith("on"), (name, key)
            if key in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
                raise AssertionError(f"<{name} {key}={value!r}>: pages reference nothing")
            if value and "url(" in value:
                assert re.fullmatch(r"url\(#[a-z-]+\)", value), value
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?//""", page)
    assert "<script" not in page.lower()


def passing(make_ml: MakeML) -> MLPipeline:
    return make_ml().run()


def test_a_passing_report_shows_the_verdict_first_and_every_section(make_ml: MakeML) -> None:
    ml = passing(make_ml)
    report = ml.verify()
    assert report.passed
    page = report_html(report, ml.signed.policy, ml.store)
    assert_self_contained(page)
    parsed = parse(page)
    first = parsed.tags[parsed.tags.index(("body", {})) + 1]
    assert first == ("header", {"class": "banner passed", "id": "verdict", "data-result": "passed"})
    assert parsed.ids("section") == [
        "pipeline", "stages", "objectives", "slices", "lineage", "artifacts", "checks",
    ]  # fmt: skip
    nodes = stage_nodes(parsed)
    assert [a["data-status"] for a in nodes] == ["ok"] * 6
    # every check of the ledger is a row, and its evidence is there
    assert len(report.checks) > 10
    body = "".join(parsed.text)
    assert body.count("holdback-mae") >= 2  # objective table and checks ledger
    for result in report.objectives:
        assert result.threshold in body
    # per-slice bars: evaluate and test, family sex, metric mae, one bar per slice
    bars = [a for a in parsed.named("rect") if a.get("class") == "bar"]
    assert len(bars) == 2 + 3
    # lineage: the model's digest as the train stage attested it
    model = ml.signed_stages["train"].statement.products[0]
    assert model.name == "model.bin"
    assert f"sha256:{model.digest['sha256']}" in page


def test_a_denied_report_puts_the_denials_first_root_causes_first(make_ml: MakeML) -> None:
    ml = make_ml().run(test={"metrics": FAILING_TEST})
    report = ml.verify()
    assert not report.passed
    page = report_html(report, ml.signed.policy, ml.store)
    assert_self_contained(page)
    parsed = parse(page)
    assert parsed.named("header")[0]["data-result"] == "failed"
    sections = parsed.ids("section")
    assert sections[0] == "denials"
    assert sections.index("denials") < sections.index("pipeline")
    status = {a["id"]: a["data-status"] for a in stage_nodes(parsed)}
    assert list(status.values()) == ["ok"] * 5 + ["failed"]  # test: its objectives failed
    texts = "".join(parsed.text)
    assert f"DENIED: {len(report.failures)} failure(s)" in texts
    items = [a["class"] for a in parsed.named("li") if a.get("class") in ("root", "consequence")]
    assert items == ["root" if not why else "consequence" for _, why in
                     report.classified_failures()]  # fmt: skip
    for failure in report.failures:
        assert failure.message in texts and failure.remedy in texts


def test_consequences_follow_root_causes(make_ml: MakeML) -> None:
    """A refused attestation (wrong signer) is the root; its stage missing follows it."""
    ml = make_ml()
    ml.run(train={"signer": ml.key("evaluator")})
    report = ml.verify()
    parsed = parse(report_html(report, ml.signed.policy, ml.store))
    items = [a["class"] for a in parsed.named("li") if a.get("class") in ("root", "consequence")]
    assert items[0] == "root" and "consequence" in items
    assert items == sorted(items, key=lambda c: c == "consequence")


def hostile_summary() -> VerificationSummary:
    evil, img, attr = HOSTILE
    failure = {"check": "objective", "stage": evil, "message": img, "expected": attr,
               "found": evil, "remedy": img, "source": attr, "error": evil}  # fmt: skip
    return VerificationSummary(
        subjects=(ResourceDescriptor(img, {"sha256": "0" * 64}),),
        resource_uri="file:///srv/model",
        policy_uri="file:///p.json",
        policy_digest="1" * 64,
        time_verified=datetime(2026, 1, 1, tzinfo=UTC),
        result=Result.FAILED,
        levels=("FAILED",),
        inputs=(InputAttestation(evil, "runs/r/x.json", "2" * 64),),
        details={
            "runId": "r",
            "policyName": img,
            "stages": [{"name": evil, "status": "failed", "signers": [img]},
                       {"name": img, "status": attr, "signers": [attr]}],
            "failures": [failure, {**failure, "check": evil}],
            "objectives": [{"id": evil, "stage": img, "kind": attr, "result": "fail",
                            "observed": {evil: 1.0, img: attr}, "threshold": img,
                            "message": evil}],
            "checks": [{"level": evil, "result": img, "failures": 1}],
        },
    )  # fmt: skip


def test_hostile_strings_from_a_summary_are_inert() -> None:
    page = summary_html(hostile_summary(), None)
    assert_self_contained(page)
    parsed = parse(page)
    text = "".join(parsed.text)
    for hostile in HOSTILE:
        assert hostile in text  # shown to the reader, as text
    assert page.count("&lt;script&gt;") >= 5
    # the stage graph still drew both stages, each as one node
    assert len(stage_nodes(parsed)) == 2
    assert parse(page).named("header")[0]["data-result"] == "failed"
    assert "NOT checked" in text


def test_the_one_escaping_helper() -> None:
    assert escape(HOSTILE[1]) == "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"
    assert escape(escape("<b>")) == "&lt;b&gt;"  # escaped once, never twice
    assert tag("p", {"title": HOSTILE[2]}, HOSTILE[0]) == (
        '<p title="&#x27; onmouseover=&#x27;alert(3)">&lt;script&gt;alert(1)&lt;/script&gt;</p>'
    )
    assert join(["<a>", tag("b", None, "x")]) == "&lt;a&gt;<b>x</b>"


def test_a_policy_page_escapes_what_the_author_wrote(make_ml: MakeML) -> None:
    evil = HOSTILE[0].replace('"', "'")
    requirements = REQUIREMENTS + f'  - id: hostile\n    expr: \'"{evil}" != "x"\'\n'
    ml = make_ml(requirements=requirements)
    page = policy_html(ml.signed.policy, ml.signed.digest)
    assert_self_contained(page)
    parsed = parse(page)
    assert evil in "".join(parsed.text)
    assert parsed.ids("section")[:3] == ["pipeline", "functionaries", "stages"]
    assert len(stage_nodes(parsed, "policy-dag")) == 6


def test_policy_show_html_on_the_command_line(
    make_ml: MakeML, capsys: pytest.CaptureFixture[str]
) -> None:
    ml = make_ml()
    pages = []
    for source in (ml.policy_yaml, ml.signed_policy_path):
        code, out, err = run_cli(capsys, "policy", "show", source, "--format", "html")
        assert code == 0, err
        assert out.startswith("<!DOCTYPE html>")
        assert ml.signed.digest in out
        pages.append(out)
    assert pages[0] == pages[1]  # a YAML policy and its signed form show the same


def test_verify_report_is_written_on_deny_too(
    make_ml: MakeML, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ml = make_ml().run(test={"metrics": FAILING_TEST})
    out = tmp_path / "report.html"
    code, stdout, err = run_cli(capsys, *ml.cli_verify_args("--report", str(out), "--json"))
    assert code == 1
    assert json.loads(stdout)["result"] == "FAILED"  # stdout stays the one JSON document
    assert f"report (DENIED) -> {out}" in err
    page = out.read_text()
    assert_self_contained(page)
    assert parse(page).ids("section")[0] == "denials"


def test_inspect_report_of_a_stored_summary(
    make_ml: MakeML, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ml = make_ml().run()
    vsa, out = tmp_path / "vsa.json", tmp_path / "vsa.html"
    key = str(ml.key("evaluator").key_path)
    args = ("--vsa-out", str(vsa), "--vsa-key", key, "--resource-uri", "file:///srv/m")
    assert run_cli(capsys, *ml.cli_verify_args(*args))[0] == 0
    code, _, err = run_cli(capsys, "inspect", vsa, "--report", out, "--store", ml.store_path)
    assert code == 0, err
    page = out.read_text()
    assert_self_contained(page)
    parsed = parse(page)
    assert parsed.named("header")[0]["data-result"] == "unverified"
    assert "NOT checked" in "".join(parsed.text)
    # the input attestations were found by digest: lineage and slices are drawn
    assert len([a for a in parsed.named("rect") if a.get("class") == "bar"]) == 5
    model = ml.signed_stages["train"].statement.products[0]
    assert f"sha256:{model.digest['sha256']}" in page
    code, _, err = run_cli(capsys, "inspect", ml.signed_policy_path, "--report", out)
    assert code == 2 and "--report needs a verification summary" in err


def test_layers_are_longest_paths_and_a_cycle_ends() -> None:
    edges = [Edge("a", "b"), Edge("b", "c"), Edge("a", "c"), Edge("x", "y"), Edge("y", "x")]
    layers = layer_of(["a", "b", "c", "x", "y"], edges)
    assert layers["a"] == 0 and layers["b"] == 1 and layers["c"] == 2
    assert layers["x"] == layers["y"] == 3  # the cycle goes below everything else
