"""The policy's Sigstore trust root (``trust.sigstore``): the instance keyless signers use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlspec_attest.errors import BackendError, MlspecError
from mlspec_attest.policy.functionaries import relative_note, resolved
from mlspec_attest.policy.model import Functionary
from mlspec_attest.policy.problems import Findings
from mlspec_attest.signing.sigstore.trust_root import TrustRoot


def sigstore_trust(
    doc: dict[str, Any],
    functionaries: dict[str, Functionary],
    base_dir: Path | None,
    report: Findings,
) -> TrustRoot | None:
    """The ``trust.sigstore`` root: a file or an instance in YAML, always embedded once signed."""
    spec = doc.get("trust", {}).get("sigstore")
    keyless = [f.name for f in functionaries.values() if f.identity is not None]
    if spec is None:
        if keyless:
            report(
                ["functionaries", keyless[0], "sigstore"],
                f"Sigstore functionaries ({', '.join(keyless)}) need a trust root: "
                "add trust.sigstore with trustedRoot, trustConfig or instance",
            )
        return None
    here: list[str | int] = ["trust", "sigstore"]
    if not keyless:
        report(here, "a Sigstore trust root but no Sigstore functionary uses it", "warning")
    try:
        root = spec.get("trustedRoot")
        if isinstance(root, dict):
            return TrustRoot.from_json(root, source=spec.get("source", "") or "embedded")
        if base_dir is None:
            report(
                here, "signed policies must embed the trustedRoot document, not a path or instance"
            )
            return None
        found = _named_trust_root(spec, base_dir)
    except MlspecError as exc:
        written = _written(spec)
        note = relative_note(written, base_dir) if written and base_dir else ""
        report(here, exc.message + note)
        return None
    try:
        found.sigstore()  # parse it fully now, not at verification time
    except BackendError:
        raise  # sigstore-python cannot be imported: exit 4, never a policy unchecked
    except MlspecError as exc:
        report(here, exc.message)
        return None
    return found


def _named_trust_root(spec: dict[str, Any], base_dir: Path) -> TrustRoot:
    """The root a YAML policy names: a trusted-root file, a client trust config or an instance.

    A file is read at its resolved path (relative to the policy's folder), which its
    errors name.
    """
    written = _written(spec)
    if written is None:
        return TrustRoot.embedded(spec["instance"])
    return TrustRoot.from_file(resolved(base_dir, written), source=written)


def _written(spec: dict[str, Any]) -> str | None:
    """The file path a ``trust.sigstore`` spec names, as written, if it names one."""
    root = spec.get("trustedRoot")
    return root if isinstance(root, str) else spec.get("trustConfig")
