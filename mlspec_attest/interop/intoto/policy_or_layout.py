"""``verify --policy`` takes either a signed mlspec-attest policy or an in-toto layout.

This is the one place that decides which verifier runs: a file that holds an
in-toto layout (:func:`~.support.is_intoto_layout`, a legacy Metablock or a DSSE
envelope of one) is verified by :func:`~.verify.verify_intoto_layout` against
the link files in ``store``; anything else must be a signed policy, verified
by :func:`~mlspec_attest.verify.pipeline.verify_pipeline` against the
attestation store. Both give a :class:`~mlspec_attest.verify.report.VerificationReport`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlspec_attest.errors import UsageError
from mlspec_attest.formats.inputs import named
from mlspec_attest.interop.intoto.support import is_intoto_layout
from mlspec_attest.policy.signed import load_signed_policy
from mlspec_attest.signing.keys import load_public_key
from mlspec_attest.store.ledger import open_store
from mlspec_attest.verify.pipeline import verify_pipeline
from mlspec_attest.verify.report import VerificationReport

if TYPE_CHECKING:
    from mlspec_attest.digest.engine import ProgressSink


def verify_policy_or_layout(
    policy_path: Path,
    policy_keys: Sequence[Path],
    store: Path | None,
    *,
    run_id: str | None = None,
    run_id_from_environment: bool = False,
    artifacts: Mapping[str, Path | str] | None = None,
    baseline: Path | None = None,
    progress: ProgressSink | None = None,
    run_inspections: bool = True,
    now: datetime | None = None,
) -> VerificationReport:
    """Verify a run against ``policy_path``, a signed policy or an in-toto layout.

    For a signed policy, ``store`` is the attestation store (default: the
    ``MLSPEC_ATTEST_STORE`` environment variable, else ``.mlspec/attestations``)
    and every other argument applies. For an in-toto layout, ``store`` is the
    link directory (default: the current directory) and ``run_inspections``
    applies; ``artifacts``, ``baseline`` and a ``run_id`` are a
    :class:`UsageError`, except a run id that only came from the environment
    (``MLSPEC_RUN_ID`` is shared by every command of a run), which is ignored.
    ``now`` (default: the current time) is when expiry is judged. Never raises
    for a denial: the report lists every failure.
    """
    if is_intoto_layout(policy_path):
        if artifacts or baseline or (run_id is not None and not run_id_from_environment):
            raise UsageError(
                f"{named('artifacts')}, {named('baseline')} and {named('run_id_only')} do not apply "
                "to an in-toto layout",
                remedy=f"in-toto layouts check the links in {named('link_dir')} (the link "
                "directory) and "
                "their inspections; drop those options",
            )
        # In-function: the layout verifier (links, rules, inspections) is not loaded to
        # verify a signed policy, the common case (docs/architecture.md, start-up).
        from mlspec_attest.interop.intoto.verify import verify_intoto_layout

        return verify_intoto_layout(
            policy_path,
            list(policy_keys),
            store if store is not None else Path("."),
            now=now,
            run_inspections=run_inspections,
        )
    signed = load_signed_policy(policy_path)
    owner_keys = [load_public_key(k) for k in policy_keys]
    return verify_pipeline(
        signed,
        list(owner_keys),
        open_store(store),
        run_id=run_id,
        artifacts=artifacts or {},
        now=now,
        baseline=baseline,
        progress=progress,
    )
