"""Legacy in-toto metadata written from mlspec-attest's objects: links, steps, a layout.

in-toto's own models (``Link``, ``Step``, ``Layout``, ``Metablock``) build the
documents and securesystemslib signs them, so the reference ``in-toto-verify``
reads exactly what it expects. What goes where is described in :mod:`.export`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.interop.intoto.support import lib
from mlspec_attest.policy.model import Policy, StagePolicy
from mlspec_attest.signing.keys import LocalKeySigner
from mlspec_attest.verify.accepted import AcceptedAttestation

#: The link byproduct that carries mlspec-attest's own record of the stage.
EXPORT_BYPRODUCT = "mlspec-attest"


def rule_tokens(rules: Sequence[Any]) -> list[list[str]]:
    """in-toto's rule lists (``["MATCH", "*", "WITH", ...]``) of our artifact rules."""
    # Our rule grammar splits on whitespace, so a pattern never holds a space.
    return [str(rule).split() for rule in rules]


def link_document(att: AcceptedAttestation, policy_digest: str) -> Any:
    """The in-toto ``Link`` of one accepted stage attestation (unsigned)."""
    Link = lib("in_toto.models.link").Link

    st = att.statement
    byproducts: dict[str, Any] = {}
    if st.command.exit_code is not None:
        byproducts["return-value"] = st.command.exit_code
    byproducts[EXPORT_BYPRODUCT] = {
        "runId": st.metadata.run_id,
        "stage": st.metadata.stage,
        "kind": st.metadata.kind,
        "statementDigest": att.payload_digest,
        "bundle": att.source.name,
        "policyDigest": policy_digest,
    }
    return Link(
        name=st.name,
        materials={m.name: dict(m.digest) for m in st.materials},
        products={p.name: dict(p.digest) for p in st.products},
        command=list(st.command.argv),
        byproducts=byproducts,
        environment=dict(st.environment),
    )


def step_document(stage: StagePolicy, keyids: Mapping[str, str]) -> Any:
    """The in-toto ``Step`` of a policy stage; ``keyids`` maps functionary -> in-toto keyid."""
    Step = lib("in_toto.models.layout").Step

    pubkeys = list(dict.fromkeys(keyids[f] for f in stage.functionaries))
    return Step(
        name=stage.name,
        pubkeys=pubkeys,
        threshold=stage.threshold,
        expected_materials=rule_tokens(stage.material_rules),
        expected_products=rule_tokens(stage.product_rules),
        expected_command=[],
    )


def layout_document(policy: Policy, steps: list[Any], keys: dict[str, Any], readme: str) -> Any:
    """The in-toto ``Layout`` (no inspections) expiring when the policy does."""
    return lib("in_toto.models.layout").Layout(
        steps=steps,
        inspect=[],
        keys=keys,
        expires=format_rfc3339(policy.expires),
        readme=readme,
    )


def signed_bytes(signable: Any, signer: LocalKeySigner) -> tuple[bytes, str]:
    """A legacy Metablock of ``signable`` signed by ``signer`` (securesystemslib signs),
    and the in-toto keyid it was signed with."""
    crypto_signer = lib("securesystemslib.signer").CryptoSigner(signer.private_key)
    metablock = lib("in_toto.models.metadata").Metablock(signed=signable)
    metablock.create_signature(crypto_signer)
    return f"{metablock}".encode(), str(crypto_signer.public_key.keyid)
