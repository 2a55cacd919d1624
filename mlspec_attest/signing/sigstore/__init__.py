"""Sigstore: keyless signing, offline bundle verification and trust roots.

The one Sigstore path: ``sign`` makes keyless bundles, ``verify`` verifies any Sigstore
bundle offline against a trust root, ``_compat`` is the one module that touches
sigstore-python internals.

May import: :mod:`mlspec_attest.formats`, :mod:`mlspec_attest.errors`.
"""
