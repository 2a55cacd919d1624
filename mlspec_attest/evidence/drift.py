"""Drift of live feature values against the attested training data: PSI and a KS test.

* **PSI** (population stability index) over ``bins`` bins whose edges are the
  training data's quantiles (equal-frequency bins; repeated edges merged), so each
  training bin holds about ``1/bins`` of the rows: ``sum((a - e) * ln(a / e))`` with
  ``a`` the live share and ``e`` the training share of each bin, both floored at
  :data:`PSI_FLOOR` so an empty bin is finite. Common reading: < 0.1 stable,
  0.1-0.25 moderate shift, > 0.25 significant shift.
* **Kolmogorov-Smirnov** two-sample test (scipy's ``ks_2samp``): the largest gap
  between the two empirical distributions and its p-value.

Both need the numbers only; which rows are "live" and which are "training" is the
caller's business (:mod:`mlspec_attest.serve.monitor` reads them from a verified
inference log and from the training split the summary names).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from msgspec import Struct

from mlspec_attest.errors import UsageError, require

PSI_FLOOR = 1e-4
DEFAULT_BINS = 10


class FeatureDrift(Struct, frozen=True):
    """The drift of one feature."""

    psi: float
    ks_statistic: float
    ks_pvalue: float
    train_count: int
    live_count: int

    def metrics(self) -> dict[str, float]:
        return {
            "psi": round(self.psi, 6),
            "ks_statistic": round(self.ks_statistic, 6),
            "ks_pvalue": round(self.ks_pvalue, 6),
        }


def _finite(values: Sequence[float], what: str) -> list[float]:
    out = [float(v) for v in values]
    if not out:
        raise UsageError(f"{what}: no values to compare")
    if not all(math.isfinite(v) for v in out):
        raise UsageError(f"{what}: values must be finite numbers")
    return out


class PsiReference(Struct, frozen=True):
    """The training side of a PSI: the inner bin edges and each bin's floored share."""

    edges: Any
    shares: Any


def psi_reference(train: Sequence[float], bins: int = DEFAULT_BINS) -> PsiReference:
    """Bin edges at the training data's quantiles and the training share of each bin."""
    np = require("numpy", "drift statistics")
    if bins < 2:
        raise UsageError("drift: at least 2 bins are needed")
    base = np.asarray(_finite(train, "training values"))
    inner = np.unique(np.quantile(base, np.linspace(0, 1, bins + 1)[1:-1]))
    return PsiReference(inner, _shares(np, inner, base))


def _shares(np: Any, inner: Any, values: Any) -> Any:
    # side="left": a value equal to an edge falls in the bin below it, for both samples alike.
    counts = np.bincount(np.searchsorted(inner, values, side="left"), minlength=len(inner) + 1)
    return np.maximum(counts / len(values), PSI_FLOOR)


def psi_against(reference: PsiReference, live: Sequence[float]) -> float:
    """The PSI of ``live`` against a training side computed once (:func:`psi_reference`)."""
    np = require("numpy", "drift statistics")
    a = _shares(np, reference.edges, np.asarray(_finite(live, "live values")))
    e = reference.shares
    return float(np.sum((a - e) * np.log(a / e)))


def psi(train: Sequence[float], live: Sequence[float], bins: int = DEFAULT_BINS) -> float:
    """The population stability index of ``live`` against ``train`` (module docstring)."""
    return psi_against(psi_reference(train, bins), live)


def feature_drift(
    train: Sequence[float], live: Sequence[float], bins: int = DEFAULT_BINS
) -> FeatureDrift:
    """PSI and the two-sample KS test of one feature."""
    stats = require("scipy.stats", "drift statistics (the KS test)")
    base = _finite(train, "training values")
    now = _finite(live, "live values")
    result = stats.ks_2samp(base, now)
    return FeatureDrift(
        psi=psi(base, now, bins),
        ks_statistic=float(result.statistic),
        ks_pvalue=float(result.pvalue),
        train_count=len(base),
        live_count=len(now),
    )
