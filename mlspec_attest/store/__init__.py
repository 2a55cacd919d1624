"""The store: the ledger of signed stage attestations per run, and blobs by content address.

May import: :mod:`mlspec_attest.formats`, :mod:`mlspec_attest.errors`.
"""
