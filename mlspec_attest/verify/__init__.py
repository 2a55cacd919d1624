"""Verify: the pipeline verifier, its ML checks and the report.

Owns the verification engine, one module per thing it decides:

* ``pipeline``: the orchestration (:class:`~mlspec_attest.verify.pipeline.PipelineVerifier`,
  ``verify_pipeline``, ``require_verified``), steps 1-2 (the policy's signature and expiry);
* ``signers``: who signed a bundle (a policy key or Sigstore identity), for stage
  attestations and the baseline alike;
* ``admission``: which stored attestations count (signature, signer, run, policy, kind),
  with ``signed_times``: the signer's clock must be consistent;
* ``accepted``: the one rule for attestations of a stage that disagree; ``agreement``:
  each stage present, in agreement, signed by enough keys;
* ``ordering``: stage order by signed times and predecessor records;
* ``artifact_rules`` (with ``dirfiles``: directories seen file by file): in-toto rules;
* ``checks/``: the ML checks by family, with ``baseline``: the ``--baseline`` attestation;
* ``artifacts``: deploy artifacts re-hashed and compared (with ``oms_evidence``: the
  OpenSSF model-signing record);
* ``report``: the verification report.

May import: :mod:`mlspec_attest.policy`, :mod:`mlspec_attest.evidence`,
:mod:`mlspec_attest.signing`, :mod:`mlspec_attest.digest`, :mod:`mlspec_attest.store`,
:mod:`mlspec_attest.formats`, :mod:`mlspec_attest.errors`.
"""
