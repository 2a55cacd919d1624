"""What an HTML audit report shows, gathered from a verification or a stored summary.

Two sources give the same :class:`ReportPage`: a :class:`VerificationReport` that just
ran (with the compiled policy, for the order edges of the stage graph) and a signed
verification summary read back from a file (``inspect SUMMARY --report``: its claims,
no trust decision). Both name the stage attestations the verdict used by payload
digest; the lineage and the per-slice metrics are read from exactly those
attestations in the store (a file whose payload digest differs is not used), never
verified a second time and never looked up by a path the summary names.

Everything in a page is the JSON form of the report's parts (what ``verify --json``
prints, what a summary's ``mlspec`` details carry), so a summary written by any
version, or by someone else, renders through the same code: each field is read
defensively (a wrong type shows as text, never raises).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec import Struct, field

from mlspec_attest.errors import MlspecError
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.formats.statement import ResourceDescriptor, StageStatement
from mlspec_attest.formats.vsa import VerificationSummary
from mlspec_attest.policy.model import Policy
from mlspec_attest.store.ledger import AttestationStore, check_run_id
from mlspec_attest.verify.report import Check, VerificationReport


class PageStage(Struct, frozen=True):
    name: str
    kind: str
    status: str
    signers: tuple[str, ...] = ()
    inputs: tuple[tuple[str, str], ...] = ()
    """(where in the store, payload digest ``sha256:<hex>``) of each accepted attestation."""


class ReportPage(Struct):
    """One audit report's content, whatever it was read from."""

    passed: bool
    policy_name: str
    policy_digest: str
    run_id: str | None
    verified_at: str
    stages: list[PageStage]
    #: (earlier stage, later stage): the policy's order, else the data flow between stages.
    edges: list[tuple[str, str]] = field(default_factory=list)
    #: Failure.to_json() plus "because" ("" for a root cause), root causes first.
    failures: list[dict[str, Any]] = field(default_factory=list)
    objectives: list[dict[str, Any]] = field(default_factory=list)
    requirements: list[dict[str, Any]] = field(default_factory=list)
    #: The checks[] ledger (CheckRun.to_json()); a summary carries its families instead.
    checks: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Stage -> the statement of an attestation the verdict used (lineage, slices).
    statements: dict[str, StageStatement] = field(default_factory=dict)
    #: Said at the top when the page is not the result of a verification just run.
    trust_note: str = ""
    source: str = "verify"


def page_from_report(
    report: VerificationReport, policy: Policy | None, store: AttestationStore | None
) -> ReportPage:
    """The page of a verification that just ran; ``policy`` gives the stage order edges."""
    stages = [PageStage(s.name, s.kind, s.status, s.signers, s.inputs) for s in report.stages]
    if not stages and policy is not None:
        # The policy's own signature failed: no stage was judged; draw what it asks for.
        stages = [PageStage(s.name, s.kind.value, "not-run") for s in policy.stages]
    page = ReportPage(
        passed=report.passed,
        policy_name=report.policy_name,
        policy_digest=report.policy_digest,
        run_id=report.run_id,
        verified_at=report.verified_at,
        stages=stages,
        failures=[{**f.to_json(), "because": why} for f, why in report.classified_failures()],
        objectives=[r.to_json() for r in report.objectives],
        requirements=[r.to_json() for r in report.requirements],
        checks=[c.to_json() for c in report.checks],
        artifacts=[a.to_json() for a in report.artifacts],
        notes=list(report.notes),
    )
    _attach_statements(page, store)
    if policy is not None:
        names = {s.name for s in stages}
        page.edges = [(a, s.name) for s in policy.stages for a in s.after if a in names]
    else:
        page.edges = flow_edges(page)
    return page


