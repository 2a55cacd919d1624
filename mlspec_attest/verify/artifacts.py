"""Step 9: the deploy artifacts, re-hashed and compared with what their stage attested.

Every byte is read again (never a cache), with the digest scheme the stage signed;
a directory that differs is explained file by file from the signed manifest in the
store, and a model whose package stage recorded an OpenSSF model-signing signature
must also match that signature's manifest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from msgspec import Struct
from msgspec.structs import replace

from mlspec_attest.digest.directory import DirectoryManifest
from mlspec_attest.digest.scheme import DEFAULT_SCHEME, DigestScheme
from mlspec_attest.errors import ArtifactPathError, MlspecError
from mlspec_attest.formats.inputs import named
from mlspec_attest.formats.statement import ResourceDescriptor
from mlspec_attest.policy.model import DeployArtifact, Policy
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.accepted import AcceptedAttestation
from mlspec_attest.verify.report import ArtifactSummary, Check, VerificationReport

if TYPE_CHECKING:
    from mlspec_attest.digest.artifact import ArtifactDigest
    from mlspec_attest.digest.engine import ProgressSink

_FIX_DIGEST = "re-sign the stage with a supported digest"


class DeployTarget(Struct, frozen=True):
    """One deploy role of the policy and the path given for it."""

    role: str
    spec: DeployArtifact
    path: Path | str  # a local path, or an object store URL

    @property
    def stage(self) -> str:
        return self.spec.stage

    def summary(
        self,
        status: str,
        digest: dict[str, str] | None = None,
        files: dict[str, list[str]] | None = None,
    ) -> ArtifactSummary:
        return ArtifactSummary(self.role, str(self.path), status, digest or {}, files)


def attested_product(
    spec: DeployArtifact, chosen: Mapping[str, AcceptedAttestation]
) -> ResourceDescriptor | None:
    """The product the deploy role names, in the chosen attestation of its stage."""
    att = chosen.get(spec.stage)
    if att is None:
        return None
    return next((p for p in att.statement.products if p.name == spec.product), None)


class DeployArtifacts:
    """Checks the ``--artifact`` paths against the policy's deploy roles."""

    def __init__(
        self,
        policy: Policy,
        paths: Mapping[str, Path | str],
        store: AttestationStore,
        report: VerificationReport,
        progress: ProgressSink | None = None,
    ) -> None:
        self.policy = policy
        self.paths = paths
        self.store = store
        self.report = report
        self.progress = progress

    def check(self, chosen: Mapping[str, AcceptedAttestation]) -> None:
        """Re-hash every deploy artifact (all its bytes, never a cache) and compare."""
        for role, spec in sorted(self.policy.deploy.items()):
            path = self.paths.get(role)
            if path is None:
                summary = self.not_supplied(role, spec)
            else:
                summary = self.check_target(DeployTarget(role, spec, path), chosen)
            attested = attested_product(spec, chosen)
            if attested is not None:
                summary = replace(summary, attested=dict(attested.digest))
            self.report.artifacts.append(summary)

    def _deny(self, target: DeployTarget, check: Check, problem: str, **fields: str) -> None:
        """A failure of ``target``, on its stage; ``problem`` follows the artifact's name."""
        self.report.fail(check, target.stage, f"deploy artifact {target.role!r}{problem}", **fields)

    def not_supplied(self, role: str, spec: DeployArtifact) -> ArtifactSummary:
        if spec.required:
            self.report.fail(
                Check.ARTIFACT_MISSING,
                spec.stage,
                f"deploy artifact {role!r} was not supplied",
                expected=f"{named('artifact_role', role=role)} (product {spec.product} of {spec.stage})",
                found="not given",
                remedy=f"pass {named('artifact_role', role=role)} to verify the bytes you deploy",
            )
        return ArtifactSummary(role, None, "not-checked")

    def check_target(
        self, target: DeployTarget, chosen: Mapping[str, AcceptedAttestation]
    ) -> ArtifactSummary:
        attested = attested_product(target.spec, chosen)
        scheme = self.scheme(target, attested)
        if scheme is None:
            return target.summary("mismatch")
        actual = self.rehash(target, scheme, attested)
        if isinstance(actual, ArtifactSummary):
            return actual
        if attested is None:
            return self.not_attested(target, actual, target.stage in chosen)
        if dict(attested.digest) == actual.digest_set():
            self.check_oms_evidence(target.stage, chosen[target.stage], target.path)
            return target.summary("ok", actual.digest_set())
        return self.differs(target, attested, actual, scheme)

    def scheme(
        self, target: DeployTarget, attested: ResourceDescriptor | None
    ) -> DigestScheme | None:
        """The scheme the stage signed with (the default when it attests nothing);
        None (reported) when this verifier cannot recompute it."""
        if attested is None:
            return DEFAULT_SCHEME
        try:
            return DigestScheme.of_digest_set(attested.digest)
        except MlspecError as exc:
            self._deny(
                target,
                Check.ARTIFACT_MISMATCH,
                f": {exc.message}",
                expected="a digest this verifier can recompute",
                found=", ".join(sorted(attested.digest)),
                remedy=exc.remedy or _FIX_DIGEST,
            )
            return None

    def rehash(
        self, target: DeployTarget, scheme: DigestScheme, attested: ResourceDescriptor | None
    ) -> ArtifactDigest | ArtifactSummary:
        """The artifact's digest now, or (reported) the summary of why there is none."""
        # In-function: the engine (object stores and Dask included) is loaded only when a
        # deploy artifact is given to re-hash, not by every verification (start-up).
        from mlspec_attest.digest.artifact import digest_path

        try:
            return digest_path(target.path, scheme=scheme, progress=self.progress)
        except ArtifactPathError as exc:
            return self.unreadable(target, exc)
        except MlspecError as exc:
            # e.g. a signed digest whose shard size would split the files past the limit
            self._deny(
                target,
                Check.ARTIFACT_MISMATCH,
                f" cannot be re-hashed as attested: {exc.message}",
                expected="a digest this verifier can recompute within its limits",
                found=", ".join(sorted(attested.digest)) if attested else "no digest",
                remedy=exc.remedy or _FIX_DIGEST,
            )
            return target.summary("mismatch")

    def unreadable(self, target: DeployTarget, exc: ArtifactPathError) -> ArtifactSummary:
        """The artifact could not be walked: missing, or holding what no digest may cover
        (a link out of it, a FIFO, a name that is no UTF-8): each said as what it is."""
        if not os.path.lexists(target.path):
            self._deny(
                target,
                Check.ARTIFACT_MISSING,
                f": {exc.message}",
                expected=f"a readable file or directory at {target.path}",
                found="missing",
                remedy="pass the path of the artifact you are about to deploy",
            )
            return target.summary("missing")
        self._deny(
            target,
            Check.ARTIFACT_MISMATCH,
            f": {exc.message}",
            expected="only regular files (and links to them inside the artifact)",
            found="an entry no attested digest covers",
            remedy=exc.remedy or "remove or replace the entry the message names",
        )
        return target.summary("mismatch")

    def not_attested(
        self, target: DeployTarget, actual: ArtifactDigest, stage_verified: bool
    ) -> ArtifactSummary:
        spec = target.spec
        if not stage_verified:  # the stage's own failures are the cause: say so
            self._deny(
                target,
                Check.ARTIFACT_MISMATCH,
                f" was not compared: stage {spec.stage!r} has no verified attestation",
                expected=f"product {spec.product} in a valid {spec.stage} attestation",
                found=f"stage {spec.stage} not verified",
                remedy="fix the stage failures above first",
            )
            return target.summary("stage-not-verified", actual.digest_set())
        self._deny(
            target,
            Check.ARTIFACT_MISMATCH,
            f": stage {spec.stage!r} attests no product {spec.product!r}",
            expected=f"product {spec.product} in a valid {spec.stage} attestation",
            found="none",
            remedy="fix the stage failures above first",
        )
        return target.summary("mismatch", actual.digest_set())

    def differs(
        self,
        target: DeployTarget,
        attested: ResourceDescriptor,
        actual: ArtifactDigest,
        scheme: DigestScheme,
    ) -> ArtifactSummary:
        description, files = self.describe_difference(attested.digest, actual)
        key = scheme.key
        self._deny(
            target,
            Check.ARTIFACT_MISMATCH,
            f" at {target.path} differs from what {target.stage!r} attested",
            expected=f"{key} {attested.digest.get(key, '?')}",
            found=f"{key} {actual.digest}; {description}",
            remedy="do not deploy: the bytes on disk are not the attested ones; rebuild through the pipeline",
        )
        return target.summary("mismatch", actual.digest_set(), files)

    def check_oms_evidence(self, stage: str, att: AcceptedAttestation, path: Path | str) -> None:
        """If the stage recorded an OpenSSF model-signing signature, the served model must match it."""
        record = att.statement.metadata.details.get("omsSignature")
        if record is None or not isinstance(path, Path) or not path.is_dir():
            return
        # In-function, as the engine in rehash: model serialization is loaded only for a
        # package stage that recorded an OMS signature.
        from mlspec_attest.verify.oms_evidence import check_oms_evidence

        for problem in check_oms_evidence(record, path):
            self.report.fail(
                Check.OMS_SIGNATURE,
                stage,
                f"model at {path} does not match the model-signing signature recorded at {stage}: {problem}",
                expected="the model the recorded OMS signature covers",
                found=problem,
                remedy="serve exactly the signed model directory",
            )

    def describe_difference(
        self, attested: Mapping[str, str], actual: ArtifactDigest
    ) -> tuple[str, dict[str, list[str]] | None]:
        """A one-line account of the difference and, for manifests, every file that differs."""
        if actual.manifest is None:
            if "manifest-sha256" in attested:
                return "attested a directory, found a file", None
            return "file content differs", None
        if "manifest-sha256" not in attested:
            return "attested a file, found a directory", None
        blob = self.store.get_blob(attested["manifest-sha256"])
        if blob is None:
            return "directory content differs (attested manifest not in store)", None
        try:
            expected = DirectoryManifest.from_bytes(blob)
        except MlspecError:
            return "directory content differs (stored manifest unreadable)", None
        diff = expected.diff(actual.manifest)
        return diff.summary(), diff.to_json()
