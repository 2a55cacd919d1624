"""One error hierarchy for the whole library, grouped by whose fault it is.

The library never prints or exits. The CLI maps each error class to the exit
code contract (see docs/cli.md):

====  ===========================================================
code  meaning
====  ===========================================================
0     passed
1     denied: verification ran and found the pipeline untrustworthy
2     usage: the command line itself is wrong
3     bad input: malformed YAML/JSON, unreadable key, unknown field
4     backend, network or trust material unavailable
70    internal error (a bug in mlspec-attest)
====  ===========================================================
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from enum import IntEnum
from types import ModuleType


class ExitCode(IntEnum):
    """The process exit codes promised by the CLI contract."""

    PASSED = 0
    DENIED = 1
    USAGE = 2
    BAD_INPUT = 3
    BACKEND = 4
    INTERNAL = 70


class MlspecError(Exception):
    """Root of every error mlspec-attest raises on purpose."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy

    def diagnostics(self) -> str:
        """A user-facing explanation: what is wrong and, where known, what to do."""
        if self.remedy:
            return f"{self.message}\n  fix: {self.remedy}"
        return self.message


class UsageError(MlspecError):
    """The caller combined options or arguments in a way that cannot work."""

    exit_code = ExitCode.USAGE


class BadInputError(MlspecError):
    """An input file or value is malformed, missing or of the wrong kind."""

    exit_code = ExitCode.BAD_INPUT


class MalformedDocumentError(BadInputError):
    """JSON/YAML that does not parse, or parses into the wrong shape."""


class KeyLoadError(BadInputError):
    """A key file is unreadable, encrypted without a passphrase, or of an unsupported type."""


