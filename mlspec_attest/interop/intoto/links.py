"""The links of one step: found on disk, signed by authorized keys, in agreement.

Steps 3, 4 and 7 of in-toto's verification (see :mod:`.verify`):
``<step>.<keyid8>.link`` files found for each authorized key (``LinkNotFoundError``),
a threshold of them validly signed by distinct authorized keys
(``ThresholdVerificationError``; a bad signature fails the step only when it
leaves it below threshold), and, with a threshold above one, links that report
the same materials and products. Signatures are checked by in-toto's own
``Metadata.verify_signature``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlspec_attest.errors import MalformedDocumentError
from mlspec_attest.interop.intoto.scope import LayoutScope
from mlspec_attest.interop.intoto.support import lib, link_filename, load_metadata
from mlspec_attest.verify.report import Check

#: keyid (as in the link's file name) -> (link file, in-toto Metadata)
FoundLinks = dict[str, tuple[Path, Any]]


def signature_problem(metadata: Any, key: Mapping[str, Any]) -> str | None:
    """Why ``metadata`` has no valid signature by ``key`` (None if it has one)."""
    SignatureVerificationError = lib("in_toto.exceptions").SignatureVerificationError
    SSlibError = lib("securesystemslib.exceptions").Error

    try:
        metadata.verify_signature(dict(key))
    except SignatureVerificationError as exc:
        # DSSE failures carry no text of their own (securesystemslib's is about thresholds).
        return str(exc) or f"no signature by key {str(key.get('keyid'))[:16]} verifies"
    except (SSlibError, ValueError, KeyError, TypeError) as exc:
        return f"signature unusable ({type(exc).__name__}: {exc})"
    return None


def load_links(scope: LayoutScope, layout: Any, step: Any) -> FoundLinks | None:
    """The step's link files that exist and parse; None (reported) below its threshold."""
    stage = scope.stage(step.name)
    found: FoundLinks = {}
    expected: list[str] = []
    for authorized in step.pubkeys:
        subkeys = layout.keys.get(authorized, {}).get("subkeys") or {}
        for keyid in [authorized, *subkeys]:
            name = link_filename(step.name, keyid)
            expected.append(name)
            path = scope.link_dir / name
            if not path.is_file():
                continue
            scope.files.setdefault(stage, []).append(name)
            try:
                found[keyid] = (path, load_metadata(path))
            except MalformedDocumentError as exc:
                scope.fail(
                    Check.ATTESTATION_MALFORMED,
                    stage,
                    f"unreadable link: {exc.message}",
                    remedy="re-create the link with in-toto-run or in-toto-record",
                    source=name,
                )
    if len(found) < step.threshold:
        scope.fail(
            Check.STAGE_MISSING,
            stage,
            f"step requires {step.threshold} link file(s), found {len(found)}",
            expected=f"{step.threshold} of: {', '.join(expected) or '(no authorized keys)'}",
            found=f"{len(found)} in {scope.link_dir}",
            remedy="run the step as an authorized functionary (in-toto-run) and put its "
            "link in the link directory",
        )
        return None
    return found


def verification_key(
    layout: Any, step: Any, link_keyid: str, main_for_sub: Mapping[str, Any]
) -> Any | None:
    """in-toto's rule: the authorized key, its main key, or the key whose subkey signed."""
    for authorized in step.pubkeys:
        key = layout.keys.get(authorized)
        main = main_for_sub.get(authorized)
        if key and link_keyid == authorized:
            return key
        if main and link_keyid == authorized:
            return main
        if key and link_keyid in (key.get("subkeys") or {}):
            return key
    return None


def verified_links(
    scope: LayoutScope, layout: Any, step: Any, found: Mapping[str, tuple[Path, Any]]
) -> FoundLinks | None:
    """The links validly signed by an authorized key; None (reported) below threshold."""
    main_for_sub = {
        sub: main for main in layout.keys.values() for sub in (main.get("subkeys") or {})
    }
    verified: FoundLinks = {}
    used: set[str] = set()
    rejected: list[tuple[Path, str]] = []
    for link_keyid, (path, metadata) in found.items():
        key = verification_key(layout, step, link_keyid, main_for_sub)
        if key is None:
            continue
        problem = signature_problem(metadata, key)
        if problem is not None:
            rejected.append((path, problem))
            continue
        used.add(key["keyid"])
        verified[link_keyid] = (path, metadata)
    if len(used) < step.threshold:
        _below_threshold(scope, step, rejected, valid=len(used), files=len(found))
        return None
    for path, problem in rejected:
        scope.note(f"{path.name}: ignored ({problem}); threshold met without it")
    scope.signers[scope.stage(step.name)] = sorted(k[:8] for k in used)
    return verified


def _below_threshold(
    scope: LayoutScope, step: Any, rejected: list[tuple[Path, str]], *, valid: int, files: int
) -> None:
    stage = scope.stage(step.name)
    for path, problem in rejected:
        scope.fail(
            Check.SIGNATURE,
            stage,
            "link signature does not verify (link altered or signed by another key)",
            expected=f"a valid signature by key {path.name.split('.')[-2]}…",
            found=problem,
            remedy="the link was modified after signing or signed with the wrong key; "
            "re-run the step and sign it again",
            source=path.name,
        )
    scope.fail(
        Check.THRESHOLD,
        stage,
        "not enough links validly signed by distinct authorized functionaries",
        expected=f"{step.threshold} link(s) validly signed by different authorized keys",
        found=f"{valid} valid among {files} link file(s)",
        remedy="have more of the step's functionaries run it and sign their own links",
    )


def note_command_differences(scope: LayoutScope, step: Any, links: Mapping[str, Any]) -> None:
    """Step 6: a command other than the expected one is a note (in-toto only warns)."""
    if not step.expected_command:
        return
    for keyid, link in links.items():
        if list(link.command) != list(step.expected_command):
            scope.note(
                f"{link_filename(step.name, keyid)}: command {link.command} differs from "
                f"expected {step.expected_command} (in-toto only warns)"
            )


def check_agreement(scope: LayoutScope, step: Any, links: Mapping[str, Any]) -> bool:
    """Step 7: with a threshold above one, every link reports the same artifacts."""
    if step.threshold <= 1:
        return True
    ref_keyid, ref = next(iter(links.items()))
    differing = [
        link_filename(step.name, k)
        for k, link in links.items()
        if link.materials != ref.materials or link.products != ref.products
    ]
    if differing:
        scope.fail(
            Check.THRESHOLD,
            scope.stage(step.name),
            "links of the step report different materials or products",
            expected=f"every link agrees with {link_filename(step.name, ref_keyid)}",
            found=f"differs: {', '.join(differing)}",
            remedy="the functionaries did not see the same artifacts; re-run the step",
        )
        return False
    return True
