"""Stage 2 - data ingestion (CLI, `mlspec-attest sign ... -- python s02_ingest.py --work`).

Pulls scikit-learn's bundled diabetes dataset (Efron et al. 2004; no network)
and writes it unscaled to ``data/raw/diabetes.csv`` with a stable ``row_id``.
The connector and query are known before the command runs, so they are
recorded as ``--param``; the CLI hashes the product after the command exits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import (
    ID_COLUMN,
    TARGET,
    cli_sign,
    infrastructure,
    read_csv,
    work_mode,
    wrapped_self,
    write_csv,
)

RAW = Path("data/raw/diabetes.csv")


def work() -> None:
    import sklearn
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(scaled=False)
    ids = np.arange(bunch.data.shape[0], dtype=np.float64)
    rows = np.column_stack([ids, bunch.data, bunch.target])
    write_csv(RAW, [ID_COLUMN, *bunch.feature_names, TARGET], rows)
    print(f"ingested {rows.shape[0]} rows with scikit-learn {sklearn.__version__}")


def main() -> None:
    if work_mode():
        work()
        return
    from importlib.metadata import version

    cli_sign(
        "ingest",
        "data-engineer",
        products=[str(RAW)],
        roles={"raw": str(RAW)},
        params={
            "connector": "sklearn.datasets",
            "query": "load_diabetes(scaled=False)",
            "source": "Efron, Hastie, Johnstone, Tibshirani (2004), Least Angle Regression",
            "connector_version": f"scikit-learn {version('scikit-learn')}",
            "sharding": "none",
            "labeling": "clinical measurement (no manual labels)",
            "synthetic": False,
        },
        infra=infrastructure(),
        command=wrapped_self(__file__),
    )
    header, data = read_csv(RAW)
    print(f"{data.shape[0]} rows x {len(header)} columns -> {RAW}")


if __name__ == "__main__":
    main()
