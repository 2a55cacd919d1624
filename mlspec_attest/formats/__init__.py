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
