"""Digests: the one engine that hashes files, directories, shards and dataset rows.

Owns the walk (``walk``), parallel hashing (``engine`` and its helper processes in
``_helper``), manifests and serializations (``manifest``), the opt-in per-file cache
(``cache``) and the canonical row digests (``rows``).

May import: :mod:`mlspec_attest.formats`, :mod:`mlspec_attest.errors`.
"""
