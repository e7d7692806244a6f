"""Drift: the fast path gives Evidently 0.7's verdicts on the same frames, for each of its
default tests (small and large references, numerical and categorical, drifted or not)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring import drift, services
from monitoring.models import DriftReport

from .conftest import T0, outcomes_make

NUM = ["x", "y", "few"]
CAT = ["colour", "flag"]


def _frame(rng, n: int, *, shift: float) -> pd.DataFrame:
    return pd.DataFrame({
        "x": rng.normal(shift, 1, n),                              # K-S / Wasserstein
        "y": rng.normal(0, 1, n),                                  # never drifts
        "few": rng.choice([1.0, 2.0, 3.0], n, p=[0.5 - shift / 4, 0.3, 0.2 + shift / 4]),
        "colour": rng.choice(["red", "green", "blue"], n, p=[0.4 + shift / 4, 0.3, 0.3 - shift / 4]),
        "flag": rng.choice(["yes", "no"], n, p=[0.5 + shift / 3, 0.5 - shift / 3]),
    })  # fmt: skip


@pytest.mark.parametrize("n", [300, 1500])  # hypothesis tests; distances (reference > 1000)
@pytest.mark.parametrize("shift", [0.0, 0.8])
def test_fast_path_verdicts_equal_evidently(n, shift):
    rng = np.random.default_rng(7)
    reference, current = _frame(rng, n, shift=0.0), _frame(rng, n, shift=shift)
    fast = drift.drift_fast(reference, current, numerical=NUM, categorical=CAT)
    evidently, data, html = drift.drift_evidently(
        reference, current, numerical=NUM, categorical=CAT
    )
    assert {c: v["test"] for c, v in fast["columns"].items()} == {
        c: v["test"] for c, v in evidently["columns"].items()
    }
    for column, verdict in fast["columns"].items():
        assert verdict["drifted"] == evidently["columns"][column]["drifted"], column
        assert verdict["statistic"] == pytest.approx(evidently["columns"][column]["statistic"])
    assert fast["dataset_drift"] == evidently["dataset_drift"] == (shift > 0)
    assert fast["share_drifted"] == pytest.approx(evidently["evidently_share"])
    assert ("<html" in html.lower()) and data["metrics"]


def test_the_tests_chosen_follow_evidently_defaults():
    rng = np.random.default_rng(0)
    small = drift.drift_fast(
        _frame(rng, 200, shift=0), _frame(rng, 200, shift=0), numerical=NUM, categorical=CAT
    )
    large = drift.drift_fast(
        _frame(rng, 2000, shift=0), _frame(rng, 2000, shift=0), numerical=NUM, categorical=CAT
    )
    assert {c: v["test"] for c, v in small["columns"].items()} == {
        "x": "ks",
        "y": "ks",
        "few": "chisquare",
        "colour": "chisquare",
        "flag": "z",
    }
    assert {c: v["test"] for c, v in large["columns"].items()} == {
        "x": "wasserstein", "y": "wasserstein", "few": "jensenshannon",
        "colour": "jensenshannon", "flag": "jensenshannon"}  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["fast", "evidently"])
def test_a_drift_report_runs_on_a_versions_outcomes(
    version, method, django_capture_on_commit_callbacks
):
    rng = np.random.default_rng(1)
    outcomes_make(version=version, probs=rng.uniform(0.6, 0.9, 80), labels=[1] * 80, at=T0)
    later = T0 + timedelta(days=1)
    outcomes_make(version=version, probs=rng.uniform(0.1, 0.4, 80), labels=[1] * 80, at=later)
    with django_capture_on_commit_callbacks() as callbacks:
        report = services.drift_report_request(
            version=version,
            method=method,
            reference=(T0, later),
            current=(later, later + timedelta(days=1)),
        )
    assert len(callbacks) == 1  # queued once, after commit
    report = services.drift_report_run(report_id=report.pk)
    assert report.status == DriftReport.Status.DONE, report.error
    assert report.dataset_drift is True
    assert (
        report.result["columns"]["p_a"]["drifted"] and report.result["columns"]["error"]["drifted"]
    )
    assert bool(report.html) == (method == "evidently")
    assert services.drift_report_run(report_id=report.pk).status == DriftReport.Status.DONE
