"""Formats: the bytes mlspec-attest reads and writes, and nothing above them.

Owns in-toto Statement v1 with the Link predicate (``statement``), DSSE (``dsse``),
the Sigstore bundle v0.3 (``bundle``), strict and canonical JSON (``jsonio``), RFC 3339
(``rfc3339``), the one YAML loader (``yamlio``), the one tabular reader (``tabular``),
the stage vocabulary (``stages``), the JSON Schemas (``schemas``), every parsing bound
(``limits``), safe file writes (``fsutil``), the Signer/Verifier protocols (``signer``) and
the base of value classes with fields outside their value (``partial_value``).

May import: :mod:`mlspec_attest.errors` and third-party libraries. Nothing else of the
package: every other layer builds on this one.
"""

from typing import TYPE_CHECKING

from mlspec_attest.formats.lazy import lazy_exports

if TYPE_CHECKING:
    from mlspec_attest.formats.vsa import VerificationSummary, summary_digest

#: Names loaded on first use (PEP 562): ``verify`` reads a verification summary only when
#: a policy pins a release (its baseline's binding), not on every run.
_LAZY = {"VerificationSummary": "vsa", "summary_digest": "vsa"}
__all__ = ["VerificationSummary", "summary_digest"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
