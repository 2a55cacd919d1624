"""The options of ``mlspec-attest sign``, and the stage record they describe.

Each option's text (``--param K=V``, ``--role ROLE=PATH`` ...) is parsed here, and
what the options alone can refuse is refused here, before the stage's command runs,
so a mistake costs no work (tests/cli/test_sign_before_command.py).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from msgspec import Struct

from mlspec_attest.attestation.artifacts import ArtifactRef, local_paths
from mlspec_attest.attestation.record import StageRecord
from mlspec_attest.cli.options import split_pairs
from mlspec_attest.cli.scale_options import artifact_value
from mlspec_attest.digest.engine import import_blake3
from mlspec_attest.errors import UsageError
from mlspec_attest.formats.rfc3339 import parse_rfc3339
from mlspec_attest.formats.statement import JSONScalar
from mlspec_attest.store.ledger import check_run_id


class SignOptions(Struct, frozen=True):
    """The options of ``sign``, as click parsed them."""

    stage: str
    kind: str | None
    key: Path | None
    passphrase_env: str | None
    use_sigstore: bool
    identity_token: str | None
    trust_config: Path | None
    staging: bool
    materials: tuple[ArtifactRef, ...]
    products: tuple[ArtifactRef, ...]
    roles: tuple[str, ...]
    splits: tuple[str, ...]
    exclude_columns: tuple[str, ...]
    conversions: tuple[str, ...]
    details: tuple[str, ...]
    metrics: Path | None
    params: tuple[str, ...]
    infra: tuple[str, ...]
    store: Path | None
    run_id: str | None
    new_run: bool
    policy_path: Path | None
    base_dir: Path | None
    oms_signature: Path | None
    oms_model: Path | None
    oms_public_key: Path | None
    oms_chain: tuple[Path, ...]
    started_on: str | None
    algorithm: str
    serialization: str
    shard_size: int
    digest_cache: Path | None
    dask_scheduler: str | None
    dask_workers: int | None
    quiet: bool
    as_json: bool
    command: tuple[str, ...]

    def stage_command(self) -> tuple[str, ...]:
        """The stage's command line, without a leading ``--``."""
        return self.command[1:] if self.command and self.command[0] == "--" else self.command


def check_early(args: SignOptions) -> None:
    """What can be refused from the options alone, before any work."""
    if args.started_on:
        try:
            parse_rfc3339(args.started_on)
        except ValueError as exc:
            raise UsageError(
                f"--started-on {args.started_on!r} is not an RFC 3339 instant"
            ) from exc
    if args.run_id:
        check_run_id(args.run_id)
    if args.algorithm == "blake3":
        import_blake3()  # a missing package is exit 4 now, not after the stage command


def stage_record(args: SignOptions) -> StageRecord:
    """The stage record the options describe, checked as far as options alone allow."""
    record = StageRecord(
        stage=args.stage,
        kind=args.kind,
        materials=list(args.materials),
        products=list(args.products),
    )
    record.parameters = dict(parse_param(p) for p in args.params)
    record.infrastructure = {
        k: parse_param(f"{k}={v}")[1] for k, v in split_pairs(args.infra, "--infra").items()
    }
    record.roles = {
        role: artifact_value(p) for role, p in split_pairs(args.roles, "--role").items()
    }
    record.metrics_file = args.metrics
    record.splits = {role: Path(p) for role, p in split_pairs(args.splits, "--split").items()}
    record.split_exclude_columns = args.exclude_columns
    record.conversions = {
        fmt: Path(p) for fmt, p in split_pairs(args.conversions, "--conversion").items()
    }
    record.detail_files = {n: Path(p) for n, p in split_pairs(args.details, "--detail").items()}
    if args.started_on:
        record.started_on = args.started_on
    check_roles(record)
    if args.oms_signature:
        producer = _oms_producer(args.oms_signature, args, local_paths(record.products))
        record.evidence.append(("omsSignature", producer))
    if args.policy_path:
        # Start-up: only a stage bound to a policy loads the policy package.
        from mlspec_attest.policy.signed import load_signed_policy

        record.policy_digest = load_signed_policy(args.policy_path).digest
    return record


def _oms_producer(signature: Path, args: SignOptions, products: list[Path]) -> Callable[[], Any]:
    """Verify an existing model-signing signature once the stage's outputs exist."""
    if (args.oms_public_key is None) == (not args.oms_chain):
        raise UsageError(
            "--oms-signature needs exactly one of --oms-public-key or --oms-certificate-chain"
        )

    def produce() -> Any:
        # Start-up: only a stage with --oms-signature loads model-signing verification.
        from mlspec_attest.interop.oms import signature as oms

        key = args.oms_public_key
        trust = (
            oms.KeyTrust.from_file(key) if key else oms.CertificateTrust.from_files(args.oms_chain)
        )
        return oms.oms_evidence(args.oms_model or _only_directory(products), signature, trust)

    return produce


def _only_directory(products: list[Path]) -> Path:
    dirs = [p for p in products if p.is_dir()]
    if len(dirs) != 1:
        raise UsageError("--oms-signature: name the model directory with --oms-model")
    return dirs[0]


def parse_param(text: str) -> tuple[str, JSONScalar]:
    """``K=V``; V is read as a JSON scalar when it is one (``0.1``, ``true``), else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--param {text!r} is not KEY=VALUE")
    try:
        value = json.loads(raw)
    except ValueError:
        return key, raw
    if isinstance(value, str | int | float | bool) or value is None:
        if isinstance(value, float) and not math.isfinite(value):  # NaN, Infinity, 1e999
            return key, raw
        return key, value
    return key, raw


def check_roles(record: StageRecord) -> None:
    """A --role naming a path no option names fails before the stage command runs.

    sign_stage checks the recorded names again after hashing (a --conversion inside a
    directory product is no product of its own, for one); this catches the rest early.
    """
    named = {
        _same_key(p)
        for p in (
            *record.materials,
            *record.products,
            *record.splits.values(),
            *record.conversions.values(),
        )
    }
    for role, path in record.roles.items():
        if _same_key(path) not in named:
            raise UsageError(f"--role {role}={path}: not one of this stage's materials or products")


def _same_key(ref: ArtifactRef) -> str:
    """One key per artifact: its URL, or its absolute path."""
    return ref if isinstance(ref, str) else os.path.abspath(ref)
