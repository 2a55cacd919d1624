"""Export a verified run as a legacy in-toto layout plus ``<stage>.<keyid8>.link`` files.

The reference ``in-toto-verify --layout root.layout --verification-keys OWNER.pub
--link-dir DIR`` accepts the result. What is exported:

* ``root.layout``: a legacy Metablock signed by the policy owner. One step per
  stage (in policy order): the stage's functionary keys in securesystemslib
  format, its threshold, its artifact rules as ``expected_materials`` /
  ``expected_products``, and an empty ``expected_command``. ``expires`` is the
  policy's. An optional stage without attestation in the run is left out.
* one legacy link per exported attestation, with the attested materials and
  products, the command and exit status, the environment, and in
  ``byproducts["mlspec-attest"]`` the run id, stage kind and the digest of the
  original DSSE payload.

A legacy link must be signed by the functionary itself, so the exporter needs
the functionaries' private keys: this works for local-key pipelines only
(``--functionary-key``), and the exported links are re-signed copies of what
the original attestations say. Directory artifacts stay single entries with
mlspec-attest's digests (``sha256`` = manifest root, ``manifest-sha256``), not
one entry per file as ``in-toto-run`` would record: in-toto checks its rules
over these names and digests, not over file contents.

The run is verified with mlspec-attest's own verifier first (ordering,
objectives and ML checks have no in-toto equivalent, so they are checked here,
at export time); a denied run is not exported. Deploy artifacts are re-hashed
only when given.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from msgspec import Struct
from msgspec.structs import replace

from mlspec_attest.errors import BadInputError, MalformedDocumentError, UsageError
from mlspec_attest.formats.fsutil import atomic_write
from mlspec_attest.formats.inputs import named
from mlspec_attest.interop.intoto.metablocks import (
    EXPORT_BYPRODUCT,
    layout_document,
    link_document,
    signed_bytes,
    step_document,
)
from mlspec_attest.interop.intoto.support import lib, link_filename, require_intoto, sslib_key_dict
from mlspec_attest.policy.signed import SignedPolicy
from mlspec_attest.signing.keys import LocalKeySigner, LocalPublicKey
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.accepted import AcceptedAttestation, StageEvidence, resolve
from mlspec_attest.verify.pipeline import PipelineVerifier, verify_pipeline
from mlspec_attest.verify.report import VerificationReport

__all__ = ["DEFAULT_LAYOUT_NAME", "EXPORT_BYPRODUCT", "IntotoExport", "export_intoto"]

DEFAULT_LAYOUT_NAME = "root.layout"

#: stage name -> the attestations exported as its links
Chosen = dict[str, list[AcceptedAttestation]]


class IntotoExport(Struct, frozen=True):
    """The outcome of :func:`export_intoto`; ``layout`` is None when the run was denied."""

    report: VerificationReport
    layout: Path | None = None
    links: tuple[Path, ...] = ()
    layout_keyid: str = ""

    @property
    def exported(self) -> bool:
        return self.layout is not None


def export_intoto(
    signed: SignedPolicy,
    owner_keys: Sequence[LocalPublicKey],
    store: AttestationStore,
    *,
    layout_signer: LocalKeySigner,
    functionary_signers: Sequence[LocalKeySigner],
    out_dir: Path,
    run_id: str | None = None,
    artifacts: Mapping[str, Path] | None = None,
    now: datetime | None = None,
    layout_name: str = DEFAULT_LAYOUT_NAME,
) -> IntotoExport:
    """Verify one run and, if it passes, write ``layout_name`` and its links into ``out_dir``.

    ``layout_signer`` must be the private key of one of ``owner_keys``;
    ``functionary_signers`` must hold the private key of every functionary
    whose attestation is exported. Never raises for a denial: the result's
    ``report`` says why nothing was written.
    """
    require_intoto()
    _check_request(owner_keys, layout_signer, layout_name, out_dir)
    checked, report = _verify_run(signed, owner_keys, store, run_id, artifacts, now)
    if not report.passed:
        return IntotoExport(report)
    assert report.run_id is not None
    chosen = _agreeing_attestations(checked, owner_keys, store, report.run_id, now)
    signers = {s.public_key.keyid: s for s in functionary_signers}
    _require_functionary_keys(chosen, signers)
    try:
        links, layout = _metadata(signed, chosen, signers, layout_signer, out_dir, report)
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedDocumentError(f"cannot express the run as in-toto metadata: {exc}") from exc
    except Exception as exc:
        if isinstance(exc, lib("securesystemslib.exceptions").Error):
            raise BadInputError(f"cannot express the run as in-toto metadata: {exc}") from exc
        raise
    layout_path = out_dir / layout_name
    for path, data in links.items():
        atomic_write(path, data)
    atomic_write(layout_path, layout[0])
    return IntotoExport(report, layout_path, tuple(links), layout[1])


def _check_request(
    owner_keys: Sequence[LocalPublicKey],
    layout_signer: LocalKeySigner,
    layout_name: str,
    out_dir: Path,
) -> None:
    if not owner_keys:
        raise UsageError(f"at least one {named('policy_key')} is required to trust the policy")
    if layout_signer.public_key.keyid not in {k.keyid for k in owner_keys}:
        raise UsageError(
            f"{named('key')} is not the private key of any {named('policy_key')} owner",
            remedy="sign the layout with the policy owner's key, so the same owner is trusted",
        )
    if Path(layout_name).name != layout_name or not layout_name:
        raise UsageError(f"{named('layout_name')} {layout_name!r} must be a plain file name")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UsageError(
            f"{named('out')} {out_dir} must be a new or empty directory",
            remedy="in-toto-verify reads every <step>.<keyid8>.link it finds there, so a "
            "stale link from another export could be counted; pick a fresh directory",
        )


def _verify_run(
    signed: SignedPolicy,
    owner_keys: Sequence[LocalPublicKey],
    store: AttestationStore,
    run_id: str | None,
    artifacts: Mapping[str, Path] | None,
    now: datetime | None,
) -> tuple[SignedPolicy, VerificationReport]:
    """The run verified by mlspec-attest's own verifier, and the policy it was checked with.

    Without ``artifacts`` the deploy section is left out: the export carries the
    attested chain, and deploy bytes are checked at deploy time.
    """
    checked = signed
    if not artifacts and signed.policy.deploy:
        checked = replace(signed, policy=replace(signed.policy, deploy={}))
    report = verify_pipeline(
        checked, list(owner_keys), store, run_id=run_id, artifacts=artifacts, now=now
    )
    if checked is not signed:
        report.notes.append(
            f"export: deploy artifacts were not re-hashed (no {named('artifacts')} given)"
        )
    return checked, report


def _agreeing_attestations(
    signed: SignedPolicy,
    owner_keys: Sequence[LocalPublicKey],
    store: AttestationStore,
    run_id: str,
    now: datetime | None,
) -> Chosen:
    """Per stage, the attestations ``verify`` counted: the one group of keys that agree
    (verify denies a run whose attestations of a stage disagree; such a stage is not
    exported, and in-toto requires all links of a step to agree anyway)."""
    verifier = PipelineVerifier(signed, list(owner_keys), store, run_id=run_id, now=now)
    out: Chosen = {}
    for stage, accepted in verifier.collect().items():
        outcome = resolve(accepted)
        if isinstance(outcome, StageEvidence):
            one_per_key = {a.functionary.keyid: a for a in reversed(outcome.attestations)}
            out[stage] = sorted(one_per_key.values(), key=lambda a: a.functionary.keyid)
    return out


def _require_functionary_keys(chosen: Chosen, signers: Mapping[str, LocalKeySigner]) -> None:
    missing: dict[str, list[str]] = defaultdict(list)
    for stage_name, atts in chosen.items():
        for att in atts:
            if att.functionary.keyid not in signers:
                missing[att.functionary.name].append(stage_name)
    if missing:
        who = "; ".join(f"{name} (signed {', '.join(s)})" for name, s in sorted(missing.items()))
        raise UsageError(
            f"no private key for functionary {who}",
            remedy="legacy in-toto links are signed by the functionary itself: pass "
            f"{named('functionary_key_path', name='NAME', path='KEYFILE')} for each "
            "(local-key pipelines only)",
        )


def _metadata(
    signed: SignedPolicy,
    chosen: Chosen,
    signers: Mapping[str, LocalKeySigner],
    layout_signer: LocalKeySigner,
    out_dir: Path,
    report: VerificationReport,
) -> tuple[dict[Path, bytes], tuple[bytes, str]]:
    """The signed link files (path -> bytes) and the signed layout (bytes, keyid)."""
    policy = signed.policy
    keys = {f.name: sslib_key_dict(f.key) for f in policy.functionaries.values()}
    keyids = {name: str(d["keyid"]) for name, d in keys.items()}
    files: dict[Path, bytes] = {}
    steps = []
    for stage in policy.stages:
        if stage.name not in chosen:
            report.notes.append(
                f"export: optional stage {stage.name!r} has no attestation in this run; "
                "left out of the layout"
            )
            continue
        steps.append(step_document(stage, keyids))
        for att in chosen[stage.name]:
            data, keyid = signed_bytes(
                link_document(att, signed.digest), signers[att.functionary.keyid]
            )
            files[out_dir / link_filename(stage.name, keyid)] = data
    used = {k for step in steps for k in step.pubkeys}
    readme = (
        f"Exported by mlspec-attest from policy {policy.name or '(unnamed)'} "
        f"({signed.digest}), run {report.run_id}. Ordering, objectives and ML checks "
        "were verified by mlspec-attest at export time; this layout carries the "
        "signatures, thresholds and artifact rules."
    )
    layout_keys = {d["keyid"]: d for d in keys.values() if d["keyid"] in used}
    layout = layout_document(policy, steps, layout_keys, readme)
    return files, signed_bytes(layout, layout_signer)
