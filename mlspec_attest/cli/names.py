"""The CLI's names for the library's inputs: its flags and commands.

Installed by the CLI's click group (:func:`mlspec_attest.cli.main.cli`) for the whole
command, so every error and every remedy in a report names the flag a user types
(``--run-id``), where the Python API names the parameter (``run_id``). Keys are exactly
the inputs of :data:`mlspec_attest.formats.inputs.LIBRARY_NAMES` (tests/test_inputs.py).
"""

from __future__ import annotations

from typing import Final

CLI_NAMES: Final[dict[str, str]] = {
    "store": "--store",
    "run_id": "--run-id or MLSPEC_RUN_ID",
    "run_id_only": "--run-id",
    "base_dir": "--base-dir",
    "key": "--key",
    "passphrase": "--passphrase-env VAR naming an environment variable with the passphrase",
    "sigstore": "--sigstore",
    "identity_token": "--identity-token",
    "staging": "--staging",
    "policy_for_stage": "--policy SIGNED_POLICY (or MLSPEC_ATTEST_POLICY)",
    "kind": "--kind {kind}",
    "material": "--material",
    "product": "--product PATH",
    "role_path": "--role {role}={path}",
    "detail": "--detail {name}={path}",
    "detail_any": "--detail",
    "split": "--split {role}",
    "splits": "--split ROLE=PATH",
    "allow_symlinks": "--allow-symlinks",
    "exclude_column": "--exclude-column",
    "exclude_column_one": "--exclude-column NAME",
    "sign_stage": "`mlspec-attest sign --stage {stage} ...`",
    "policy": "--policy",
    "policy_key": "--policy-key",
    "artifacts": "--artifact",
    "artifact_role": "--artifact {role}=PATH",
    "baseline": "--baseline",
    "baseline_metrics": "objectives check --baseline-metrics",
    "keygen": "mlspec-attest keygen --type {type}",
    "policy_sign_file": "mlspec-attest policy sign {path} --key OWNER.key --out {out}",
    "baseline_attestation": "verify --baseline",
    "product_one": "a --product",
    "policy_sign": "mlspec-attest policy sign",
    "validation_record": "mlspec-attest validate --out",
    "artifact": "--artifact",
    "digest": "--digest",
    "trusted_root": "--trusted-root",
    "trust_config": "--trust-config",
    "instance": "--instance",
    "refresh_trust": "--refresh-trust",
    "identity": "--identity",
    "identity_regex": "--identity-regex",
    "issuer": "--issuer",
    "public_key": "--public-key",
    "certificate_chain": "--certificate-chain",
    "ignore_paths": "--ignore-paths",
    "serialization": "--serialization",
    "hash": "--hash",
    "link_dir": "--store",
    "functionary_key": "--functionary-key {name}",
    "functionary_key_path": "--functionary-key {name}={path}",
    "functionary_key_dir": "--functionary-key-dir",
    "layout_name": "--layout-name",
    "out": "--out",
    "slice": "--slice",
    "rows": "--rows",
    "bootstrap": "--bootstrap",
    "positive_label": "--positive-label",
}