class PolicyError(BadInputError):
    """A policy document violates the policy schema or its own invariants.

    ``problems`` holds every problem found, each with a line number when known.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []

    def diagnostics(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class ArtifactPathError(BadInputError):
    """A path cannot be attested: missing, escapes its root, or is not a file or directory."""


class BackendError(MlspecError):
    """A signing backend, trust root or network service is unavailable."""

    exit_code = ExitCode.BACKEND


class StoreError(MlspecError):
    """The attestation store cannot be read or written."""

    exit_code = ExitCode.BACKEND


class VerificationError(MlspecError):
    """A cryptographic or policy check failed (the pipeline is denied)."""

    exit_code = ExitCode.DENIED


class SignatureVerificationError(VerificationError):
    """A DSSE signature does not verify under the expected key."""


class SigstoreVerificationError(SignatureVerificationError):
    """A Sigstore bundle failed offline verification: certificate chain, transparency-log
    proof, signed time, signature, artifact digest or identity policy."""


# One class per verification check (see report.Check); `verify.require_verified`
# raises the class of the first failure, with the full report attached.


class PolicySignatureError(VerificationError):
    """Denial raised for the ``policy-signature`` check."""


class PolicyExpiredError(VerificationError):
    """Denial raised for the ``policy-expired`` check."""


class MalformedAttestationError(VerificationError):
    """Denial raised for the ``attestation-malformed`` check."""


class UnauthorizedSignerError(VerificationError):
    """Denial raised for the ``signer-not-allowed`` check."""


class RunMismatchError(VerificationError):
    """Denial raised for the ``run-id`` check."""


class PolicyDigestMismatchError(VerificationError):
    """Denial raised for the ``policy-digest`` check."""


class StageKindMismatchError(VerificationError):
    """Denial raised for the ``stage-kind`` check."""


class StageNotFoundError(VerificationError):
    """Denial raised for the ``stage-missing`` check."""


class ConflictingAttestationsError(VerificationError):
    """Denial raised for the ``conflicting-attestations`` check."""


class SignedTimeError(VerificationError):
    """Denial raised for the ``signed-time`` check."""


class ThresholdVerificationError(VerificationError):
    """Denial raised for the ``threshold`` check."""


class OrderingVerificationError(VerificationError):
    """Denial raised for the ``ordering`` check."""


class RuleVerificationError(VerificationError):
    """Denial raised for the ``artifact-rule`` check."""


class InspectionError(VerificationError):
    """Denial raised for the ``inspection`` check (in-toto layout inspections)."""


class ObjectivesDocumentError(VerificationError):
    """Denial raised for the ``objectives-document`` check."""


class BaselineVerificationError(VerificationError):
    """Denial raised for the ``baseline`` check."""


class ObjectiveNotMetError(VerificationError):
    """Denial raised for the ``objective`` check."""


class HoldbackNotTestedError(VerificationError):
    """Denial raised for the ``holdback-not-tested`` check."""


class HoldbackReadError(VerificationError):
    """Denial raised for the ``holdback-read`` check."""


class EvaluatedModelMismatchError(VerificationError):
    """Denial raised for the ``test-model`` check."""


class HoldbackTestOrderError(VerificationError):
    """Denial raised for the ``test-order`` check."""


class HoldbackDataReusedError(VerificationError):
    """Denial raised for the ``test-data-reused`` check."""


class LeakageError(VerificationError):
    """Denial raised for the ``leakage`` check."""


class DataValidationError(VerificationError):
    """Denial raised for the ``data-validation`` check."""


class DeprecatedDataError(VerificationError):
    """Denial raised for the ``deprecated-data`` check."""


class RequirementNotMetError(VerificationError):
    """Denial raised for the ``requirement`` check."""


class ArtifactNotSuppliedError(VerificationError):
    """Denial raised for the ``artifact-missing`` check."""


class ArtifactMismatchError(VerificationError):
    """Denial raised for the ``artifact-mismatch`` check."""


class ModelSignatureMismatchError(VerificationError):
    """Denial raised for the ``oms-signature`` check (served model vs recorded OMS signature)."""


class CommandFailedError(MlspecError):
    """The wrapped stage command exited non-zero; nothing was attested."""

    exit_code = ExitCode.DENIED

    def __init__(self, argv: list[str], returncode: int) -> None:
        super().__init__(
            f"stage command {argv[0]!r} exited with status {returncode}; no attestation written"
        )
        self.argv = argv
        self.returncode = returncode


# Third-party packages imported on first use (formerly extras.py): one way in, one
# error when one is missing.
#
# Third-party packages imported on first use: one way in, one error when one is missing.
#
# Every module that needs a package which may be absent imports it here
# (:func:`require`) or reports a failed import here (:func:`missing`). A missing
# package is a :class:`~mlspec_attest.errors.BackendError` (exit 4) worded one way
# wherever it happens::
#
#     error: <feature> needs <package>, which is not installed
#       fix: pip install 'mlspec-attest[<extra>]'
#
# Only heavy or optional features have an extra (:data:`PACKAGES`): ``metrics``
# (scikit-learn, numpy) and ``parquet`` (pyarrow); ``all`` installs every feature.
# in-toto, securesystemslib, sigstore, blake3 and cbor2 are core dependencies, so
# their absence means a broken installation, and the fix names the plain install
# (``pip install 'mlspec-attest'``), which brings missing dependencies back.
#
# Imports stay lazy: nothing here imports a listed package until a feature asks
# for it, so ``--help`` and ``sign`` with a local key never load sigstore.

#: Top-level module -> (the distribution pip installs, the extra that brings it;
#: ``None`` for a core dependency).
PACKAGES: dict[str, tuple[str, str | None]] = {
    "sklearn": ("scikit-learn", "metrics"),
    "numpy": ("numpy", "metrics"),
    "scipy": ("scipy", "metrics"),
    "joblib": ("joblib", "serve"),
    "safetensors": ("safetensors", "serve"),
    "onnx": ("onnx", "serve"),
    "onnxruntime": ("onnxruntime", "serve"),
    "starlette": ("starlette", "serve"),
    "uvicorn": ("uvicorn", "serve"),
    "prometheus_client": ("prometheus-client", "serve"),
    "pyarrow": ("pyarrow", "parquet"),
    "psycopg": ("psycopg", "postgres"),
    "fsspec": ("fsspec", "remote"),
    "s3fs": ("s3fs", "remote"),
    "dask": ("dask", "dask"),
    "distributed": ("distributed", "dask"),
    "cyclonedx": ("cyclonedx-python-lib", "sbom"),
    "spdx_python_model": ("spdx-python-model", "sbom"),
    "mlflow": ("mlflow-skinny", "mlflow"),
    "airflow": ("apache-airflow", "airflow"),
    "prefect": ("prefect", "prefect"),
    "kfp": ("kfp", "kfp"),
    "blake3": ("blake3", None),
    "cbor2": ("cbor2", None),
    "in_toto": ("in-toto", None),
    "securesystemslib": ("securesystemslib", None),
    "sigstore": ("sigstore", None),
    # sigstore's own dependencies, imported by name where sigstore's API needs them.
    "sigstore_models": ("sigstore-models", None),
    "rfc3161_client": ("rfc3161-client", None),
    "requests": ("requests", None),
    "celpy": ("cel-python", None),
}


def install_hint(extra: str | None) -> str:
    """The one fix for a missing package: the extra that installs it, or the core install."""
    if extra is None:
        return "pip install 'mlspec-attest'"
    return f"pip install 'mlspec-attest[{extra}]'"


def _installed(top: str) -> bool:
    if top in sys.modules:
        return sys.modules[top] is not None
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def missing(module: str, feature: str, exc: ImportError) -> BackendError:
    """The error for ``feature`` when importing ``module`` (or a module of its package)
    failed with ``exc``. The package named is the one whose import failed, when known."""
    top = module.partition(".")[0]
    failed = (exc.name or "").partition(".")[0]
    if failed in PACKAGES and failed != top:
        top = failed
    distribution, extra = PACKAGES[top]
    if _installed(top):
        # Present but broken (a wrong version, a missing compiled part): say what failed.
        message = f"{feature} needs {distribution}, which cannot be imported ({exc})"
    else:
        message = f"{feature} needs {distribution}, which is not installed"
    return BackendError(message, remedy=install_hint(extra))


def require(module: str, feature: str) -> ModuleType:
    """``importlib.import_module(module)``, or :func:`missing`'s error for ``feature``."""
    if module.partition(".")[0] not in PACKAGES:
        raise ValueError(f"{module!r} is not a package mlspec_attest.errors knows")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing(module, feature, exc) from exc


# The serving gate (mlspec_attest/serve/gate.py, docs/serving.md "Gate").


class GateDeniedError(VerificationError):
    """The serving gate refused a model: its verification summary, or the model's bytes,
    do not hold up. ``reasons`` holds every reason found (check, expected, found, remedy),
    not just the first; ``problems`` is each of them as one line of text."""

    def __init__(
        self, message: str, reasons: tuple[object, ...] = (), *, remedy: str | None = None
    ) -> None:
        super().__init__(message, remedy=remedy)
        self.reasons = reasons

    @property
    def problems(self) -> list[str]:
        return [str(reason) for reason in self.reasons]

    def diagnostics(self) -> str:
        if not self.reasons:
            return super().diagnostics()
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
