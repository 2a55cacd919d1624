"""``mlspec-attest keygen``."""

from __future__ import annotations

from pathlib import Path

import click

from mlspec_attest.cli.options import PATH, json_option, passphrase_env_option, passphrase_from_env
from mlspec_attest.cli.output import echo_result
from mlspec_attest.errors import UsageError
from mlspec_attest.signing.keys import KeyType, generate_key, write_key_pair
from mlspec_attest.signing.schemes import portability_warning


@click.command()
@click.option(
    "--type",
    "key_type",
    type=click.Choice([k.value for k in KeyType]),
    default=KeyType.ED25519.value,
    show_default=True,
    help="Key algorithm.",
)
@click.option("--out", required=True, type=PATH, help="Writes OUT.key and OUT.pub.")
@passphrase_env_option("Encrypt OUT.key with the passphrase in env VAR.")
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
@json_option("Print the result as JSON.")
def keygen(
    key_type: str, out: Path, passphrase_env: str | None, force: bool, as_json: bool
) -> None:
    """Create a signing key pair: OUT.key (PKCS#8 PEM, mode 0600) and OUT.pub (SPKI PEM).

    The key id printed is the hex SHA-256 of the public key PEM, the value
    bundles carry as publicKey.hint.
    """
    for suffix in (".key", ".pub"):
        existing = out.with_name(out.name + suffix)
        if existing.exists() and not force:
            raise UsageError(
                f"{existing} already exists", remedy="choose another --out or pass --force"
            )
    signer = generate_key(KeyType(key_type))
    key_path, pub_path = write_key_pair(signer, out, passphrase=passphrase_from_env(passphrase_env))
    keyid = signer.public_key.keyid
    doc = {
        "schemaVersion": "https://mlspec-attest.dev/keygen/v1",
        "private": str(key_path),
        "public": str(pub_path),
        "keyid": keyid,
        "type": key_type,
    }
    echo_result(doc, f"wrote {key_path} (private, 0600) and {pub_path}\nkeyid {keyid}", as_json)
    warning = portability_warning(key_type)
    if warning:  # after the result: stdout first, as scripts read it
        click.echo(f"warning: {warning}", err=True)
