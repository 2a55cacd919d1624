"""Log: the tamper-evident inference log bound to a verified pipeline.

One NCSA Combined Log Format line per request beside a CBOR record stream whose
records are the leaves of an RFC 6962 Merkle tree, with signed checkpoints in the
C2SP tlog-checkpoint / signed-note form (docs/logging.md).

May import :mod:`mlspec_attest.interop`, :mod:`mlspec_attest.verify` and every layer
below them; never :mod:`mlspec_attest.serve` or :mod:`mlspec_attest.cli`.
Only this package imports cbor2.
"""
