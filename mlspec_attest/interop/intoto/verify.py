"""Verify an in-toto layout with in-toto's semantics and report like ``mlspec-attest verify``.

The steps and their order are in-toto's ``in_toto.verifylib.in_toto_verify``; the
report uses mlspec-attest's checks (``report.Check``) so the CLI renders it like
any other verification:

====  =====================================================  ==================  ==========================
step  what                                                   check               in-toto error
====  =====================================================  ==================  ==========================
1     layout signed by every given key (stop if not)         policy-signature    SignatureVerificationError
2     layout not expired                                     policy-expired      LayoutExpiredError
3     ``<step>.<keyid8>.link`` files found for each step     stage-missing       LinkNotFoundError
      (a file that does not parse)                           attestation-malformed  (any load error)
4     threshold of links validly signed by distinct          signature,          ThresholdVerificationError
      authorized keys (bad signatures only fail the step     threshold
      when they leave it below threshold, as in in-toto)
5     sublayouts verified recursively (stages ``a/b``)       (as above)          (as above)
6     expected command differs (a note: in-toto only warns)  —                   —
7     links of a step with threshold > 1 agree               threshold           ThresholdVerificationError
8     step material and product rules                        artifact-rule       RuleVerificationError
9     inspections run (only if 1-8 passed) and exit 0        inspection [1]_     BadReturnValueError
10    inspection material and product rules                  artifact-rule       RuleVerificationError
====  =====================================================  ==================  ==========================

.. [1] ``Check.INSPECTION`` when ``report.Check`` has it, ``artifact-rule`` otherwise.

Where each step lives: 1-2 and 5 in :mod:`.layout` (which drives the others),
3, 4, 6 and 7 in :mod:`.links`, 8 and 10 in :mod:`.artifact_rules`, 9 in
:mod:`.inspections`; :class:`~.scope.LayoutScope` carries one (sub)layout's
inputs and findings.

Differences from ``in-toto-verify``: it stops at the first failure, this
verifier reports every failure it can (a step that failed is left out of
later steps, so rules that MATCH against it fail too); inspections run in
``workdir`` (default: the link directory) rather than the process's current
directory, their output is captured, and no ``<inspection>.link`` file is
written. Rule evaluation, signature checks and artifact recording are
in-toto's own code (``verify_item_rules``, ``Metadata.verify_signature``,
``record_artifacts_as_dict``), so verdicts agree.

Security: a layout's inspections execute commands. They run only after the
layout's signature, every link signature, threshold and step rule passed, and
only when the caller allows it (``run_inspections``); a layout with
inspections that may not run fails closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlspec_attest.digest.artifact import sha256_file
from mlspec_attest.errors import BadInputError, MalformedDocumentError, UsageError
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.rfc3339 import format_rfc3339
from mlspec_attest.interop.intoto.inspections import DEFAULT_INSPECT_TIMEOUT, INSPECTION_CHECK
from mlspec_attest.interop.intoto.layout import verify_layout
from mlspec_attest.interop.intoto.scope import LayoutScope
from mlspec_attest.interop.intoto.support import load_layout_key, load_metadata, require_intoto
from mlspec_attest.verify.report import VerificationReport

__all__ = ["DEFAULT_INSPECT_TIMEOUT", "INSPECTION_CHECK", "verify_intoto_layout"]


def verify_intoto_layout(
    layout_path: Path,
    layout_keys: Sequence[Path],
    link_dir: Path,
    *,
    now: datetime | None = None,
    run_inspections: bool = True,
    workdir: Path | None = None,
    inspect_timeout: float = DEFAULT_INSPECT_TIMEOUT,
) -> VerificationReport:
    """Verify an in-toto layout (legacy Metablock or DSSE) against the links in ``link_dir``.

    ``layout_keys`` are SPKI PEM public keys; every one must have signed the
    layout (``in-toto-verify --verification-keys``). Links are legacy or DSSE
    ``<step>.<keyid8>.link`` files. Inspections run in ``workdir`` (default:
    ``link_dir``) when ``run_inspections`` is true; otherwise a layout with
    inspections is denied. Never raises for a denial: the report lists every
    failure. Raises :class:`UsageError` without keys, :class:`BadInputError` for
    unreadable inputs and :class:`BackendError` when in-toto is not installed.
    """
    require_intoto()
    if not layout_keys:
        raise UsageError(f"at least one {named('policy_key')} is required to trust the layout")
    keys: dict[str, dict[str, Any]] = {}
    for path in layout_keys:
        key = load_layout_key(path)
        keys[key["keyid"]] = key
    metadata = load_metadata(layout_path, what=str(layout_path))
    if metadata.get_payload().type_ != "layout":
        raise MalformedDocumentError(f"{layout_path}: is an in-toto link, not a layout")
    if not link_dir.is_dir():
        raise BadInputError(
            f"link directory {link_dir} does not exist",
            remedy=f"pass {named('link_dir')} pointing at the folder holding the "
            "<step>.<keyid8>.link files",
        )
    if workdir is not None and not workdir.is_dir():
        raise BadInputError(f"inspection directory {workdir} does not exist")
    moment = now or datetime.now(UTC)
    report = VerificationReport(
        policy_name=f"in-toto layout {layout_path.name}",
        policy_digest="sha256:" + sha256_file(layout_path)[0],
        run_id=None,
        verified_at=format_rfc3339(moment),
    )
    verify_layout(
        LayoutScope(
            metadata,
            keys,
            link_dir,
            report,
            moment,
            allow_inspections=run_inspections,
            workdir=workdir or link_dir,
            inspect_timeout=inspect_timeout,
        )
    )
    return report
