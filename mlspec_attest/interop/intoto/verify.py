"""Verify an in-toto layout with in-toto's semantics and report like ``mlspec-attest verify``.

The steps and their order are in-toto's ``in_toto.verifylib.in_toto_verify``; the
report uses mlspec-attest's checks (``report.Check``) so the CLI renders it like
any other verification:

====  =====================================================  ==================  ==========================
step  what                                                   check               in-toto error
====  =====================================================  ==================  ==========================
1     layout signed by every given key (stop if not)         policy-signature    SignatureVerificationError
2     layout not expired                                     policy-expired      LayoutExpiredError
3     ``<step>.<keyid8>.link`` files found for each step     stage-missing       LinkNotFoundError
      (a file that does not parse)                           attestation-malformed  (any load error)
4     threshold of links validly signed by distinct          signature,          ThresholdVerificationError
      authorized keys (bad signatures only fail the step     threshold
      when they leave it below threshold, as in in-toto)
5     sublayouts verified recursively (stages ``a/b``)       (as above)          (as above)
6     expected command differs (a note: in-toto only warns)  —                   —
7     links of a step with threshold > 1 agree               threshold           ThresholdVerificationError
8     step material and product rules                        artifact-rule       RuleVerificationError
9     inspections run (only if 1-8 passed) and exit 0        inspection [1]_     BadReturnValueError
10    inspection material and product rules                  artifact-rule       RuleVerificationError
====  =====================================================  ==================  ==========================

.. [1] ``Check.INSPECTION`` when ``report.Check`` has it, ``artifact-rule`` otherwise.

Differences from ``in-toto-verify``: it stops at the first failure, this
verifier reports every failure it can (a step that failed is left out of
later steps, so rules that MATCH against it fail too); inspections run in
``workdir`` (default: the link directory) rather than the process's current
directory, their output is captured, and no ``<inspection>.link`` file is
written. Rule evaluation, signature checks and artifact recording are
in-toto's own code (``verify_item_rules``, ``Metadata.verify_signature``,
``record_artifacts_as_dict``), so verdicts agree.

Security: a layout's inspections execute commands. They run only after the
layout's signature, every link signature, threshold and step rule passed, and
only when the caller allows it (``run_inspections``); a layout with
inspections that may not run fails closed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlspec_attest.errors import BadInputError, MalformedDocumentError, UsageError
from mlspec_attest.interop.intoto.support import (
    lib,
    link_filename,
    load_layout_key,
    load_metadata,
    require_intoto,
)
from mlspec_attest.policy.model import format_rfc3339, parse_rfc3339
from mlspec_attest.policy.rules import ArtifactRule, LinkArtifacts, RuleSyntaxError, evaluate_rules
from mlspec_attest.verify.report import Check, StageSummary, VerificationReport

#: ``in_toto.settings.LINK_CMD_EXEC_TIMEOUT``: seconds an inspection may run.
DEFAULT_INSPECT_TIMEOUT = 10
STEP_KIND = "in-toto step"
INSPECTION_KIND = "in-toto inspection"

# The report vocabulary has no inspection check yet; use it as soon as it exists.
INSPECTION_CHECK: Check = Check.__members__.get("INSPECTION", Check.ARTIFACT_RULE)

# in-toto's artifact recorder changes the process's working directory.
_CWD_LOCK = threading.Lock()


def _signature_problem(metadata: Any, key: Mapping[str, Any]) -> str | None:
    """Why ``metadata`` has no valid signature by ``key`` (None if it has one)."""
    SignatureVerificationError = lib("in_toto.exceptions").SignatureVerificationError
    SSlibError = lib("securesystemslib.exceptions").Error

    try:
        metadata.verify_signature(dict(key))
    except SignatureVerificationError as exc:
        # DSSE failures carry no text of their own (securesystemslib's is about thresholds).
        return str(exc) or f"no signature by key {str(key.get('keyid'))[:16]} verifies"
    except (SSlibError, ValueError, KeyError, TypeError) as exc:
        return f"signature unusable ({type(exc).__name__}: {exc})"
    return None


def _rule_text(rule: Sequence[str]) -> str:
    return " ".join(rule)


def _artifacts(link: Any) -> LinkArtifacts:
    return LinkArtifacts(materials=dict(link.materials), products=dict(link.products))


def _explain(
    rules: Sequence[Sequence[str]], side: str, name: str, links: Mapping[str, Any]
) -> str | None:
    """mlspec-attest's account of a rule failure in-toto found (which artifact, and why
    no MATCH consumed it); None when the rules cannot be read by our parser."""
    try:
        parsed = tuple(ArtifactRule.parse(_rule_text(r)) for r in rules)
    except RuleSyntaxError:
        return None
    views = {n: _artifacts(link) for n, link in links.items()}
    own = views[name]
    violations = evaluate_rules(
        parsed, own.materials if side == "materials" else own.products, own, views
    )
    return "; ".join(f"{v.rule}: {v.message}" for v in violations) or None


class LayoutVerifier:
    """Runs in-toto's verification steps for one (sub)layout, collecting every failure."""

    def __init__(
        self,
        metadata: Any,
        keys: Mapping[str, Mapping[str, Any]],
        link_dir: Path,
        report: VerificationReport,
        *,
        now: datetime,
        run_inspections: bool,
        workdir: Path,
        inspect_timeout: float,
        prefix: str = "",
        step_name: str = "",
    ) -> None:
        self.metadata = metadata
        self.keys = keys
        self.link_dir = link_dir
        self.report = report
        self.now = now
        self.allow_inspections = run_inspections
        self.workdir = workdir
        self.inspect_timeout = inspect_timeout
        self.prefix = prefix
        self.step_name = step_name
        self.files: dict[str, list[str]] = {}
        self.signers: dict[str, list[str]] = {}
        self.inspection_status: dict[str, str] = {}

    # -- helpers -------------------------------------------------------------
    def stage(self, name: str) -> str:
        return self.prefix + name

    def fail(self, check: Check, stage: str | None, message: str, **kw: str) -> None:
        self.report.fail(check, stage, message, **kw)

    # -- steps 1-2 -----------------------------------------------------------
    def check_signatures(self) -> bool:
        ok = True
        for keyid, key in self.keys.items():
            problem = _signature_problem(self.metadata, key)
            if problem is not None:
                ok = False
                self.fail(
                    Check.POLICY_SIGNATURE,
                    self.prefix.rstrip("/") or None,
                    "the layout is not signed by a required key",
                    expected=f"a valid signature by key {keyid[:16]}",
                    found=problem,
                    remedy="pass the layout owner's public key, or have the owner sign the "
                    "layout again (in-toto-sign) if it was edited",
                )
        return ok

    def check_expiry(self, layout: Any) -> None:
        expires = parse_rfc3339(layout.expires)
        if expires <= self.now:
            self.fail(
                Check.POLICY_EXPIRED,
                self.prefix.rstrip("/") or None,
                "the layout has expired",
                expected=f"now before {layout.expires}",
                found=f"now is {format_rfc3339(self.now)}",
                remedy="have the layout owner set a later 'expires' and sign the layout again",
            )

    # -- steps 3-7 -----------------------------------------------------------
    def load_links(self, layout: Any, step: Any) -> dict[str, tuple[Path, Any]] | None:
        stage = self.stage(step.name)
        found: dict[str, tuple[Path, Any]] = {}
        expected: list[str] = []
        for authorized in step.pubkeys:
            subkeys = layout.keys.get(authorized, {}).get("subkeys") or {}
            for keyid in [authorized, *subkeys]:
                name = link_filename(step.name, keyid)
                expected.append(name)
                path = self.link_dir / name
                if not path.is_file():
                    continue
                self.files.setdefault(stage, []).append(name)
                try:
                    found[keyid] = (path, load_metadata(path))
                except MalformedDocumentError as exc:
                    self.fail(
                        Check.ATTESTATION_MALFORMED,
                        stage,
                        f"unreadable link: {exc.message}",
                        remedy="re-create the link with in-toto-run or in-toto-record",
                        source=name,
                    )
        if len(found) < step.threshold:
            self.fail(
                Check.STAGE_MISSING,
                stage,
                f"step requires {step.threshold} link file(s), found {len(found)}",
                expected=f"{step.threshold} of: {', '.join(expected) or '(no authorized keys)'}",
                found=f"{len(found)} in {self.link_dir}",
                remedy="run the step as an authorized functionary (in-toto-run) and put its "
                "link in the link directory",
            )
            return None
        return found

    def verification_key(
        self, layout: Any, step: Any, link_keyid: str, main_for_sub: Mapping[str, Any]
    ) -> Any | None:
        """in-toto's rule: the authorized key, its main key, or the key whose subkey signed."""
        for authorized in step.pubkeys:
            key = layout.keys.get(authorized)
            main = main_for_sub.get(authorized)
            if key and link_keyid == authorized:
                return key
            if main and link_keyid == authorized:
                return main
            if key and link_keyid in (key.get("subkeys") or {}):
                return key
        return None

    def verified_links(
        self, layout: Any, step: Any, found: Mapping[str, tuple[Path, Any]]
    ) -> dict[str, tuple[Path, Any]] | None:
        stage = self.stage(step.name)
        main_for_sub = {
            sub: main for main in layout.keys.values() for sub in (main.get("subkeys") or {})
        }
        verified: dict[str, tuple[Path, Any]] = {}
        used: set[str] = set()
        rejected: list[tuple[Path, str]] = []
        for link_keyid, (path, metadata) in found.items():
            key = self.verification_key(layout, step, link_keyid, main_for_sub)
            if key is None:
                continue
            problem = _signature_problem(metadata, key)
            if problem is not None:
                rejected.append((path, problem))
                continue
            used.add(key["keyid"])
            verified[link_keyid] = (path, metadata)
        if len(used) < step.threshold:
            for path, problem in rejected:
                self.fail(
                    Check.SIGNATURE,
                    stage,
                    "link signature does not verify (link altered or signed by another key)",
                    expected=f"a valid signature by key {path.name.split('.')[-2]}…",
                    found=problem,
                    remedy="the link was modified after signing or signed with the wrong key; "
                    "re-run the step and sign it again",
                    source=path.name,
                )
            self.fail(
                Check.THRESHOLD,
                stage,
                "not enough links validly signed by distinct authorized functionaries",
                expected=f"{step.threshold} link(s) validly signed by different authorized keys",
                found=f"{len(used)} valid among {len(found)} link file(s)",
                remedy="have more of the step's functionaries run it and sign their own links",
            )
            return None
        for path, problem in rejected:
            self.report.notes.append(f"{path.name}: ignored ({problem}); threshold met without it")
        self.signers[stage] = sorted(k[:8] for k in used)
        return verified

    def summarize_sublayouts(
        self, layout: Any, step: Any, verified: Mapping[str, tuple[Path, Any]]
    ) -> dict[str, Any] | None:
        links: dict[str, Any] = {}
        ok = True
        for keyid, (_path, metadata) in verified.items():
            payload = metadata.get_payload()
            if payload.type_ == "layout":
                sub = LayoutVerifier(
                    metadata,
                    {keyid: layout.keys.get(keyid)},
                    self.link_dir / f"{step.name}.{keyid[:8]}",
                    self.report,
                    now=self.now,
                    # A sublayout is signed by a functionary, not by the policy owner:
                    # its inspections would run commands the owner never approved.
                    run_inspections=False,
                    workdir=self.workdir,
                    inspect_timeout=self.inspect_timeout,
                    prefix=f"{self.stage(step.name)}/",
                    step_name=step.name,
                )
                summary = sub.run()
                if summary is None:
                    ok = False
                    continue
                payload = summary
            links[keyid] = payload
        return links if ok else None

    def check_agreement(self, step: Any, links: Mapping[str, Any]) -> bool:
        if step.threshold <= 1:
            return True
        ref_keyid, ref = next(iter(links.items()))
        differing = [
            link_filename(step.name, k)
            for k, link in links.items()
            if link.materials != ref.materials or link.products != ref.products
        ]
        if differing:
            self.fail(
                Check.THRESHOLD,
                self.stage(step.name),
                "links of the step report different materials or products",
                expected=f"every link agrees with {link_filename(step.name, ref_keyid)}",
                found=f"differs: {', '.join(differing)}",
                remedy="the functionaries did not see the same artifacts; re-run the step",
            )
            return False
        return True

    def step_links(self, layout: Any, step: Any) -> dict[str, Any] | None:
        found = self.load_links(layout, step)
        if found is None:
            return None
        verified = self.verified_links(layout, step, found)
        if verified is None:
            return None
        links = self.summarize_sublayouts(layout, step, verified)
        if links is None:
            return None
        if step.expected_command:
            for keyid, link in links.items():
                if list(link.command) != list(step.expected_command):
                    self.report.notes.append(
                        f"{link_filename(step.name, keyid)}: command {link.command} differs from "
                        f"expected {step.expected_command} (in-toto only warns)"
                    )
        return links if self.check_agreement(step, links) else None

    # -- steps 8 and 10 ----------------------------------------------------
    def check_rules(self, items: Sequence[Any], links: Mapping[str, Any], kind: str) -> None:
        RuleVerificationError = lib("in_toto.exceptions").RuleVerificationError
        verify_item_rules = lib("in_toto.verifylib").verify_item_rules

        check = Check.ARTIFACT_RULE
        for item in items:
            if item.name not in links:
                continue
            for side, rules in (
                ("materials", item.expected_materials),
                ("products", item.expected_products),
            ):
                try:
                    verify_item_rules(item.name, side, rules, dict(links))
                except RuleVerificationError as exc:
                    first = str(exc).splitlines()[0] if str(exc) else "rule failed"
                    self.fail(
                        check,
                        self.stage(item.name),
                        f"{side} rule failed: {first}",
                        expected=f"every {side[:-1]} of the {kind} authorized by its rules",
                        found=_explain(rules, side, item.name, links) or first,
                        remedy="check that the step used exactly what earlier steps produced "
                        "(an artifact changed between steps, or an unexpected one appeared)",
                    )

    # -- step 9 --------------------------------------------------------------
    def record_workdir(self) -> dict[str, Any]:
        """Hash the work directory as in-toto's inspections do (``record_artifacts_as_dict``)."""
        record_artifacts_as_dict = lib("in_toto.runlib").record_artifacts_as_dict

        with _CWD_LOCK, warnings.catch_warnings():
            # pathspec (in-toto's exclude patterns) deprecates the pattern style in-toto uses.
            warnings.simplefilter("ignore", DeprecationWarning)
            cwd = os.getcwd()
            try:
                return dict(
                    record_artifacts_as_dict(
                        ["."], base_path=os.fspath(self.workdir.resolve()), follow_symlink_dirs=True
                    )
                )
            finally:
                os.chdir(cwd)

    def run_inspection(self, inspection: Any) -> Any | None:
        Link = lib("in_toto.models.link").Link

        stage = self.stage(inspection.name)
        command = [str(a) for a in inspection.run]
        self.inspection_status[stage] = "failed"
        remedy = "fix the artifacts or the layout's inspection command"
        if not command:
            self.fail(
                INSPECTION_CHECK,
                stage,
                "inspection has no command (in-toto requires one that exits 0)",
                expected="a command",
                found="run: []",
                remedy=remedy,
            )
            return None
        materials = self.record_workdir()
        try:
            proc = subprocess.run(
                command,
                cwd=self.workdir,
                capture_output=True,
                timeout=self.inspect_timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            found = f"still running after {self.inspect_timeout} s"
        except OSError as exc:
            found = f"cannot run {command[0]!r}: {exc.strerror or exc}"
        else:
            if proc.returncode == 0:
                self.inspection_status[stage] = "ok"
                return Link(
                    name=inspection.name,
                    materials=materials,
                    products=self.record_workdir(),
                    command=command,
                    byproducts={"return-value": 0},
                    environment={},
                )
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            found = f"exit status {proc.returncode}" + (f": {' / '.join(tail)}" if tail else "")
        self.fail(
            INSPECTION_CHECK,
            stage,
            f"inspection command {' '.join(command)!r} failed",
            expected=f"exit status 0 in {self.workdir}",
            found=found,
            remedy=remedy,
        )
        return None

    def run_inspections(self, layout: Any) -> dict[str, Any]:
        inspections = list(layout.inspect)
        if not inspections:
            return {}
        names = ", ".join(self.stage(i.name) for i in inspections)
        if self.report.failures:
            for i in inspections:
                self.inspection_status[self.stage(i.name)] = "not-run"
            self.report.notes.append(
                f"inspections not run ({names}): earlier checks failed, and in-toto runs "
                "inspections only on verified artifacts"
            )
            return {}
        if not self.allow_inspections:
            for i in inspections:
                stage = self.stage(i.name)
                self.inspection_status[stage] = "not-run"
                if self.step_name:
                    message = (
                        "a functionary's sublayout requires this inspection; only the policy "
                        "owner's own layout may run commands, so it is not run"
                    )
                    remedy = "move the inspection into the owner's top-level layout"
                else:
                    message = (
                        "the layout requires this inspection, but running inspections is disabled"
                    )
                    remedy = (
                        "allow inspections (they execute the layout's commands) if you trust "
                        "the layout owner"
                    )
                self.fail(
                    INSPECTION_CHECK,
                    stage,
                    message,
                    expected=f"run {' '.join(i.run)!r} in {self.workdir}",
                    found="not run",
                    remedy=remedy,
                )
            return {}
        out: dict[str, Any] = {}
        for inspection in inspections:
            link = self.run_inspection(inspection)
            if link is None:
                break  # later inspections may depend on this one, as in in-toto
            out[inspection.name] = link
        return out

    # -- all -----------------------------------------------------------------
    def run(self) -> Any | None:
        """Verify; return in-toto's summary link, or None if this (sub)layout failed."""
        get_summary_link = lib("in_toto.verifylib").get_summary_link

        start = len(self.report.failures)
        if not self.check_signatures():
            return None
        layout = self.metadata.get_payload()
        self.check_expiry(layout)
        links: dict[str, Any] = {}
        for step in layout.steps:
            step_links = self.step_links(layout, step)
            if step_links is not None:
                links[step.name] = next(iter(step_links.values()))
        self.check_rules(layout.steps, links, "step")
        inspected = self.run_inspections(layout)
        self.check_rules(layout.inspect, {**links, **inspected}, "inspection")
        self.summarize(layout, links)
        if len(self.report.failures) > start:
            return None
        return get_summary_link(layout, links, self.step_name)

    def summarize(self, layout: Any, links: Mapping[str, Any]) -> None:
        failed = {f.stage for f in self.report.failures if f.stage}
        summaries = []
        for step in layout.steps:
            stage = self.stage(step.name)
            if step.name not in links:
                status = "failed" if self.files.get(stage) or stage in failed else "missing"
            else:
                status = "failed" if stage in failed else "ok"
            summaries.append(
                StageSummary(
                    stage,
                    STEP_KIND,
                    status,
                    tuple(self.signers.get(stage, ())),
                    tuple(self.files.get(stage, ())),
                )
            )
        for inspection in layout.inspect:
            stage = self.stage(inspection.name)
            status = self.inspection_status.get(stage, "not-run")
            if status == "ok" and stage in failed:
                status = "failed"
            summaries.append(StageSummary(stage, INSPECTION_KIND, status))
        self.report.stages.extend(summaries)


def verify_intoto_layout(
    layout_path: Path,
    layout_keys: Sequence[Path],
    link_dir: Path,
    *,
    now: datetime | None = None,
    run_inspections: bool = True,
    workdir: Path | None = None,
    inspect_timeout: float = DEFAULT_INSPECT_TIMEOUT,
) -> VerificationReport:
    """Verify an in-toto layout (legacy Metablock or DSSE) against the links in ``link_dir``.

    ``layout_keys`` are SPKI PEM public keys; every one must have signed the
    layout (``in-toto-verify --verification-keys``). Links are legacy or DSSE
    ``<step>.<keyid8>.link`` files. Inspections run in ``workdir`` (default:
    ``link_dir``) when ``run_inspections`` is true; otherwise a layout with
    inspections is denied. Never raises for a denial: the report lists every
    failure. Raises :class:`UsageError` without keys, :class:`BadInputError` for
    unreadable inputs and :class:`BackendError` when in-toto is not installed.
    """
    require_intoto()
    if not layout_keys:
        raise UsageError("at least one --policy-key is required to trust the layout")
    keys: dict[str, dict[str, Any]] = {}
    for path in layout_keys:
        key = load_layout_key(path)
        keys[key["keyid"]] = key
    metadata = load_metadata(layout_path, what=str(layout_path))
    if metadata.get_payload().type_ != "layout":
        raise MalformedDocumentError(f"{layout_path}: is an in-toto link, not a layout")
    if not link_dir.is_dir():
        raise BadInputError(
            f"link directory {link_dir} does not exist",
            remedy="pass --store pointing at the folder holding the <step>.<keyid8>.link files",
        )
    if workdir is not None and not workdir.is_dir():
        raise BadInputError(f"inspection directory {workdir} does not exist")
    moment = now or datetime.now(UTC)
    report = VerificationReport(
        policy_name=f"in-toto layout {layout_path.name}",
        policy_digest="sha256:" + hashlib.sha256(layout_path.read_bytes()).hexdigest(),
        run_id=None,
        verified_at=format_rfc3339(moment),
    )
    LayoutVerifier(
        metadata,
        keys,
        link_dir,
        report,
        now=moment,
        run_inspections=run_inspections,
        workdir=workdir or link_dir,
        inspect_timeout=inspect_timeout,
    ).run()
    return report
