"""``mlspec-attest bundle verify``: check any Sigstore bundle offline."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

SCHEMA = "https://mlspec-attest.dev/bundle-verification/v1"


@click.group()
def bundle() -> None:
    """Work with Sigstore bundles (any producer: cosign, sigstore-python, gh, mlspec-attest)."""


@bundle.command("verify")
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--artifact",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The signed file (for an in-toto attestation: a subject).",
)
@click.option("--digest", metavar="sha256:HEX", help="The signed artifact's digest, instead of it.")
@click.option(
    "--trusted-root",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Sigstore TrustedRoot JSON to verify keyless bundles against.",
)
@click.option(
    "--trust-config",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="MLSPEC_ATTEST_TRUST_CONFIG",
    help="Sigstore ClientTrustConfig JSON (its trusted root is used) [env MLSPEC_ATTEST_TRUST_CONFIG].",
)
@click.option(
    "--instance",
    type=click.Choice(["production", "staging"]),
    help="The public-good instance's trusted root as embedded in sigstore-python (offline).",
)
@click.option(
    "--refresh-trust",
    is_flag=True,
    help="With --instance: fetch its current trusted root over TUF first (network).",
)
@click.option(
    "--key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Public key (PEM) for bundles signed with a key; with a trust root, its "
    "transparency-log entry is checked too.",
)
@click.option("--identity", help="Keyless: the signer's identity (a certificate SAN), exactly.")
@click.option(
    "--identity-regex",
    metavar="RE",
    help="Keyless: a regular expression the whole identity must match.",
)
@click.option("--issuer", help="Keyless: the OIDC issuer of the signer's identity, exactly.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result on stdout.")
def verify(
    bundle_path: Path,
    artifact: Path | None,
    digest: str | None,
    trusted_root: Path | None,
    trust_config: Path | None,
    instance: str | None,
    refresh_trust: bool,
    key: Path | None,
    identity: str | None,
    identity_regex: str | None,
    issuer: str | None,
    as_json: bool,
) -> None:
    """Verify a Sigstore bundle offline. Exit 0 passed, 1 denied, 3 malformed input.

    \b
    Keyless bundles: the certificate must chain to the trusted root, the log entry
    (inclusion proof, checkpoint, promise) or a signed timestamp must verify under
    it, and the certificate must belong to --identity/--identity-regex at --issuer.
    Nothing is fetched unless --refresh-trust is given.
    Key bundles: --key; with a trust root too, the log entry is verified as well.
    In-toto attestations: a subject's sha256 must be the artifact's.

    \b
    Examples:
      mlspec-attest bundle verify model.whl.sigstore.json --artifact model.whl \\
          --instance production --identity https://github.com/org/repo/.github/workflows/release.yml@refs/tags/v1 \\
          --issuer https://token.actions.githubusercontent.com
      mlspec-attest bundle verify .mlspec/runs/R/train.1a2b3c4d.sigstore.json \\
          --artifact model/weights.bin --key keys/trainer.pub
    """
    from mlspec_attest.errors import ExitCode, SigstoreVerificationError, UsageError
    from mlspec_attest.formats.jsonio import load_file
    from mlspec_attest.signing.keys import load_public_key
    from mlspec_attest.signing.sigstore.verify import (
        SigstoreIdentity,
        TrustRoot,
        sha256_file,
        verify_bundle,
    )

    if (artifact is None) == (digest is None):
        raise UsageError("name what was signed: --artifact FILE or --digest sha256:HEX")
    trust_options = [o for o in (trusted_root, trust_config, instance) if o is not None]
    if len(trust_options) > 1:
        raise UsageError("choose one of --trusted-root, --trust-config and --instance")
    if refresh_trust and instance is None:
        raise UsageError("--refresh-trust goes with --instance production|staging")
    if identity is not None and identity_regex is not None:
        raise UsageError("choose one of --identity and --identity-regex")
    if (identity is not None or identity_regex is not None) != (issuer is not None):
        raise UsageError("--identity/--identity-regex and --issuer go together")
    if key is None and not trust_options:
        raise UsageError(
            "no trust given",
            remedy="pass --key PUBKEY, or a trust root (--trusted-root, --trust-config, "
            "--instance) with --identity and --issuer",
        )
    if digest is not None:
        match = re.fullmatch(r"sha256:([0-9a-fA-F]{64})", digest)
        if match is None:
            raise UsageError(f"--digest {digest!r} is not sha256:<64 hex digits>")
        artifact_sha256 = match.group(1).lower()
    else:
        assert artifact is not None
        artifact_sha256 = sha256_file(artifact)
    trust: TrustRoot | None = None
    if trusted_root is not None or trust_config is not None:
        trust = TrustRoot.from_file(trusted_root or trust_config)  # type: ignore[arg-type]
    elif instance is not None:
        trust = TrustRoot.refreshed(instance) if refresh_trust else TrustRoot.embedded(instance)
    rules: list[SigstoreIdentity] = []
    if issuer is not None:
        try:
            rules.append(SigstoreIdentity(issuer, identity=identity, identity_regex=identity_regex))
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    public_key = load_public_key(key) if key is not None else None
    doc = load_file(bundle_path, what=f"bundle {bundle_path}")
    result: dict[str, Any] = {
        "schemaVersion": SCHEMA,
        "bundle": str(bundle_path),
        "artifact": {"path": str(artifact) if artifact else None, "sha256": artifact_sha256},
        "trustRoot": trust.describe() if trust else None,
    }
    try:
        verified = verify_bundle(
            doc,
            trust=trust,
            identities=rules,
            key=public_key,
            artifact_sha256=artifact_sha256,
            what=str(bundle_path),
        )
    except SigstoreVerificationError as exc:
        result.update(result="FAILED", reason=exc.message, remedy=exc.remedy or "")
        if as_json:
            click.echo(json.dumps(result, indent=2))
        else:
            click.echo(f"bundle verification FAILED: {exc.message}")
            if exc.remedy:
                click.echo(f"  fix: {exc.remedy}")
        raise SystemExit(ExitCode.DENIED) from None
    result.update(result="PASSED", **verified.to_json())
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    if verified.identity is not None:
        who = verified.identity.describe()
    else:
        who = f"key {verified.keyid[:16] if verified.keyid else '?'}"
    click.echo(f"bundle verification PASSED: {bundle_path} signed by {who}")
    for t in verified.times:
        click.echo(f"  signed time {t.time.isoformat()} ({t.source})")
    for note in verified.notes:
        click.echo(f"  note: {note}")
