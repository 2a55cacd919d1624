"""Drift statistics: PSI over training-quantile bins and the two-sample KS test."""

from __future__ import annotations

import math
import random

import pytest

from mlspec_attest.errors import UsageError
from mlspec_attest.evidence.drift import PSI_FLOOR, feature_drift, psi


def test_psi_by_hand() -> None:
    train = [float(i) for i in range(100)]  # 2 bins: below/above the median 49.5
    live = [float(v) for v in range(50, 100)]  # all in the upper bin
    expected = (PSI_FLOOR - 0.5) * math.log(PSI_FLOOR / 0.5) + (1 - 0.5) * math.log(1 / 0.5)
    assert psi(train, live, bins=2) == pytest.approx(expected, rel=1e-12)
    assert psi(train, train, bins=2) == 0.0


def test_same_distribution_is_stable_and_a_shift_is_not() -> None:
    rng = random.Random(7)
    train = [rng.gauss(0, 1) for _ in range(5000)]
    same = [rng.gauss(0, 1) for _ in range(1000)]
    shifted = [rng.gauss(0.5, 1) for _ in range(1000)]
    stable = feature_drift(train, same)
    moved = feature_drift(train, shifted)
    assert stable.psi < 0.05 and stable.ks_pvalue > 0.01
    assert moved.psi > 0.1 and moved.ks_pvalue < 1e-6
    assert moved.ks_statistic > stable.ks_statistic
    assert (moved.train_count, moved.live_count) == (5000, 1000)
    assert set(moved.metrics()) == {"psi", "ks_statistic", "ks_pvalue"}


def test_a_categorical_feature_merges_repeated_edges() -> None:
    train = [1.0] * 60 + [2.0] * 40
    assert psi(train, [1.0] * 60 + [2.0] * 40) == pytest.approx(0.0, abs=1e-12)
    flipped = psi(train, [1.0] * 40 + [2.0] * 60)
    by_hand = (0.4 - 0.6) * math.log(0.4 / 0.6) + (0.6 - 0.4) * math.log(0.6 / 0.4)
    assert flipped == pytest.approx(by_hand, rel=1e-12)


@pytest.mark.parametrize(
    ("train", "live", "message"),
    [
        ([], [1.0], "training values: no values"),
        ([1.0], [], "live values: no values"),
        ([1.0, math.nan], [1.0], "finite"),
        ([1.0], [math.inf], "finite"),
    ],
)
def test_bad_values_are_refused(train: list[float], live: list[float], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        feature_drift(train, live)


def test_at_least_two_bins() -> None:
    with pytest.raises(UsageError, match="2 bins"):
        psi([1.0, 2.0], [1.0], bins=1)
