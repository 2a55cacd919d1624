"""Reading policies: YAML (with line numbers for every problem) or signed JSON payloads.

One function, :func:`compile_policy`, turns a plain JSON-like document into a
:class:`Policy` and reports *every* problem it finds; YAML loading only adds
the source line of each problem.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from mlspec_attest.errors import BackendError, MlspecError, PolicyError
from mlspec_attest.formats.limits import MAX_POLICY_BYTES
from mlspec_attest.formats.schemas import schema_errors
from mlspec_attest.formats.stages import StageKind
from mlspec_attest.formats.yamlio import YamlError, load_yaml, read_yaml_file
from mlspec_attest.policy.model import (
    DataValidationRule,
    DeployArtifact,
    Functionary,
    LeakageRule,
    Policy,
    Requirement,
    SeparationRule,
    StagePolicy,
    format_rfc3339,
    parse_rfc3339,
)
from mlspec_attest.policy.rules import ArtifactRule, RuleSyntaxError, RuleVerb
from mlspec_attest.signing.keys import LocalPublicKey, load_public_key
from mlspec_attest.signing.sigstore.verify import SigstoreIdentity, TrustRoot

LineOf = Callable[[Sequence[str | int]], int | None]

EXPIRES_SOON = timedelta(days=30)
"""Lint warns about a policy that expires sooner than this: renew and re-sign it in time."""


@dataclass(frozen=True)
class Problem:
    """One finding of the policy linter."""

    message: str
    line: int | None = None
    path: str = ""
    severity: str = "error"  # or "warning"
    code: str = ""  # "expired" marks the clock-dependent error a load ignores

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        field = f"{self.path}: " if self.path else ""
        return f"{where}{self.severity}: {field}{self.message}"


def plain(node: Any) -> Any:
    """ruamel round-trip nodes -> plain dict/list/str; timestamps -> RFC 3339 strings."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, datetime):
        moment = node if node.tzinfo else node.replace(tzinfo=UTC)
        try:
            return format_rfc3339(moment)
        except (OverflowError, ValueError):
            # Out of range once shifted to UTC: keep the text, so the field's own
            # check reports it on its line (parse_rfc3339 refuses it).
            return moment.isoformat()
    if isinstance(node, date):
        return node.isoformat() + "T00:00:00Z"
    return node


def _line_finder(root: Any) -> LineOf:
    def line_of(path: Sequence[str | int]) -> int | None:
        node = root
        line: int | None = None
        for part in path:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        if line is None and isinstance(root, CommentedMap):
            return 1
        return line

    return line_of


class YamlSyntaxError(PolicyError):
    """YAML that does not parse (or has duplicate keys), with the line of the problem."""

    def __init__(self, message: str, problem: Problem) -> None:
        super().__init__(message, [str(problem)])
        self.problem = problem


def parse_yaml(text: str, *, source: str, max_bytes: int = MAX_POLICY_BYTES) -> tuple[Any, LineOf]:
    """Parse policy YAML strictly and boundedly (see :mod:`mlspec_attest.formats.yamlio`)."""
    try:
        root = load_yaml(text, what=source, max_bytes=max_bytes)
    except YamlError as exc:
        if not exc.parsing:
            raise PolicyError(exc.message) from exc  # not parsed at all (too large)
        problem = Problem(f"not valid YAML: {exc.detail}", exc.line)
        raise YamlSyntaxError(f"{source}: cannot be read as YAML", problem) from exc
    return root, _line_finder(root)


