"""The attestation store (``mlspec_attest/store/ledger.py``): what each operation promises.

Written against the mutants ``make mutate`` found surviving (docs/testing.md, "Mutation
testing"): each test pins one behaviour exactly (the error class and the words that name
the problem, the run id format, the order of results), on a real store in ``tmp_path``
with real keys and signatures.
"""

from __future__ import annotations

import re

from mlspec_attest.store.ledger import new_run_id


def test_new_run_id_format() -> None:
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{12}", new_run_id())
