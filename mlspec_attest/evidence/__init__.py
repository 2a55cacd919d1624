"""Evidence: what stages measure about data and models.

Owns data analysis (``analysis``), data schemas and validation (``dataschema``),
evaluation metrics (``metrics``), leakage sets (``leakage``) and row fingerprints of
the data a stage reads (``rowsets``).

May import: :mod:`mlspec_attest.digest`, :mod:`mlspec_attest.store`,
:mod:`mlspec_attest.formats`, :mod:`mlspec_attest.errors`.
"""