def _json_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def compile_policy(
    doc: Any,
    *,
    base_dir: Path | None,
    line_of: LineOf = lambda _p: None,
) -> tuple[Policy | None, list[Problem]]:
    """Validate ``doc`` and build a Policy. Returns (policy or None, every problem).

    ``base_dir`` resolves functionary ``key:`` paths; ``None`` forbids them
    (a signed policy must be self-contained). The clock plays no part: an
    expired policy compiles (verification denies it; :func:`expiry_problems`
    lets lint and ``policy sign`` refuse it first).
    """
    problems: list[Problem] = []

    def err(path: Sequence[str | int], message: str, severity: str = "error") -> None:
        problems.append(Problem(message, line_of(path), _json_path(path), severity))

    schema_problems = schema_errors("policy-v1", doc)
    for path, message in schema_problems:
        err(path, message)
    if schema_problems:
        # Unknown fields alone do not stop the semantic checks: drop them and go
        # on, so one lint run reports every problem. Anything else does.
        doc = _without_unknown_fields(doc, schema_problems)
        if doc is None or schema_errors("policy-v1", doc):
            return None, problems

    # functionaries
    functionaries: dict[str, Functionary] = {}
    for name, spec in doc["functionaries"].items():
        if "sigstore" in spec:
            try:
                identity = SigstoreIdentity.from_json(spec["sigstore"])
            except ValueError as exc:
                err(["functionaries", name, "sigstore"], str(exc))
                continue
            functionaries[name] = Functionary(
                name, description=spec.get("description", ""), identity=identity
            )
            continue
        try:
            if "key" in spec:
                if base_dir is None:
                    err(
                        ["functionaries", name, "key"],
                        "signed policies must embed publicKey, not key paths",
                    )
                    continue
                key = load_public_key(base_dir / spec["key"])
            else:
                key = LocalPublicKey.from_pem(spec["publicKey"], source=f"functionary {name}")
        except MlspecError as exc:
            err(["functionaries", name], exc.message)
            continue
        functionaries[name] = Functionary(name, key, spec.get("description", ""))
    sigstore_trust = _sigstore_trust(doc, functionaries, base_dir, err)
    seen_keys: dict[str, str] = {}
    for f in functionaries.values():
        if f.keyid in seen_keys:
            err(
                ["functionaries", f.name],
                f"same key as functionary {seen_keys[f.keyid]!r}",
                "warning",
            )
        seen_keys.setdefault(f.keyid, f.name)

    # stages
    names = [s["name"] for s in doc["stages"]]
    stages: list[StagePolicy] = []
    for i, raw in enumerate(doc["stages"]):
        here: list[str | int] = ["stages", i]
        if names.count(raw["name"]) > 1 and names.index(raw["name"]) != i:
            err([*here, "name"], f"duplicate stage name {raw['name']!r}")
        for j, f in enumerate(raw["functionaries"]):
            if f not in doc["functionaries"]:
                err([*here, "functionaries", j], f"unknown functionary {f!r}")
        threshold = raw.get("threshold", 1)
        if threshold > len(raw["functionaries"]):
            err(
                [*here, "threshold"],
                f"threshold {threshold} exceeds the {len(raw['functionaries'])} functionaries allowed",
            )
        for j, prior in enumerate(raw.get("after", [])):
            if prior == raw["name"]:
                err([*here, "after", j], "a stage cannot come after itself")
            elif prior not in names:
                err([*here, "after", j], f"unknown stage {prior!r}")
        rules: dict[str, tuple[ArtifactRule, ...]] = {}
        for side in ("materials", "products"):
            parsed: list[ArtifactRule] = []
            for j, text in enumerate(raw.get(side, [])):
                try:
                    parsed.append(ArtifactRule.parse(text))
                except RuleSyntaxError as exc:
                    err([*here, side, j], str(exc))
            rules[side] = tuple(parsed)
            if side not in raw:
                err(
                    [*here],
                    f"no {side} rules: any {side[:-1]} passes (add rules ending with 'DISALLOW *')",
                    "warning",
                )
            if raw.get(side) and (not parsed or parsed[-1].verb is not RuleVerb.DISALLOW):
                err(
                    [*here, side],
                    "rules do not end with 'DISALLOW *'; unlisted artifacts pass",
                    "warning",
                )
        stages.append(
            StagePolicy(
                name=raw["name"],
                kind=StageKind(raw["kind"]),
                functionaries=tuple(raw["functionaries"]),
                threshold=threshold,
                after=tuple(raw.get("after", [])),
                material_rules=rules["materials"],
                product_rules=rules["products"],
                required=raw.get("required", True),
                description=raw.get("description", ""),
            )
        )

    deploy: dict[str, DeployArtifact] = {}
    for role, spec in doc.get("deploy", {}).get("artifacts", {}).items():
        if spec["stage"] not in names:
            err(["deploy", "artifacts", role, "stage"], f"unknown stage {spec['stage']!r}")
        deploy[role] = DeployArtifact(
            role,
            spec["stage"],
            spec["product"],
            spec.get("required", True),
            spec.get("description", ""),
        )

    ml = _ml_sections(doc, names, stages, err)

    try:
        expires = parse_rfc3339(doc["expires"])
    except ValueError as exc:
        err(["expires"], f"not an RFC 3339 instant: {exc}")
        expires = datetime.now(UTC)  # a placeholder: the error above already fails the policy

    meta = doc.get("metadata", {})
    policy = Policy(
        expires=expires,
        functionaries=functionaries,
        stages=tuple(stages),
        deploy=deploy,
        name=meta.get("name", ""),
        description=meta.get("description", ""),
        owner=meta.get("owner", ""),
        require_policy_digest=doc.get("requirePolicyDigest", False),
        sigstore_trust=sigstore_trust,
        **ml,
    )
    problems.extend(_graph_problems(policy, line_of))
    if any(p.severity == "error" for p in problems):
        return None, problems
    return policy, problems