def page_from_summary(summary: VerificationSummary, store: AttestationStore | None) -> ReportPage:
    """The page of a stored verification summary: its claims, read without trusting them."""
    details = summary.details
    inputs: dict[str, list[tuple[str, str]]] = {}
    for i in summary.inputs:
        inputs.setdefault(i.stage, []).append((i.uri, "sha256:" + i.sha256))
    stages = [
        PageStage(
            name=text(s.get("name")),
            kind=text(s.get("kind", "")),
            status=text(s.get("status")),
            signers=tuple(text(x) for x in _list(s.get("signers"))),
            inputs=tuple(inputs.get(text(s.get("name")), ())),
        )
        for s in rows(details.get("stages"))
    ]
    page = ReportPage(
        passed=summary.passed,
        policy_name=text(details.get("policyName", "")),
        policy_digest="sha256:" + summary.policy_digest,
        run_id=summary.run_id,
        verified_at=format_rfc3339(summary.time_verified),
        stages=stages,
        failures=_summary_failures(rows(details.get("failures"))),
        objectives=rows(details.get("objectives")),
        checks=rows(details.get("checks")),
        artifacts=[
            {"role": s.name, "path": None, "status": "attested", "digest": s.digest}
            for s in summary.subjects
        ],
        trust_note=(
            "Read from a stored verification summary: its signature, signer and freshness "
            "were NOT checked here. Trust it only through `gate` or a new `verify`."
        ),
        source="summary",
    )
    _attach_statements(page, store)
    page.edges = flow_edges(page)
    return page


def _summary_failures(failures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A summary's failures classified as a report classifies its own (root causes
    first); one whose check this version does not know is shown first, as a root."""
    unknown: list[dict[str, Any]] = []
    known = VerificationReport("", "", None, "")
    for f in failures:
        try:
            check = Check(text(f.get("check")))
        except ValueError:
            unknown.append({**f, "because": ""})
            continue
        stage = f.get("stage")
        known.fail(
            check,
            stage if isinstance(stage, str) else None,
            text(f.get("message")),
            **{k: text(f.get(k, "")) for k in ("expected", "found", "remedy", "source")},
        )
    classified = [{**f.to_json(), "because": why} for f, why in known.classified_failures()]
    return unknown + classified


def _attach_statements(page: ReportPage, store: AttestationStore | None) -> None:
    """The statements of the attestations the page's stages name, by payload digest."""
    wanted = {digest: s.name for s in page.stages for _, digest in s.inputs}
    if store is None or not page.run_id or not wanted:
        return
    try:
        stored = list(store.attestations(check_run_id(page.run_id)))
    except MlspecError as exc:
        page.notes.append(f"lineage and slices not shown: {exc.message}")
        return
    for item in stored:
        stage = wanted.get(item.payload_digest or "")
        if item.bundle is None or stage is None or stage in page.statements:
            continue
        try:
            statement = StageStatement.from_payload(item.bundle.envelope.payload)
        except MlspecError as exc:
            page.notes.append(f"{item.path.name}: not shown: {exc.message}")
            continue
        if statement.name == stage:
            page.statements[stage] = statement


def descriptor_digest(d: ResourceDescriptor) -> str:
    """``algorithm:value`` of a descriptor, sha256 when it has one."""
    algo = "sha256" if "sha256" in d.digest else min(d.digest, default="")
    return f"{algo}:{d.digest.get(algo, '')}"


def flow_edges(page: ReportPage) -> list[tuple[str, str]]:
    """(writer, reader) for every stage that read what an earlier stage wrote (by digest)."""
    written: dict[str, str] = {}
    for stage in page.stages:
        st = page.statements.get(stage.name)
        for d in st.products if st else ():
            written.setdefault(descriptor_digest(d), stage.name)
    edges: list[tuple[str, str]] = []
    for stage in page.stages:
        st = page.statements.get(stage.name)
        for d in st.materials if st else ():
            source = written.get(descriptor_digest(d))
            if source and source != stage.name and (source, stage.name) not in edges:
                edges.append((source, stage.name))
    return edges


def text(value: Any) -> str:
    """Any JSON value as one line of text (a summary's fields may have any type)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def rows(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON list (anything else is not a row)."""
    return [dict(v) for v in _list(value) if isinstance(v, Mapping)]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
