"""in-toto interop: verify in-toto layouts, export runs as layouts + links, ``.intoto.jsonl``.

* :func:`verify_intoto_layout` verifies a legacy or DSSE in-toto layout against
  ``<step>.<keyid8>.link`` files with in-toto's semantics (inspections
  included) and returns a :class:`~mlspec_attest.verify.report.VerificationReport`.
* :func:`is_intoto_layout` tells an in-toto layout from a signed mlspec-attest
  policy, and :func:`verify_policy_or_layout` runs the verifier that fits, so
  ``verify --policy`` accepts either.
* :func:`export_intoto` writes a verified local-key run as a legacy layout and
  links that the reference ``in-toto-verify`` accepts, re-signing each link with
  the functionary's key (:func:`functionary_signers` finds them).
* :func:`export_jsonl`, :func:`write_jsonl` and :func:`read_jsonl` handle
  ``.intoto.jsonl`` (one DSSE envelope a line) for witness, Archivista, GUAC.

The layout and link features use in-toto and securesystemslib (core
dependencies, imported on first use); an installation without them raises
``BackendError`` (exit 4, see :mod:`mlspec_attest.errors`). ``.intoto.jsonl``
needs neither.
docs/in-toto.md describes formats, semantics and differences.

May import: :mod:`mlspec_attest.verify` and every layer below it (in-toto's own code
decides layout semantics; keys load through :mod:`mlspec_attest.signing.keys`).

Modules: ``support`` (the optional dependency, keys, reading metadata),
``verify`` (the entry point and the step table) over ``layout``, ``links``,
``artifact_rules``, ``inspections`` and ``scope``; ``export`` over
``metablocks`` and ``functionary_keys``; ``jsonl``; ``policy_or_layout``.

The names below are loaded on first use (PEP 562): ``verify --policy`` of a signed
policy loads neither the layout verifier nor the exporter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlspec_attest.formats.lazy import lazy_exports

if TYPE_CHECKING:
    from mlspec_attest.interop.intoto.export import (
        DEFAULT_LAYOUT_NAME,
        IntotoExport,
        export_intoto,
    )
    from mlspec_attest.interop.intoto.functionary_keys import functionary_signers
    from mlspec_attest.interop.intoto.inspections import DEFAULT_INSPECT_TIMEOUT, INSPECTION_CHECK
    from mlspec_attest.interop.intoto.jsonl import (
        JSONL_SUFFIX,
        JsonlExport,
        export_jsonl,
        parse_jsonl,
        read_jsonl,
        write_jsonl,
    )
    from mlspec_attest.interop.intoto.policy_or_layout import verify_policy_or_layout
    from mlspec_attest.interop.intoto.support import (
        INSTALL_HINT,
        is_intoto_layout,
        load_layout_key,
        require_intoto,
        sslib_key_dict,
    )
    from mlspec_attest.interop.intoto.verify import verify_intoto_layout

#: Each public name -> the module that defines it (the imports above, for type checkers).
_LAZY = {
    "DEFAULT_LAYOUT_NAME": "export",
    "IntotoExport": "export",
    "export_intoto": "export",
    "functionary_signers": "functionary_keys",
    "DEFAULT_INSPECT_TIMEOUT": "inspections",
    "INSPECTION_CHECK": "inspections",
    "JSONL_SUFFIX": "jsonl",
    "JsonlExport": "jsonl",
    "export_jsonl": "jsonl",
    "parse_jsonl": "jsonl",
    "read_jsonl": "jsonl",
    "write_jsonl": "jsonl",
    "verify_policy_or_layout": "policy_or_layout",
    "INSTALL_HINT": "support",
    "is_intoto_layout": "support",
    "load_layout_key": "support",
    "require_intoto": "support",
    "sslib_key_dict": "support",
    "verify_intoto_layout": "verify",
}

__all__ = [
    "DEFAULT_INSPECT_TIMEOUT",
    "DEFAULT_LAYOUT_NAME",
    "INSPECTION_CHECK",
    "INSTALL_HINT",
    "JSONL_SUFFIX",
    "IntotoExport",
    "JsonlExport",
    "export_intoto",
    "export_jsonl",
    "functionary_signers",
    "is_intoto_layout",
    "load_layout_key",
    "parse_jsonl",
    "read_jsonl",
    "require_intoto",
    "sslib_key_dict",
    "verify_intoto_layout",
    "verify_policy_or_layout",
    "write_jsonl",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