def _sigstore_trust(
    doc: dict[str, Any],
    functionaries: dict[str, Functionary],
    base_dir: Path | None,
    err: Callable[..., None],
) -> TrustRoot | None:
    """The ``trust.sigstore`` root: a file or an instance in YAML, always embedded once signed."""
    spec = doc.get("trust", {}).get("sigstore")
    keyless = [f.name for f in functionaries.values() if f.identity is not None]
    if spec is None:
        if keyless:
            err(
                ["functionaries", keyless[0], "sigstore"],
                f"Sigstore functionaries ({', '.join(keyless)}) need a trust root: "
                "add trust.sigstore with trustedRoot, trustConfig or instance",
            )
        return None
    here: list[str | int] = ["trust", "sigstore"]
    if not keyless:
        err(here, "a Sigstore trust root but no Sigstore functionary uses it", "warning")
    source = spec.get("source", "")
    try:
        root = spec.get("trustedRoot")
        if isinstance(root, dict):
            return TrustRoot.from_json(root, source=source or "embedded")
        if base_dir is None:
            err(here, "signed policies must embed the trustedRoot document, not a path or instance")
            return None
        if isinstance(root, str):
            found = TrustRoot.from_file(base_dir / root, source=root)
        elif "trustConfig" in spec:
            found = TrustRoot.from_file(base_dir / spec["trustConfig"], source=spec["trustConfig"])
        else:
            found = TrustRoot.embedded(spec["instance"])
    except MlspecError as exc:
        err(here, exc.message)
        return None
    try:
        found.sigstore()  # parse it fully now, not at verification time
    except BackendError:
        raise  # sigstore-python cannot be imported: exit 4, never a policy unchecked
    except MlspecError as exc:
        err(here, exc.message)
        return None
    return found


def _without_unknown_fields(
    doc: Any, found: list[tuple[list[str | int], str]]
) -> dict[str, Any] | None:
    """A copy of ``doc`` without the fields reported as unknown, or None if other errors exist."""
    import copy

    if not all(message.startswith("unknown field") for _, message in found):
        return None
    clean = copy.deepcopy(doc)
    for path, _ in found:
        node = clean
        for part in path[:-1]:
            node = node[part]
        node.pop(path[-1], None)
    return clean if isinstance(clean, dict) else None


def _ml_sections(
    doc: dict[str, Any],
    names: list[str],
    stages: list[StagePolicy],
    err: Callable[..., None],
) -> dict[str, Any]:
    """The ML-specific sections: objectives, separation, leakage, dataValidation, requirements."""
    from mlspec_attest.errors import MalformedDocumentError as _Bad
    from mlspec_attest.policy.celexpr import compile_expression

    kinds = {s.name: s.kind.value for s in stages}

    def stage_ref(path: list[str | int], name: str | None) -> None:
        if name is not None and name not in names:
            err(path, f"unknown stage {name!r}")

    out: dict[str, Any] = {}
    obj = doc.get("objectives")
    objective_stages = [s.name for s in stages if s.kind is StageKind.OBJECTIVES]
    if obj is not None:
        stage_ref(["objectives", "stage"], obj.get("stage"))
        out["objectives_stage"] = obj.get("stage") or (
            objective_stages[0] if objective_stages else None
        )
        out["objectives_required"] = obj.get("required", True)
        if out["objectives_stage"] is None:
            err(
                ["objectives"], "no stage of kind 'objectives' to read the objectives document from"
            )
    elif objective_stages:
        out["objectives_stage"] = objective_stages[0]
    sep = doc.get("separation")
    if sep is not None:
        for field_name in ("split", "evaluate", "test"):
            stage_ref(["separation", field_name], sep[field_name])
        valid_refs = set(names) | {k.value for k in StageKind}
        for j, ref in enumerate(sep.get("notReadBy", [])):
            if ref not in valid_refs:
                err(
                    ["separation", "notReadBy", j],
                    f"{ref!r} is neither a stage name nor a stage kind",
                )
        out["separation"] = SeparationRule(
            split=sep["split"],
            evaluate=sep["evaluate"],
            test=sep["test"],
            holdback_role=sep.get("holdbackRole", "holdback"),
            validation_role=sep.get("validationRole", "validation"),
            model_role=sep.get("modelRole", "model"),
            not_read_by=tuple(sep.get("notReadBy", ("transform", "train", "evaluate"))),
        )
        if sep["test"] in kinds and sep["evaluate"] in kinds and sep["test"] == sep["evaluate"]:
            err(["separation", "test"], "test and evaluate must be different stages")
    leak = doc.get("leakage")
    if leak is not None:
        stage_ref(["leakage", "stage"], leak["stage"])
        rule = LeakageRule(stage=leak["stage"], tolerance=leak.get("tolerance", 0))
        if "pairs" in leak:
            rule = LeakageRule(rule.stage, rule.tolerance, tuple((a, b) for a, b in leak["pairs"]))
        out["leakage"] = rule
    val = doc.get("dataValidation")
    if val is not None:
        stage_ref(["dataValidation", "stage"], val["stage"])
        stage_ref(["dataValidation", "trainStage"], val.get("trainStage"))
        out["data_validation"] = DataValidationRule(
            stage=val["stage"],
            schema=val.get("schema"),
            version=val.get("version"),
            forbid_deprecated=val.get("forbidDeprecated", True),
            train_stage=val.get("trainStage"),
        )
    requirements = []
    for i, req in enumerate(doc.get("requirements", [])):
        try:
            compile_expression(req["expr"])
        except _Bad as exc:
            err(["requirements", i, "expr"], exc.message)
        requirements.append(Requirement(req["id"], req["expr"], req.get("description", "")))
    out["requirements"] = tuple(requirements)
    return out


