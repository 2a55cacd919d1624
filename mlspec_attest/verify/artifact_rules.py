"""Step 7: the in-toto artifact rules of every stage, on its materials and products.

Directories a rule looks inside are expanded file by file from their signed
manifests (:mod:`mlspec_attest.verify.dirfiles`) before the rules run
(:func:`mlspec_attest.policy.rules.evaluate_rules`).
"""

from __future__ import annotations

from collections.abc import Mapping

from mlspec_attest.policy.model import Policy, StagePolicy
from mlspec_attest.policy.rules import LinkArtifacts, evaluate_rules
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.accepted import AcceptedAttestation
from mlspec_attest.verify.dirfiles import Expander, rule_paths, rule_queue
from mlspec_attest.verify.report import Check, VerificationReport


def check_rules(
    policy: Policy,
    store: AttestationStore,
    chosen: Mapping[str, AcceptedAttestation],
    report: VerificationReport,
) -> None:
    """Every stage's material and product rules, over the links of every chosen stage."""
    links = expand_links(policy, store, chosen, report)
    for stage in policy.stages:
        link = links.get(stage.name)
        if link is not None:
            check_stage_rules(stage, chosen[stage.name], link, links, report)


def expand_links(
    policy: Policy,
    store: AttestationStore,
    chosen: Mapping[str, AcceptedAttestation],
    report: VerificationReport,
) -> dict[str, LinkArtifacts]:
    """Each chosen stage's artifacts, directories expanded where a rule looks inside."""
    expander = Expander(store, rule_paths(policy))
    links: dict[str, LinkArtifacts] = {}
    for name, att in chosen.items():
        links[name] = expander.link(att.artifacts())
        for problem in expander.problems:
            report.fail(
                Check.ARTIFACT_RULE,
                name,
                problem,
                expected="every directory a rule looks inside to have its signed manifest "
                "in the store",
                found="a missing or inconsistent manifest",
                remedy="copy the store with its blobs/ folder, or re-sign the stage",
            )
        expander.problems.clear()
    return links


def check_stage_rules(
    stage: StagePolicy,
    att: AcceptedAttestation,
    link: LinkArtifacts,
    links: Mapping[str, LinkArtifacts],
    report: VerificationReport,
) -> None:
    recorded = att.artifacts()
    for side, rules, arts in (
        (
            "materials",
            stage.material_rules,
            rule_queue(stage.material_rules, recorded.materials, link.materials),
        ),
        (
            "products",
            stage.product_rules,
            rule_queue(stage.product_rules, recorded.products, link.products),
        ),
    ):
        for v in evaluate_rules(rules, arts, link, links):
            report.fail(
                Check.ARTIFACT_RULE,
                stage.name,
                f"{side} rule '{v.rule}' failed: {v.message}",
                expected=f"{side} authorized by the stage's rules",
                found=", ".join(v.artifacts),
                remedy="check that the stage consumed exactly what earlier stages produced "
                "(a file changed between stages, or an unexpected file was used)",
            )
