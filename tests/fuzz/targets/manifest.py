"""digest.DirectoryManifest.from_bytes: a stored directory manifest (v1 and v2).

Input: the manifest bytes. Checks: only bad-input errors; for an accepted
manifest the hand-written canonical bytes equal RFC 8785 of to_json(), and
they parse back to an equal manifest with the same root and address.
"""

from __future__ import annotations

from mlspec_attest.digest.directory import DirectoryManifest
from mlspec_attest.formats.jsonio import canonical

from ._harness import main, parse_or_none


def TestOneInput(data: bytes) -> None:
    manifest = parse_or_none(DirectoryManifest.from_bytes, data)
    if manifest is None:
        return
    raw = manifest.canonical_bytes()
    assert raw == canonical(manifest.to_json())
    again = DirectoryManifest.from_bytes(raw)
    assert again == manifest
    assert again.root == manifest.root and again.address == manifest.address
    assert manifest.diff(again).added == () and manifest.diff(again).changed == ()


if __name__ == "__main__":
    main(TestOneInput)
