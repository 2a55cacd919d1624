"""in-toto artifact rules: parsing and evaluation with in-toto's semantics.

Rules are written as in in-toto layouts::

    CREATE <pattern>            DELETE <pattern>          MODIFY <pattern>
    ALLOW <pattern>             DISALLOW <pattern>        REQUIRE <name>
    MATCH <pattern> [IN <prefix>] WITH (MATERIALS|PRODUCTS) [IN <prefix>] FROM <stage>

Evaluation follows in-toto's verifylib: a queue holds every artifact of the
link; each rule in order *consumes* the artifacts it authorizes; DISALLOW fails
if any artifact still queued matches; REQUIRE fails if the name is not queued.
Patterns use ``fnmatch`` (``*`` also matches ``/``), as in in-toto.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Mapping
from enum import StrEnum

from msgspec import Struct

Digests = Mapping[str, Mapping[str, str]]


class RuleVerb(StrEnum):
    MATCH = "MATCH"
    CREATE = "CREATE"
    DELETE = "DELETE"
    MODIFY = "MODIFY"
    ALLOW = "ALLOW"
    DISALLOW = "DISALLOW"
    REQUIRE = "REQUIRE"


class RuleSyntaxError(ValueError):
    """A rule string does not follow the in-toto rule grammar."""


class ArtifactRule(Struct, frozen=True):
    """One parsed artifact rule."""

    verb: RuleVerb
    pattern: str
    source_prefix: str | None = None
    dest_type: str | None = None  # "materials" | "products" for MATCH
    dest_prefix: str | None = None
    dest_stage: str | None = None

    def __str__(self) -> str:
        if self.verb is not RuleVerb.MATCH:
            return f"{self.verb.value} {self.pattern}"
        out = f"MATCH {self.pattern}"
        if self.source_prefix:
            out += f" IN {self.source_prefix}"
        assert self.dest_type is not None
        out += f" WITH {self.dest_type.upper()}"
        if self.dest_prefix:
            out += f" IN {self.dest_prefix}"
        return out + f" FROM {self.dest_stage}"

    @classmethod
    def parse(cls, text: str) -> ArtifactRule:
        tokens = text.split()
        if not tokens:
            raise RuleSyntaxError("empty rule")
        try:
            verb = RuleVerb(tokens[0].upper())
        except ValueError as exc:
            allowed = ", ".join(v.value for v in RuleVerb)
            raise RuleSyntaxError(
                f"unknown rule verb {tokens[0]!r} (expected one of {allowed})"
            ) from exc
        if verb is not RuleVerb.MATCH:
            if len(tokens) != 2:
                raise RuleSyntaxError(f"{verb.value} takes exactly one pattern: {text!r}")
            return cls(verb, tokens[1])
        return cls._parse_match(tokens, text)

    @classmethod
    def _parse_match(cls, tokens: list[str], text: str) -> ArtifactRule:
        usage = "MATCH <pattern> [IN <prefix>] WITH (MATERIALS|PRODUCTS) [IN <prefix>] FROM <stage>"
        rest = tokens[1:]
        if len(rest) < 4:
            raise RuleSyntaxError(f"incomplete MATCH rule {text!r}; expected {usage}")
        pattern, rest = rest[0], rest[1:]
        source_prefix = None
        if rest[0].upper() == "IN":
            if len(rest) < 2:
                raise RuleSyntaxError(f"MATCH ... IN needs a prefix: {text!r}")
            source_prefix, rest = rest[1], rest[2:]
        if (
            len(rest) < 4
            or rest[0].upper() != "WITH"
            or rest[1].upper()
            not in (
                "MATERIALS",
                "PRODUCTS",
            )
        ):
            raise RuleSyntaxError(f"malformed MATCH rule {text!r}; expected {usage}")
        dest_type = rest[1].lower()
        rest = rest[2:]
        dest_prefix = None
        if rest and rest[0].upper() == "IN":
            if len(rest) < 2:
                raise RuleSyntaxError(f"MATCH ... WITH ... IN needs a prefix: {text!r}")
            dest_prefix, rest = rest[1], rest[2:]
        if len(rest) != 2 or rest[0].upper() != "FROM":
            raise RuleSyntaxError(f"malformed MATCH rule {text!r}; expected {usage}")
        return cls(RuleVerb.MATCH, pattern, source_prefix, dest_type, dest_prefix, rest[1])


class RuleViolation(Struct, frozen=True):
    """Why one rule rejected a link's artifacts."""

    rule: ArtifactRule
    artifacts: tuple[str, ...]
    message: str