def _graph_problems(policy: Policy, line_of: LineOf) -> list[Problem]:
    """Ordering cycles and MATCH rules that point forward in time."""
    problems: list[Problem] = []
    index = {s.name: i for i, s in enumerate(policy.stages)}
    for s in policy.stages:
        before = policy.predecessors(s.name)
        if s.name in s.after:
            continue  # "cannot come after itself" is already reported
        if s.name in before:
            problems.append(
                Problem(
                    f"ordering cycle through stage {s.name!r}",
                    line_of(["stages", index[s.name], "after"]),
                    f"stages[{index[s.name]}].after",
                )
            )
            continue
        for side, rules in (("materials", s.material_rules), ("products", s.product_rules)):
            for j, rule in enumerate(rules):
                if rule.verb is not RuleVerb.MATCH:
                    continue
                path: list[str | int] = ["stages", index[s.name], side, j]
                if rule.dest_stage not in index:
                    problems.append(
                        Problem(
                            f"MATCH refers to unknown stage {rule.dest_stage!r}",
                            line_of(path),
                            _json_path(path),
                        )
                    )
                elif rule.dest_stage not in before:
                    problems.append(
                        Problem(
                            f"MATCH FROM {rule.dest_stage!r}, which is not ordered before {s.name!r} "
                            f"(add it to 'after', directly or transitively)",
                            line_of(path),
                            _json_path(path),
                        )
                    )
    return problems


def expiry_problems(expires: datetime, now: datetime, line: int | None = None) -> list[Problem]:
    """An expired policy is an error, one expiring within :data:`EXPIRES_SOON` a warning.

    Subtracting aware datetimes cannot overflow, whatever the years involved.
    """
    left = expires - now
    when = format_rfc3339(expires)
    if left <= timedelta(0):
        return [
            Problem(
                f"policy expired at {when}; verification will always deny it "
                "(set a later 'expires' and sign it again)",
                line,
                "expires",
                "error",
                "expired",
            )
        ]
    if left < EXPIRES_SOON:
        return [
            Problem(
                f"policy expires at {when}, in {left.days} day(s); renew it and sign it again "
                "before then",
                line,
                "expires",
                "warning",
            )
        ]
    return []


def lint_policy_text(
    text: str, *, source: str, base_dir: Path, now: datetime | None = None
) -> tuple[Policy | None, list[Problem]]:
    """Lint a YAML policy: every problem with its line number, expiry judged at ``now``."""
    try:
        root, line_of = parse_yaml(text, source=source)
    except YamlSyntaxError as exc:
        return None, [exc.problem]
    policy, problems = compile_policy(plain(root), base_dir=base_dir, line_of=line_of)
    if policy is not None:
        problems += expiry_problems(policy.expires, now or datetime.now(UTC), line_of(["expires"]))
    return policy, sorted(problems, key=lambda p: p.line or 0)


def read_policy_text(path: Path) -> str:
    """The text of a YAML policy file: at most :data:`~mlspec_attest.formats.limits.MAX_POLICY_BYTES`,
    UTF-8 (a leading BOM is dropped). Raises :class:`PolicyError` (exit 3)."""
    try:
        return read_yaml_file(path, MAX_POLICY_BYTES, what=str(path), kind="a policy")
    except YamlError as exc:
        raise PolicyError(exc.message) from exc


def load_policy_yaml(path: Path, *, now: datetime | None = None) -> Policy:
    """Load and compile a YAML policy file; raise PolicyError listing every error.

    Loading makes no trust decision, so an expired policy loads (verification
    denies it, ``policy sign`` refuses it); ``now`` only dates lint's warnings.
    """
    policy, problems = lint_policy_text(
        read_policy_text(path), source=str(path), base_dir=path.parent, now=now
    )
    errors = [str(p) for p in problems if p.severity == "error" and p.code != "expired"]
    if policy is None or errors:
        raise PolicyError(f"{path}: policy has {len(errors)} error(s)", errors)
    return policy
