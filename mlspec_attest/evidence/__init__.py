"""Evidence: what stages measure about data and models.

Owns data analysis (``analysis``, with the per-column numbers in ``feature_stats``),
data schemas (the document in ``schema_document``, loading and validation in
``dataschema``, the validation record in ``violations``, first versions in
``schema_inference``), evaluation metrics (``metrics``, assembled by
``metrics_document``, read from a predictions table by ``predictions``; the metrics
file format and its validation in ``metrics_file``), the leakage proof (``leakage``:
the split stage's proof; ``overlaps``: its verification; ``digest_sets``: row digest
sets; ``content_sets``: a dataset's content sets; ``records``: the signed record
formats) and row fingerprints of the data a stage reads (``rowsets``; read back by the
hold-back content check in ``holdback_rows``, without the row engine).

Data files are read by the one tabular reader (:mod:`mlspec_attest.formats.tabular`,
cells by :mod:`mlspec_attest.formats.cells`); rows hashed by the one row engine
(:mod:`mlspec_attest.digest.rows`).

May import: :mod:`mlspec_attest.digest`, :mod:`mlspec_attest.store`,
:mod:`mlspec_attest.formats`, :mod:`mlspec_attest.errors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlspec_attest.formats.lazy import lazy_exports

if TYPE_CHECKING:
    from mlspec_attest.evidence.leakage import prove_splits
    from mlspec_attest.evidence.rowsets import fingerprint_materials

#: Each lazily loaded name -> the module that defines it (the imports above, for type
#: checkers): ``sign`` without ``--split`` or row fingerprints loads neither the leakage
#: proof nor the row engine.
_LAZY = {"prove_splits": "leakage", "fingerprint_materials": "rowsets"}

__all__ = ["fingerprint_materials", "prove_splits"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
