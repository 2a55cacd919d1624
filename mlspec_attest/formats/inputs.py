"""How a message names what the caller gave: in the library's words, or a front end's.

An error, or a remedy in a verification report, often has to name one of the caller's
inputs: "pass the run id", "sign the split stage with its splits". The library names
an input by its Python parameter (``run_id``, ``artifacts['model']``); a front end that
takes the same inputs another way installs its own names for as long as it runs
(:func:`front_end_names`): the CLI installs its flags (``--run-id``,
``--artifact model=PATH``; the table is ``mlspec_attest.cli.names``).

Messages are built with :func:`named` at the moment they are raised or recorded, so a
message reads in the terms of whoever called. A message built at import time would be
frozen in the library's words: build them in functions (``tests/test_inputs.py`` checks
every call site).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Final

#: Input -> how the library names it: a parameter, or a call, as a ``str.format``
#: template whose fields the call site fills (``named("artifact_role", role="model")``).
LIBRARY_NAMES: Final[Mapping[str, str]] = {
    # where attestations live and which run
    "store": "store",
    "run_id": "run_id (or MLSPEC_RUN_ID)",
    "run_id_only": "run_id",
    "base_dir": "base_dir",
    # signing a stage
    "key": "key",
    "passphrase": "the passphrase (passphrase=)",
    "sigstore": "keyless=KeylessOptions(...)",
    "identity_token": "identity_token",
    "staging": "staging",
    "policy_for_stage": "policy (or MLSPEC_ATTEST_POLICY)",
    "kind": "kind={kind!r}",
    "material": "a material",
    "product": "a product",
    "role_path": "roles[{role!r}] = {path}",
    "detail": "details[{name!r}] = {path}",
    "detail_any": "detail()",
    "split": "splits[{role!r}]",
    "splits": "splits",
    "allow_symlinks": "allow_symlinks=True",
    "exclude_column": "exclude_columns",
    "exclude_column_one": "exclude_columns=[NAME]",
    "sign_stage": "sign_stage() for stage {stage!r}",
    # verifying
    "policy": "policy",
    "policy_key": "owner key (owner_keys)",
    "artifacts": "artifacts",
    "artifact_role": "artifacts[{role!r}]",
    "baseline": "baseline",
    "baseline_metrics": "baseline_metrics",
    # keys and policies
    "keygen": "signing.keys.generate_key(KeyType({type!r}))",
    "policy_sign_file": "policy.signed.sign_policy() on {path}, written to {out}",
    "baseline_attestation": "baseline",
    "product_one": "a product",
    "policy_sign": "policy.signed.sign_policy()",
    "validation_record": "evidence.dataschema.validate_dataset()",
    # Sigstore and model-signing trust
    "artifact": "artifact",
    "digest": "digest",
    "trusted_root": "trusted_root",
    "trust_config": "trust_config",
    "instance": "instance",
    "refresh_trust": "refresh_trust",
    "identity": "identity",
    "identity_regex": "identity_regex",
    "issuer": "issuer",
    "public_key": "public_key",
    "certificate_chain": "certificate_chain",
    "ignore_paths": "ignore_paths",
    "serialization": "serialization",
    "hash": "hash",
    # in-toto export
    "link_dir": "link_dir",
    "functionary_key": "functionary_keys[{name!r}]",
    "functionary_key_path": "functionary_keys[{name!r}] = {path}",
    "functionary_key_dir": "functionary_key_dir",
    "layout_name": "layout_name",
    "out": "out_dir",
    # evidence
    "slice": "slices",
    "rows": "rows",
    "bootstrap": "bootstrap",
    "positive_label": "positive_label",
    # the serving gate
    "verifier_key": "trust=VerifierTrust(keys=...)",
    "verifier_identity": "trust=VerifierTrust(identities=...)",
    "verifier_trust_root": "trust=VerifierTrust(trust_root=...)",
    "policy_digest": "expect.policy_digest",
    "resource_uri": "expect.resource_uri",
    "max_age": "expect.max_age",
    "copy_to": "copy_to",
    "entry": "entry",
    # the inference log
    "log_key_name": "key_name",
    "log_origin": "origin",
    "log_seq": "seq",
    # the server's connections
    "max_connections": "ConnectionLimits(max_connections=...)",
}

_front_end: dict[str, str] = {}


def named(key: str, /, **fields: object) -> str:
    """How the caller names input ``key``: the front end's words if it installed
    any for it, else the library's."""
    template = _front_end.get(key) or LIBRARY_NAMES[key]
    return template.format(**fields) if fields else template


@contextmanager
def front_end_names(names: Mapping[str, str]) -> Iterator[None]:
    """Name inputs as ``names`` says (by :data:`LIBRARY_NAMES` key) while the block runs.

    For a front end's whole run (the CLI's click group); blocks nest, and each restores
    what it found. Every key must be a known input, so a renamed input cannot
    silently fall back to the library's words.
    """
    unknown = sorted(set(names) - set(LIBRARY_NAMES))
    if unknown:
        raise ValueError(f"unknown inputs: {', '.join(unknown)}")
    saved = dict(_front_end)
    _front_end.update(names)
    try:
        yield
    finally:
        _front_end.clear()
        _front_end.update(saved)
