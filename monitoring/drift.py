"""Data drift between a reference and a current frame: a fast path with Evidently 0.7's
default tests and thresholds (``DataDriftPreset``), and the Evidently report itself.

Evidently's defaults (``evidently.legacy.calculations.stattests.registry``), chosen per
column from the reference size and the number of distinct values in both frames:

==============  ===============================  =====================================
reference rows  numerical (> 5 values)           categorical, or numerical ≤ 5 values
==============  ===============================  =====================================
≤ 1000          K-S p-value ≤ 0.05               chi-square p < 0.05 (> 2 values),
                                                 two-proportion Z p < 0.05 (≤ 2 values)
> 1000          Wasserstein / std(ref) ≥ 0.1     Jensen–Shannon distance ≥ 0.1
==============  ===============================  =====================================

The dataset drifts when the share of drifted columns is at least ``drift_share`` (0.5).
The fast path runs the same statistics with numpy/scipy on arrays, so it is fast enough
for frequent checks; tests compare its verdicts with Evidently's on the same frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

DRIFT_SHARE = 0.5
SMALL = 1000  # reference rows up to which the hypothesis tests are used
P_VALUE_THRESHOLD = 0.05
DISTANCE_THRESHOLD = 0.1


def _counts(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Counts of each value seen in either frame (NaN left out), in the same order."""
    ref, cur = reference.value_counts(), current.value_counts()
    keys = ref.index.union(cur.index)  # counting each side once: no 2n-row concatenation
    return (
        ref.reindex(keys, fill_value=0).to_numpy(dtype=float),
        cur.reindex(keys, fill_value=0).to_numpy(dtype=float),
    )


def _distinct(reference: pd.Series, current: pd.Series, *, above: int) -> int:
    """How many distinct values both columns hold — exactly when at most ``above``; when
    the first rows alone hold more, that (smaller) count, which decides the same tests
    without hashing millions of floats."""
    head = pd.concat([reference.iloc[:1000], current.iloc[:1000]]).nunique()
    return head if head > above else pd.concat([reference, current]).nunique()


def _wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """scipy's ``wasserstein_distance`` (the area between the two empirical CDFs), with
    both sides sorted on their own and then merged: a stable sort of two sorted runs is a
    linear merge, where scipy sorts the 2n values afresh and binary-searches each."""
    u, v = np.sort(reference), np.sort(current)
    both = np.concatenate([u, v])
    order = np.argsort(both, kind="stable")
    values, from_u = both[order], order < len(u)
    # Within a run of tied values the step to the next value is 0, so only the last of
    # each run counts — and there the cumulative counts include the whole run.
    cdf_u = np.cumsum(from_u)[:-1] / len(u)
    cdf_v = np.cumsum(~from_u)[:-1] / len(v)
    return float(np.sum(np.abs(cdf_u - cdf_v) * np.diff(values)))


def _chi_square(reference: pd.Series, current: pd.Series) -> float:
    ref, cur = _counts(reference, current)
    expected = ref * (len(current) / len(reference))
    return float(stats.chisquare(cur, expected)[1])


def _z_proportions(reference: pd.Series, current: pd.Series) -> float:
    values = pd.concat([reference, current]).dropna().unique()
    if reference.nunique() == 1 and current.nunique() == 1 and len(values) == 1:
        return 1.0
    first = sorted(values)[0]
    p1 = float((reference != first).mean())
    p2 = float((current != first).mean())
    n1, n2 = len(reference), len(current)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(abs(z))))


def _jensen_shannon(reference: pd.Series, current: pd.Series, numerical: bool) -> float:
    if numerical and reference.nunique() > 20:
        combined = np.concatenate([reference.to_numpy(), current.to_numpy()])
        edges = np.histogram_bin_edges(combined, bins="sturges")
        ref = np.histogram(reference, edges)[0] / len(reference)
        cur = np.histogram(current, edges)[0] / len(current)
    else:
        ref, cur = _counts(reference, current)
        ref, cur = ref / len(reference), cur / len(current)
    return float(distance.jensenshannon(ref, cur))


