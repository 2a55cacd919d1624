"""Which signer a command's options name: a key file (with a passphrase) or Sigstore keyless.

Shared by ``sign`` (``--key``) and ``verify --vsa-out`` (``--vsa-key``), so the options
combine the same way everywhere.
"""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from mlspec_attest.attestation import signers
from mlspec_attest.attestation.signers import StageSigner
from mlspec_attest.cli import options as opt
from mlspec_attest.errors import UsageError


def choose_signer(
    *,
    key: Path | None,
    key_param: str,
    passphrase_env: str | None,
    use_sigstore: bool,
    identity_token: str | None,
    trust_config: Path | None,
    staging: bool,
    key_env: str | None = None,
) -> StageSigner:
    """The key (``key_param`` names its option), or keyless: which options go together."""
    source = click.get_current_context().get_parameter_source
    flag = "--" + key_param.replace("_", "-")
    if not use_sigstore:
        if key is None:
            also = f" (or set {key_env})" if key_env else ""
            raise UsageError("no signing key", remedy=f"pass {flag} KEY{also}, or --sigstore")
        if staging or source("identity_token") is ParameterSource.COMMANDLINE:
            raise UsageError("--identity-token and --staging go with --sigstore")
        return signers.stage_signer(key, passphrase=opt.passphrase_from_env(passphrase_env))
    if key is not None and source(key_param) is ParameterSource.COMMANDLINE:
        raise UsageError(f"choose one: {flag} KEY or --sigstore")
    if staging and source("trust_config") is not ParameterSource.COMMANDLINE:
        trust_config = None  # an environment default does not override --staging
    keyless = signers.KeylessOptions(identity_token, trust_config, staging)
    return signers.stage_signer(keyless=keyless)
