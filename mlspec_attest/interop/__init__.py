"""Interoperability with other supply-chain tools (OpenSSF model-signing, legacy in-toto).

Each format lives in its own module and is imported explicitly, so importing this
package loads nothing: ``intoto/`` (legacy in-toto layouts, links, export,
``.intoto.jsonl``) and ``oms/`` (OpenSSF model-signing manifests, signatures, trust).
Interop translates formats only: hashing, signing and verification are the layers
below, never a second engine.

May import: :mod:`mlspec_attest.verify` and every layer below it.
"""
