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

from __future__ import annotations

from typing import TYPE_CHECKING

from mlspec_attest.formats.lazy import lazy_exports

if TYPE_CHECKING:
    from mlspec_attest.verify.checks.holdback import check_holdback_content
    from mlspec_attest.verify.checks.leakage import check_leakage
    from mlspec_attest.verify.checks.objectives import check_objectives
    from mlspec_attest.verify.checks.requirements import check_requirements
    from mlspec_attest.verify.checks.separation import check_separation
    from mlspec_attest.verify.checks.validation import check_data_validation

#: Each family's check -> its module, loaded the first time a policy asks for the family
#: (PEP 562): a pipeline without ML sections loads no row digests, CEL or YAML reader.
_LAZY = {
    "check_objectives": "objectives",
    "check_separation": "separation",
    "check_holdback_content": "holdback",
    "check_leakage": "leakage",
    "check_data_validation": "validation",
    "check_requirements": "requirements",
}

__all__ = [
    "check_data_validation",
    "check_holdback_content",
    "check_leakage",
    "check_objectives",
    "check_requirements",
    "check_separation",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
