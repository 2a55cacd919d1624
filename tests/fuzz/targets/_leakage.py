"""A real split proof (leakage record + digest sets in a store) for the leakage targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlspec_attest.evidence.leakage import compute_split_proof
from mlspec_attest.store.ledger import AttestationStore

TRAIN = b"age,city,label\n34,Berlin,yes\n51,Paris,no\n29,Rome,no\n"
HOLDBACK = b"age,city,label\n29,Rome,no\n40,Oslo,yes\n"


def split_proof(root: Path) -> tuple[AttestationStore, dict[str, Any]]:
    """Sign-side proof over two small CSV splits that share one row; the same bytes every time."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "train.csv").write_bytes(TRAIN)
    (data / "holdback.csv").write_bytes(HOLDBACK)
    store = AttestationStore(root / "store")
    splits = {"train": data / "train.csv", "holdback": data / "holdback.csv"}
    return store, compute_split_proof(splits, store, base_dir=root)
