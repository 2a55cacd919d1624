"""``mlspec-attest store reindex``: bring the query index up to date with the store's bundles."""

from __future__ import annotations

from pathlib import Path

import click

from mlspec_attest.cli.options import json_option, store_option, store_url_option
from mlspec_attest.cli.output import echo_result
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.signing.certificates import decode_certificate
from mlspec_attest.signing.sigstore.identity import CertificateIdentity
from mlspec_attest.store.index import IndexBuild, update_index
from mlspec_attest.store.index import open_index as open_store_index
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


def open_index(
    store: Path | None, store_url: str | None
) -> tuple[AttestationIndex, IndexBuild | None]:
    """The store's index, brought up to date first (saying so on stderr)."""
    index, build = open_store_index(open_store(store), store_url, identity_of=certificate_identity)
    if build is not None:
        click.echo(build.describe(), err=True)
    return index, build


@click.group()
def store() -> None:
    """Maintain the attestation store's query index (a cache of the bundles)."""


@store.command("reindex")
@store_option()
@store_url_option()
@click.option("--full", is_flag=True, help="Rebuild the whole index instead of updating it.")
@json_option("Print one JSON result on stdout.")
def reindex(store: Path | None, store_url: str | None, full: bool, as_json: bool) -> None:
    """Bring the query index up to date with the store's bundles.

    \b
    Bundles not indexed yet are read and the rows of bundles that disappeared are
    removed (one transaction); --full rebuilds the whole index into fresh tables,
    swapped in atomically, which also repairs an index that was edited. The index is
    a cache for `mlspec-attest query`, never read by verify. Signatures are not
    checked while indexing; a bundle that does not parse is recorded as malformed.

    \b
    Example:
      mlspec-attest store reindex --store .mlspec/attestations --full
    """
    build = update_index(open_store(store), store_url, full=full, identity_of=certificate_identity)
    doc = {
        "schemaVersion": QUERY_SCHEMA,
        "query": "reindex",
        "index": build.where,
        "full": build.full,
        "added": build.added,
        "removed": build.removed,
        "attestations": build.attestations,
        "summaries": build.summaries,
        "malformed": build.malformed,
    }
    echo_result(doc, build.describe(), as_json)
