"""``mlspec-attest store reindex``: rebuild the query index from the store's bundles."""

from __future__ import annotations

from pathlib import Path

import click

from mlspec_attest.cli.options import json_option, store_option
from mlspec_attest.cli.output import echo_result
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.signing.certificates import decode_certificate
from mlspec_attest.signing.sigstore.identity import CertificateIdentity
from mlspec_attest.store.index import IndexBuild, build_index, ensure_index, index_path
from mlspec_attest.store.index_query import AttestationIndex
from mlspec_attest.store.ledger import open_store

QUERY_SCHEMA = "https://mlspec-attest.dev/query/v1"


def certificate_identity(bundle: Bundle) -> tuple[str | None, str | None]:
    """The identity and OIDC issuer a keyless bundle's leaf certificate names (not verified:
    the index records claims; ``verify`` checks the chain and the transparency log)."""
    material = bundle.verification_material
    raw = None
    if isinstance(material.get("certificate"), dict):
        raw = material["certificate"].get("rawBytes")
    elif isinstance(material.get("x509CertificateChain"), dict):
        chain = material["x509CertificateChain"].get("certificates")
        raw = chain[0].get("rawBytes") if isinstance(chain, list) and chain else None
    try:
        identity = CertificateIdentity.from_certificate(decode_certificate(raw))
    except (ValueError, TypeError, AttributeError):
        return None, None
    return identity.primary or None, identity.issuer


def open_index(store: Path | None) -> tuple[AttestationIndex, IndexBuild | None]:
    """The store's index, rebuilt first if missing or older than the bundles."""
    opened = open_store(store)
    build = ensure_index(opened, identity_of=certificate_identity)
    if build is not None:
        click.echo(
            f"index {build.path} rebuilt: {build.attestations} attestations, "
            f"{build.summaries} summaries, {build.malformed} malformed",
            err=True,
        )
    return AttestationIndex.open(index_path(opened)), build


@click.group()
def store() -> None:
    """Maintain the attestation store's query index (a cache of the bundles)."""


@store.command("reindex")
@store_option()
@json_option("Print one JSON result on stdout.")
def reindex(store: Path | None, as_json: bool) -> None:
    """Rebuild STORE/index.sqlite3 from the bundles, atomically.

    \b
    The index is a cache for `mlspec-attest query`: it is never read by verify, and
    reindexing repairs one that was edited or deleted. Signatures are not checked
    while indexing; a bundle that does not parse is recorded as malformed.

    \b
    Example:
      mlspec-attest store reindex --store .mlspec/attestations
    """
    build = build_index(open_store(store), identity_of=certificate_identity)
    doc = {
        "schemaVersion": QUERY_SCHEMA,
        "query": "reindex",
        "index": str(build.path),
        "attestations": build.attestations,
        "summaries": build.summaries,
        "malformed": build.malformed,
    }
    text = (
        f"indexed {build.attestations} attestations and {build.summaries} summaries "
        f"({build.malformed} malformed) into {build.path}"
    )
    echo_result(doc, text, as_json)
