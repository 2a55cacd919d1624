"""Sigstore: keyless signing, offline bundle verification and trust roots.

The one Sigstore path: ``verify`` verifies any Sigstore bundle offline against a
trust root (``verify_bundle``; key bundles in ``key_bundle``, Rekor entry bodies
in ``log_entry``, artifact subjects in ``subject``), ``identity`` says who a
certificate names and which rules allow it, ``trust_root`` is the one trust-root
loader (exact ``mediaType``), ``result`` what a verification proved, ``sign`` the
one keyless signer, ``bundle_check`` turns ``bundle verify``'s options into
``verify_bundle``'s inputs, and ``_compat`` is the one module that touches
sigstore-python internals (imported only when a bundle needs it).

May import: :mod:`mlspec_attest.signing` (keys, schemes, dsse_pae),
:mod:`mlspec_attest.formats`, :mod:`mlspec_attest.errors`.
"""
