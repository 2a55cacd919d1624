"""Verify: the pipeline verifier, its ML checks and the report.

Owns the verification engine (``pipeline``), the one rule for attestations of a stage
that disagree (``accepted``), directory artifacts seen file by file (``dirfiles``), the
ML-specific checks (``mlchecks``) and the verification report (``report``).

May import: :mod:`mlspec_attest.policy`, :mod:`mlspec_attest.evidence`,
:mod:`mlspec_attest.signing`, :mod:`mlspec_attest.digest`, :mod:`mlspec_attest.store`,
:mod:`mlspec_attest.formats`, :mod:`mlspec_attest.errors`.
"""
