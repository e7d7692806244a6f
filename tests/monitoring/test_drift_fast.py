"""The fast path's own statistics equal scipy's and pandas' on awkward data: ties,
unequal sizes, few distinct values hidden after the first rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from monitoring import drift


@pytest.mark.parametrize("n, m", [(500, 500), (300, 1700), (1200, 40)])
def test_wasserstein_equals_scipys(n, m):
    rng = np.random.default_rng(n + m)
    u = np.round(rng.normal(0, 1, n), 1)  # many ties, inside and across the samples
    v = np.round(rng.normal(0.3, 1.5, m), 1)
    assert drift._wasserstein(u, v) == pytest.approx(stats.wasserstein_distance(u, v), rel=1e-12)


def test_distinct_is_exact_when_few_values_and_above_the_bound_otherwise():
    few = pd.Series([1.0] * 5000 + [2.0, 3.0, 4.0])  # the other values come late
    assert drift._distinct(few, few, above=5) == 4
    many = pd.Series(np.arange(5000, dtype=float))
    assert drift._distinct(many, many, above=5) > 5
