"""The ML-specific verification steps: what an ML pipeline must prove before launch.

Run by :class:`mlspec_attest.verify.pipeline.PipelineVerifier` after the generic in-toto
checks, on the attestations it chose (one per stage), in this order:

* ``objectives``: the signed objectives document, evaluated against the metrics
  attested by the stages its criteria name (optionally against a baseline);
* ``separation``: the hold-back split is consumed by ``test`` and read by no
  transform/train/evaluate stage; test and evaluation used the same model,
  different data, in that order;
* ``holdback``: no stage that may not read the hold-back split read its rows, in any
  file or format (row digest sets);
* ``leakage``: row overlaps between splits recomputed from the stored digest sets;
* ``validation``: data validation passed against the named schema version, nothing
  deprecated trained on;
* ``requirements``: CEL expressions over the stage records (``records``).

May import: :mod:`mlspec_attest.verify` modules below the pipeline (``report``,
``accepted``) and every layer below :mod:`mlspec_attest.verify`.
"""
