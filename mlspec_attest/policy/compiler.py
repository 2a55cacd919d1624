"""Compiling a policy document: the JSON-like tree of a YAML or signed policy -> :class:`Policy`.

One function, :func:`compile_policy`, reports *every* problem it finds in one pass
(YAML loading only adds the source line of each). The document is checked against
the policy-v1 JSON Schema first, then section by section: functionaries
(:mod:`~mlspec_attest.policy.functionaries`), the Sigstore trust root
(:mod:`~mlspec_attest.policy.trust`), stages and their ordering
(:mod:`~mlspec_attest.policy.stages`), deploy artifacts, and the ML sections
(:mod:`~mlspec_attest.policy.ml_sections`).

A schema problem does not stop the section checks: they read a copy of the document
in which each part the schema refused is left out or stood in for
(:func:`_usable`), and what they would say about a stand-in is not reported twice.
"""

from __future__ import annotations

import ast
import copy
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgspec import Struct, field

from mlspec_attest.formats.rfc3339 import parse_day_or_instant
from mlspec_attest.formats.schemas import load_schema, schema_errors
from mlspec_attest.policy.functionaries import compile_functionaries, report_shared_keys
from mlspec_attest.policy.ml_sections import ml_sections
from mlspec_attest.policy.model import DeployArtifact, Policy
from mlspec_attest.policy.problems import Findings, Problem, json_path, no_lines
from mlspec_attest.policy.stages import compile_stages, ordering_problems, usable_stage
from mlspec_attest.policy.trust import sigstore_trust

if TYPE_CHECKING:
    from mlspec_attest.formats.yamlio import LineOf

SCHEMA = "policy-v1"
#: The sections that name stages: when the stage list itself is unusable, what they
#: say about unknown stages is not news.
_NAMING_STAGES = ("deploy", "objectives", "separation", "leakage", "dataValidation")


def compile_policy(
    doc: Any,
    *,
    base_dir: Path | None,
    line_of: LineOf = no_lines,
) -> tuple[Policy | None, list[Problem]]:
    """Validate ``doc`` and build a Policy. Returns (policy or None, every problem).

    ``base_dir`` resolves functionary ``key:`` paths; ``None`` forbids them
    (a signed policy must be self-contained). The clock plays no part: an
    expired policy compiles (verification denies it;
    :func:`~mlspec_attest.policy.problems.expiry_problems` lets lint and
    ``policy sign`` refuse it first).
    """
    report = Findings(line_of, stage_names=_stage_names(doc))
    if not isinstance(doc, dict):
        report([], _not_a_mapping(doc))
        return None, report.problems
    found = schema_errors(SCHEMA, doc)
    for path, message in found:
        report(path, _in_words(message))
    usable = _usable(doc, found)
    checks = Findings(line_of, stage_names=report.stage_names)
    policy = _build(usable, base_dir, checks)
    ordering_problems(policy, checks)
    report.problems.extend(p for p in checks.problems if not usable.covers(p.path))
    if report.has_errors():
        return None, report.problems
    return policy, report.problems


def _stage_names(doc: Any) -> list[str | None]:
    """The name of each stage as written, for people (:attr:`Problem.where`)."""
    stages = doc.get("stages") if isinstance(doc, dict) else None
    names: list[str | None] = []
    for stage in stages if isinstance(stages, list) else []:
        name = stage.get("name") if isinstance(stage, dict) else None
        names.append(name if isinstance(name, str) else None)
    return names


def _not_a_mapping(doc: Any) -> str:
    required = list(load_schema(SCHEMA)["required"])
    fields = ", ".join(required[:-1]) + " and " + required[-1]
    what = {type(None): "empty", list: "a list", str: "a single string"}.get(
        type(doc), f"a single {type(doc).__name__} value"
    )
    return f"the policy is {what}: expected a mapping with {fields}"


# -------------------------------------------------------------- schema messages in words
_NO_MATCH = re.compile(r"(?P<value>.*) does not match (?P<pattern>'.*'|\".*\")", re.DOTALL)


@cache
def _pattern_words() -> dict[str, str]:
    """Each pattern of the schema -> its ``patternErrorMessage`` (what editors show too)."""
    words: dict[str, str] = {}
    todo: list[Any] = [load_schema(SCHEMA)]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if "pattern" in node and "patternErrorMessage" in node:
                words[node["pattern"]] = node["patternErrorMessage"]
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return words


def _in_words(message: str) -> str:
    """A schema message, with a regular expression it quotes replaced by its words."""
    match = _NO_MATCH.fullmatch(message)
    if match is None:
        return message
    try:
        words = _pattern_words().get(ast.literal_eval(match["pattern"]))
    except (ValueError, SyntaxError):  # not the quoted pattern jsonschema writes
        return message
    return f"{match['value']} is {words}" if words else message


# -------------------------------------------------------------- what the checks can read
class _Usable(Struct):
    """A copy of the document the section checks can read, made from one the schema refused."""

    doc: dict[str, Any]
    signers: set[str] | None  # functionary names a stage may name (None: not knowable)
    covered: list[str] = field(default_factory=list)  # JSON paths already reported
    expires_ok: bool = True

    def cover(self, path: list[str | int]) -> None:
        self.covered.append(json_path(path))

    def covers(self, path: str) -> bool:
        """Whether a section check's finding at ``path`` is about a part the schema refused."""
        return any(path == c or (path.startswith(c) and path[len(c)] in ".[") for c in self.covered)


