"""Who may sign: the policy's functionaries (a public key or a Sigstore identity each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlspec_attest.errors import MlspecError
from mlspec_attest.policy.model import Functionary
from mlspec_attest.policy.problems import Findings
from mlspec_attest.signing.keys import LocalPublicKey, load_public_key
from mlspec_attest.signing.sigstore.identity import SigstoreIdentity


def compile_functionaries(
    doc: dict[str, Any], base_dir: Path | None, report: Findings
) -> dict[str, Functionary]:
    """Every functionary that compiles; each that does not is reported and left out.

    ``base_dir`` resolves ``key:`` paths; ``None`` forbids them (a signed policy
    must be self-contained).
    """
    functionaries: dict[str, Functionary] = {}
    for name, spec in doc["functionaries"].items():
        found = _functionary(name, spec, base_dir, report)
        if found is not None:
            functionaries[name] = found
    return functionaries


def _functionary(
    name: str, spec: dict[str, Any], base_dir: Path | None, report: Findings
) -> Functionary | None:
    if "sigstore" in spec:
        try:
            identity = SigstoreIdentity.from_json(spec["sigstore"])
        except ValueError as exc:
            report(["functionaries", name, "sigstore"], str(exc))
            return None
        return Functionary(name, description=spec.get("description", ""), identity=identity)
    if "key" in spec:
        here: list[str | int] = ["functionaries", name, "key"]
        if base_dir is None:
            report(here, "signed policies must embed publicKey, not key paths")
            return None
        path = resolved(base_dir, spec["key"])
        try:
            key = load_public_key(path)
        except MlspecError as exc:
            report(here, f"{exc.message}{relative_note(spec['key'], base_dir)}")
            return None
    else:
        try:
            key = LocalPublicKey.from_pem(spec["publicKey"], source=f"functionary {name}")
        except MlspecError as exc:
            report(["functionaries", name, "publicKey"], exc.message)
            return None
    return Functionary(name, key, spec.get("description", ""))


def resolved(base_dir: Path, written: str) -> Path:
    """The absolute path a policy's ``written`` file path names: relative to the policy's
    folder (``base_dir``), whatever the current directory; this is the path that is read."""
    return (base_dir / written).resolve()


def relative_note(written: str, base_dir: Path) -> str:
    """How a relative ``written`` path was resolved, for a message that names the result."""
    if Path(written).is_absolute():
        return ""
    return f" (written {written!r}, relative to the policy file's folder {base_dir.resolve()})"


def report_shared_keys(functionaries: dict[str, Functionary], report: Findings) -> None:
    """Two functionaries with one key are one signer under two names: a warning."""
    seen_keys: dict[str, str] = {}
    for f in functionaries.values():
        if f.keyid in seen_keys:
            report(
                ["functionaries", f.name],
                f"same key as functionary {seen_keys[f.keyid]!r}",
                "warning",
            )
        seen_keys.setdefault(f.keyid, f.name)
