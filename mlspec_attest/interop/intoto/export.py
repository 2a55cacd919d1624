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

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mlspec_attest.errors import BadInputError, MalformedDocumentError, UsageError
from mlspec_attest.formats.fsutil import atomic_write
from mlspec_attest.interop.intoto.support import lib, link_filename, require_intoto, sslib_key_dict
from mlspec_attest.policy.model import Policy, StagePolicy, format_rfc3339
from mlspec_attest.policy.signed import SignedPolicy
from mlspec_attest.signing.keys import LocalKeySigner, LocalPublicKey
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.accepted import AcceptedAttestation, StageEvidence, resolve
from mlspec_attest.verify.pipeline import PipelineVerifier, verify_pipeline
from mlspec_attest.verify.report import VerificationReport

DEFAULT_LAYOUT_NAME = "root.layout"
EXPORT_BYPRODUCT = "mlspec-attest"


@dataclass(frozen=True)
class IntotoExport:
    """The outcome of :func:`export_intoto`; ``layout`` is None when the run was denied."""

    report: VerificationReport
    layout: Path | None = None
    links: tuple[Path, ...] = ()
    layout_keyid: str = ""

    @property
    def exported(self) -> bool:
        return self.layout is not None


def _rule_tokens(rules: Sequence[Any]) -> list[list[str]]:
    # Our rule grammar splits on whitespace, so a pattern never holds a space.
    return [str(rule).split() for rule in rules]


def _agreeing_attestations(
    signed: SignedPolicy,
    owner_keys: Sequence[LocalPublicKey],
    store: AttestationStore,
    run_id: str,
    now: datetime | None,
) -> dict[str, list[AcceptedAttestation]]:
    """Per stage, the attestations ``verify`` counted: the one group of keys that agree
    (verify denies a run whose attestations of a stage disagree; such a stage is not
    exported, and in-toto requires all links of a step to agree anyway)."""
    verifier = PipelineVerifier(signed, list(owner_keys), store, run_id=run_id, now=now)
    out: dict[str, list[AcceptedAttestation]] = {}
    for stage, accepted in verifier.collect().items():
        outcome = resolve(accepted)
        if isinstance(outcome, StageEvidence):
            one_per_key = {a.functionary.keyid: a for a in reversed(outcome.attestations)}
            out[stage] = sorted(one_per_key.values(), key=lambda a: a.functionary.keyid)
    return out


def _link_document(att: AcceptedAttestation, policy_digest: str) -> Any:
    Link = lib("in_toto.models.link").Link

    st = att.statement
    byproducts: dict[str, Any] = {}
    if st.command.exit_code is not None:
        byproducts["return-value"] = st.command.exit_code
    byproducts[EXPORT_BYPRODUCT] = {
        "runId": st.metadata.run_id,
        "stage": st.metadata.stage,
        "kind": st.metadata.kind,
        "statementDigest": att.payload_digest,
        "bundle": att.source.name,
        "policyDigest": policy_digest,
    }
    return Link(
        name=st.name,
        materials={m.name: dict(m.digest) for m in st.materials},
        products={p.name: dict(p.digest) for p in st.products},
        command=list(st.command.argv),
        byproducts=byproducts,
        environment=dict(st.environment),
    )


def _step(stage: StagePolicy, keyids: Mapping[str, str]) -> Any:
    Step = lib("in_toto.models.layout").Step

    pubkeys = list(dict.fromkeys(keyids[f] for f in stage.functionaries))
    return Step(
        name=stage.name,
        pubkeys=pubkeys,
        threshold=stage.threshold,
        expected_materials=_rule_tokens(stage.material_rules),
        expected_products=_rule_tokens(stage.product_rules),
        expected_command=[],
    )


def _signed_bytes(signable: Any, signer: LocalKeySigner) -> tuple[bytes, str]:
    """A legacy Metablock of ``signable`` signed by ``signer`` (securesystemslib signs)."""
    crypto_signer = lib("securesystemslib.signer").CryptoSigner(signer.private_key)
    metablock = lib("in_toto.models.metadata").Metablock(signed=signable)
    metablock.create_signature(crypto_signer)
    return f"{metablock}".encode(), str(crypto_signer.public_key.keyid)


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UsageError(
            f"--out {out_dir} must be a new or empty directory",
            remedy="in-toto-verify reads every <step>.<keyid8>.link it finds there, so a "
            "stale link from another export could be counted; pick a fresh directory",
        )


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
    if not owner_keys:
        raise UsageError("at least one --policy-key is required to trust the policy")
    if layout_signer.public_key.keyid not in {k.keyid for k in owner_keys}:
        raise UsageError(
            "--key is not the private key of any --policy-key owner",
            remedy="sign the layout with the policy owner's key, so the same owner is trusted",
        )
    if Path(layout_name).name != layout_name or not layout_name:
        raise UsageError(f"--layout-name {layout_name!r} must be a plain file name")
    _check_out_dir(out_dir)
    checked = signed
    if not artifacts and signed.policy.deploy:
        # The export carries the attested chain; deploy bytes are checked at deploy time.
        checked = dataclasses.replace(signed, policy=dataclasses.replace(signed.policy, deploy={}))
    report = verify_pipeline(
        checked, list(owner_keys), store, run_id=run_id, artifacts=artifacts, now=now
    )
    if checked is not signed:
        report.notes.append("export: deploy artifacts were not re-hashed (no --artifact given)")
    if not report.passed:
        return IntotoExport(report)
    assert report.run_id is not None
    chosen = _agreeing_attestations(checked, owner_keys, store, report.run_id, now)
    signers = {s.public_key.keyid: s for s in functionary_signers}
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
            "--functionary-key NAME=KEYFILE for each (local-key pipelines only)",
        )
    policy = signed.policy
    try:
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
            steps.append(_step(stage, keyids))
            for att in chosen[stage.name]:
                data, keyid = _signed_bytes(
                    _link_document(att, signed.digest), signers[att.functionary.keyid]
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
        layout_data, layout_keyid = _signed_bytes(
            _layout(policy, steps, layout_keys, readme), layout_signer
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedDocumentError(f"cannot express the run as in-toto metadata: {exc}") from exc
    except Exception as exc:
        if isinstance(exc, lib("securesystemslib.exceptions").Error):
            raise BadInputError(f"cannot express the run as in-toto metadata: {exc}") from exc
        raise
    layout_path = out_dir / layout_name
    for path, data in files.items():
        atomic_write(path, data)
    atomic_write(layout_path, layout_data)
    return IntotoExport(report, layout_path, tuple(files), layout_keyid)


def _layout(policy: Policy, steps: list[Any], keys: dict[str, Any], readme: str) -> Any:
    return lib("in_toto.models.layout").Layout(
        steps=steps,
        inspect=[],
        keys=keys,
        expires=format_rfc3339(policy.expires),
        readme=readme,
    )