def _usable(doc: dict[str, Any], found: list[tuple[list[str | int], str]]) -> _Usable:
    functionaries = doc.get("functionaries")
    usable = _Usable(
        copy.deepcopy(doc), set(functionaries) if isinstance(functionaries, dict) else None
    )
    for path, message in found:
        if message.startswith("unknown field"):
            _drop(usable.doc, path)
        elif not path:
            _missing_sections(usable)
        elif path[0] == "stages":
            _usable_stages(usable, path)
        elif path[0] == "functionaries":
            _usable_functionaries(usable, path)
        else:
            _usable_section(usable, path)
    if "trust" in doc and "trust" not in usable.doc:
        # "Sigstore functionaries need a trust root" would only repeat the schema's finding
        for name, spec in usable.doc["functionaries"].items():
            if "sigstore" in spec:
                usable.cover(["functionaries", name, "sigstore"])
    return usable


def _drop(doc: Any, path: list[str | int]) -> None:
    """Remove the field at ``path`` if it is still there."""
    node = doc
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _missing_sections(usable: _Usable) -> None:
    """Required top-level fields that are absent (reported by the schema at the root)."""
    doc = usable.doc
    if "expires" not in doc:
        usable.expires_ok = False
    if not isinstance(doc.get("functionaries"), dict):
        doc["functionaries"], usable.signers = {}, None
    if not isinstance(doc.get("stages"), list):
        _no_stages(usable)


def _no_stages(usable: _Usable) -> None:
    usable.doc["stages"] = []
    for section in _NAMING_STAGES:
        usable.cover([section])


def _usable_stages(usable: _Usable, path: list[str | int]) -> None:
    stages = usable.doc["stages"]
    if len(path) == 1 or not isinstance(stages, list):
        if not isinstance(stages, list) or not stages:
            _no_stages(usable)
        return
    index = int(path[1])
    if index >= len(stages):
        return
    if not isinstance(stages[index], dict):
        usable.cover(path[:2])  # nothing of it can be read: no finding about it is news
    stages[index], made_up = usable_stage(stages[index], index)
    for name in made_up:
        usable.cover(["stages", index, name])
    if len(path) > 2:
        usable.cover(path[:3])


def _usable_functionaries(usable: _Usable, path: list[str | int]) -> None:
    section = usable.doc["functionaries"]
    if len(path) > 1 and isinstance(section, dict):
        section.pop(path[1], None)  # its name stays known: stages naming it are not wrong
    elif not isinstance(section, dict) or not section:
        usable.doc["functionaries"], usable.signers = {}, None


def _usable_section(usable: _Usable, path: list[str | int]) -> None:
    """expires, the ML sections, deploy, trust, metadata: left out where the schema refused them."""
    head, doc = path[0], usable.doc
    if head == "expires":
        usable.expires_ok = False
    elif head in ("apiVersion", "kind"):
        return  # nothing after the schema reads them
    elif head == "deploy" and len(path) > 2 and isinstance(doc.get("deploy"), dict):
        _drop(doc, path[:3])  # one artifact
    elif head == "requirements" and len(path) > 1 and isinstance(doc.get("requirements"), list):
        doc["requirements"][int(path[1])] = {"id": "-", "expr": "true"}  # keeps the others' indexes
        usable.cover(path[:2])
    else:
        doc.pop(str(head), None)


# -------------------------------------------------------------- building the policy
def _build(usable: _Usable, base_dir: Path | None, report: Findings) -> Policy:
    """The policy ``usable.doc`` describes, in the order lint reports its sections' problems."""
    doc = usable.doc
    functionaries = compile_functionaries(doc, base_dir, report)
    trust = sigstore_trust(doc, functionaries, base_dir, report)
    report_shared_keys(functionaries, report)
    stages = compile_stages(doc, report, usable.signers)
    deploy = _deploy_artifacts(doc, [s.name for s in stages], report)
    ml = ml_sections(doc, stages, report)
    meta = doc.get("metadata", {})
    return Policy(
        expires=_expires(doc, report) if usable.expires_ok else datetime.now(UTC),
        functionaries=functionaries,
        stages=tuple(stages),
        deploy=deploy,
        name=meta.get("name", ""),
        description=meta.get("description", ""),
        owner=meta.get("owner", ""),
        require_policy_digest=doc.get("requirePolicyDigest", False),
        sigstore_trust=trust,
        **ml,
    )


def _expires(doc: dict[str, Any], report: Findings) -> datetime:
    """``expires`` as the instant it names (a date alone: the start of that day, UTC)."""
    try:
        expires, zoned = parse_day_or_instant(doc["expires"])
    except ValueError as exc:
        report(["expires"], str(exc))
        return datetime.now(UTC)  # a placeholder: the error above already fails the policy
    if not zoned:
        report(
            ["expires"],
            f"{doc['expires']!r} has no time zone, so it is read as UTC; add Z (UTC) or an "
            "offset such as +02:00 to say so",
            "warning",
        )
    return expires


def _deploy_artifacts(
    doc: dict[str, Any], names: list[str], report: Findings
) -> dict[str, DeployArtifact]:
    deploy: dict[str, DeployArtifact] = {}
    for role, spec in doc.get("deploy", {}).get("artifacts", {}).items():
        if spec["stage"] not in names:
            report(["deploy", "artifacts", role, "stage"], f"unknown stage {spec['stage']!r}")
        deploy[role] = DeployArtifact(
            role,
            spec["stage"],
            spec["product"],
            spec.get("required", True),
            spec.get("description", ""),
        )
    return deploy