def column_drift(reference: pd.Series, current: pd.Series, *, numerical: bool) -> dict[str, Any]:
    """The verdict for one column: ``{"test", "statistic", "threshold", "drifted"}``."""
    n_values = _distinct(reference, current, above=5)
    small = len(reference) <= SMALL
    if small and numerical and n_values > 5:
        p = float(stats.ks_2samp(reference, current)[1])
        return {
            "test": "ks",
            "statistic": p,
            "threshold": P_VALUE_THRESHOLD,
            "drifted": p <= P_VALUE_THRESHOLD,
        }
    if small:
        test, p = (
            ("chisquare", _chi_square(reference, current))
            if n_values > 2
            else ("z", _z_proportions(reference, current))
        )
        return {
            "test": test,
            "statistic": p,
            "threshold": P_VALUE_THRESHOLD,
            "drifted": p < P_VALUE_THRESHOLD,
        }
    if numerical and n_values > 5:
        norm = max(float(np.std(reference)), 0.001)
        value = _wasserstein(reference.to_numpy(float), current.to_numpy(float)) / norm
        return {
            "test": "wasserstein",
            "statistic": value,
            "threshold": DISTANCE_THRESHOLD,
            "drifted": value >= DISTANCE_THRESHOLD,
        }
    value = _jensen_shannon(reference, current, numerical)
    return {
        "test": "jensenshannon",
        "statistic": value,
        "threshold": DISTANCE_THRESHOLD,
        "drifted": value >= DISTANCE_THRESHOLD,
    }


def _summary(columns: dict[str, dict[str, Any]], drift_share: float) -> dict[str, Any]:
    n_drifted = sum(1 for c in columns.values() if c["drifted"])
    share = n_drifted / len(columns) if columns else 0.0
    return {
        "columns": columns,
        "n_columns": len(columns),
        "n_drifted": n_drifted,
        "share_drifted": share,
        "drift_share": drift_share,
        "dataset_drift": bool(columns) and share >= drift_share,
    }


def drift_fast(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numerical: list[str],
    categorical: list[str],
    drift_share: float = DRIFT_SHARE,
) -> dict[str, Any]:
    """Per-column verdicts and the dataset verdict, with Evidently's default rules."""
    columns = {
        name: column_drift(reference[name], current[name], numerical=name in numerical)
        for name in [*numerical, *categorical]
    }
    return _summary(columns, drift_share)


# Evidently's display names of its default tests -> (our name, drift when below?)
_EVIDENTLY_TESTS = {
    "K-S p_value": ("ks", True),
    "chi-square p_value": ("chisquare", True),
    "Z-test p_value": ("z", True),
    "Wasserstein distance (normed)": ("wasserstein", False),
    "Jensen-Shannon distance": ("jensenshannon", False),
}


def drift_evidently(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numerical: list[str],
    categorical: list[str],
    drift_share: float = DRIFT_SHARE,
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Evidently 0.7's ``DataDriftPreset`` on the same frames: (verdicts in the fast
    path's shape, the snapshot's JSON, its self-contained HTML report)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    frames = [
        Dataset.from_pandas(frame[[*numerical, *categorical]], data_definition=definition)
        for frame in (current, reference)
    ]
    # Evidently 0.7 takes the *current* data first.
    snapshot = Report([DataDriftPreset(drift_share=drift_share)]).run(frames[0], frames[1])
    data = snapshot.dict()
    columns: dict[str, dict[str, Any]] = {}
    for metric in data["metrics"]:
        config = metric["config"]
        if not config.get("type", "").endswith(":ValueDrift"):
            continue
        test, below = _EVIDENTLY_TESTS[config["method"]]
        value, threshold = float(metric["value"]), float(config["threshold"])
        # Evidently's K-S counts p == threshold as drift, its other p-value tests do not.
        drifted = (
            (value <= threshold if test == "ks" else value < threshold)
            if below
            else (value >= threshold)
        )
        columns[config["column"]] = {
            "test": test,
            "statistic": value,
            "threshold": threshold,
            "drifted": drifted,
        }
    verdict = _summary(columns, drift_share)
    counts = next(
        m for m in data["metrics"] if m["config"]["type"].endswith(":DriftedColumnsCount")
    )
    verdict["evidently_share"] = float(counts["value"]["share"])
    return verdict, data, snapshot.get_html_str(as_iframe=False)