class LinkArtifacts(Struct, frozen=True):
    """The materials and products of one stage, as name -> DigestSet."""

    materials: Digests
    products: Digests


def _short(digest: Mapping[str, str]) -> str:
    return "sha256:" + digest.get("sha256", "?")[:12] + "…"


def _match(
    rule: ArtifactRule,
    queue: set[str],
    source: Digests,
    links: Mapping[str, LinkArtifacts],
    misses: dict[str, str],
) -> set[str]:
    """Consume queued artifacts equal to the named stage's; note why others did not match."""
    assert rule.dest_stage is not None
    pattern = rule.pattern
    if rule.source_prefix:
        pattern = posixpath.join(rule.source_prefix, pattern)
    candidates = fnmatch.filter(sorted(queue), pattern)
    dest_link = links.get(rule.dest_stage)
    if dest_link is None:
        for path in candidates:
            misses.setdefault(path, f"stage {rule.dest_stage!r} has no valid attestation to match")
        return set()
    dest = dest_link.materials if rule.dest_type == "materials" else dest_link.products
    consumed: set[str] = set()
    for path in candidates:
        dest_path = path
        if rule.source_prefix:
            dest_path = posixpath.relpath(path, rule.source_prefix)
        if rule.dest_prefix:
            dest_path = posixpath.join(rule.dest_prefix, dest_path)
        if dest_path not in dest:
            misses.setdefault(
                path,
                f"{rule.dest_stage!r} recorded no {rule.dest_type[:-1] if rule.dest_type else 'artifact'} {dest_path!r}",
            )
        elif dict(source[path]) != dict(dest[dest_path]):
            misses.setdefault(
                path,
                f"differs from what {rule.dest_stage!r} recorded "
                f"({_short(source[path])} here, {_short(dest[dest_path])} there)",
            )
        else:
            consumed.add(path)
    return consumed


def evaluate_rules(
    rules: tuple[ArtifactRule, ...],
    artifacts: Digests,
    link: LinkArtifacts,
    links: Mapping[str, LinkArtifacts],
) -> list[RuleViolation]:
    """Apply ``rules`` to ``artifacts`` (the link's materials or products).

    Returns every violation (DISALLOW/REQUIRE), in rule order. An empty list
    means the artifacts are authorized.
    """
    queue = set(artifacts)
    created = set(link.products) - set(link.materials)
    deleted = set(link.materials) - set(link.products)
    modified = {
        name
        for name in set(link.materials) & set(link.products)
        if dict(link.materials[name]) != dict(link.products[name])
    }
    violations: list[RuleViolation] = []
    misses: dict[str, str] = {}
    for rule in rules:
        if rule.verb is RuleVerb.REQUIRE:
            if rule.pattern not in queue:
                violations.append(
                    RuleViolation(
                        rule, (rule.pattern,), f"required artifact {rule.pattern!r} is absent"
                    )
                )
            continue
        filtered = set(fnmatch.filter(sorted(queue), rule.pattern))
        if rule.verb is RuleVerb.DISALLOW:
            if filtered:
                names = tuple(sorted(filtered))
                reasons = [f"{n} ({misses[n]})" if n in misses else n for n in names]
                violations.append(
                    RuleViolation(
                        rule, names, "not authorized by any earlier rule: " + "; ".join(reasons)
                    )
                )
            continue
        if rule.verb is RuleVerb.MATCH:
            consumed = _match(rule, queue, artifacts, links, misses)
        elif rule.verb is RuleVerb.CREATE:
            consumed = filtered & created
        elif rule.verb is RuleVerb.DELETE:
            consumed = filtered & deleted
        elif rule.verb is RuleVerb.MODIFY:
            consumed = filtered & modified
        else:  # ALLOW
            consumed = filtered
        queue -= consumed
    return violations
