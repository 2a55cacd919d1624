"""Attestation: building, signing and storing one stage attestation.

Owns ``sign_stage`` (``stage``: the steps, in order, and the sign result), what a stage
attests and the checks made before its command runs (``record``), hashing materials and
products (``artifacts``), the evidence ``sign`` computes into ``details`` (``details``),
building a stage's signer, the one place for key files, signer objects and Sigstore
keyless (``signers``), and running a stage command while hashing its output
(``runner``). The CLI's ``sign`` and the Python API (:mod:`mlspec_attest.api`) both
call into here.

May import: :mod:`mlspec_attest.policy`, :mod:`mlspec_attest.evidence`,
:mod:`mlspec_attest.signing`, :mod:`mlspec_attest.digest`, :mod:`mlspec_attest.store`,
:mod:`mlspec_attest.formats`, :mod:`mlspec_attest.errors`.
"""
