"""Calibration watch: outcomes from predictions meeting consensus, metric points equal to
scikit-learn's and hand-computed values, per window."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss

from annotation.models import Item
from monitoring import services
from monitoring.models import MetricPoint, Outcome, Window

from .conftest import T0, outcomes_make, prediction_make

pytestmark = pytest.mark.django_db


def test_predictions_meet_the_consensus_once(version):
    """Items labelled "A" by Anna give label 1; an unlabelled ref waits; nothing twice."""
    items = list(Item.objects.filter(project=version.snapshot.project).order_by("pk"))
    for index, item in enumerate(items):
        p = 0.9 if index % 2 else 0.3
        prediction_make(
            version=version, p_a=p, at=T0, item_ref=f"{item.project_id}:{item.external_id}"
        )
    prediction_make(version=version, p_a=0.8, at=T0, item_ref=f"{items[0].project_id}:nope")
    outcomes = services.outcomes_collect(version=version)
    assert len(outcomes) == len(items)
    assert {o.label for o in outcomes} == {1}
    assert services.outcomes_collect(version=version) == []
    assert Outcome.objects.filter(version=version).count() == len(items)
    day = MetricPoint.objects.get(version=version, window=Window.DAY)
    assert day.n == len(items)
    assert day.accuracy == pytest.approx(np.mean([o.p_a > 0.5 for o in outcomes]))


def test_metric_points_equal_scikit_learn_and_hand_computed_values(version):
    probs = np.array([0.95, 0.85, 0.75, 0.65, 0.55, 0.45, 0.35, 0.25, 0.15, 0.05])
    labels = np.array([1, 1, 0, 1, 0, 1, 0, 0, 0, 0])
    outcomes_make(version=version, probs=probs, labels=labels, at=T0)
    services.metric_points_update(version=version, times=[T0])
    point = MetricPoint.objects.get(version=version, window=Window.HOUR)
    assert point.n == 10
    assert point.brier == pytest.approx(brier_score_loss(labels, probs))
    assert point.nll == pytest.approx(log_loss(labels, probs))
    assert point.accuracy == pytest.approx(accuracy_score(labels, probs > 0.5))
    # One prediction per equal-width bin: ECE is the mean |y − p|, MCE its maximum.
    gaps = np.abs(labels - probs)
    assert point.ece == pytest.approx(gaps.mean())
    assert point.mce == pytest.approx(gaps.max())
    assert point.reliability["counts"] == [1] * 10


def test_windows_bucket_by_hour_day_and_week(version):
    outcomes_make(version=version, probs=[0.9], labels=[1], at=T0)
    outcomes_make(version=version, probs=[0.9], labels=[0], at=T0 + timedelta(hours=1))
    outcomes_make(version=version, probs=[0.2], labels=[0], at=T0 + timedelta(days=1))
    times = [T0, T0 + timedelta(hours=1), T0 + timedelta(days=1)]
    services.metric_points_update(version=version, times=times)
    n = {w: list(MetricPoint.objects.filter(version=version, window=w).values_list("n", flat=True))
         for w in Window.values}  # fmt: skip
    assert n == {"hour": [1, 1, 1], "day": [2, 1], "week": [3]}
    week = MetricPoint.objects.get(version=version, window=Window.WEEK)
    assert week.start == T0.replace(hour=0)  # Monday 00:00 UTC
    assert week.accuracy == pytest.approx(2 / 3)
