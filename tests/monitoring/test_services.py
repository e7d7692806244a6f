"""Calibration watch: outcomes from predictions meeting consensus, metric points equal to
scikit-learn's and hand-computed values, per window."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss

from annotation import services as annotation_services
from annotation.models import Item
from monitoring import services
from monitoring.models import MetricPoint, Outcome, Window
from tests.models_registry.conftest import items_label

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


def _predictions_naming(*, version, external_ids, p_a: float = 0.3, at=T0) -> list:
    """One prediction per external id of the snapshot's project, oldest first (ids starting
    "never" name no item: never labelled; the demo items p0…p5 are labelled "A")."""
    project_id = version.snapshot.project_id
    return [
        prediction_make(version=version, p_a=p_a, at=at, item_ref=f"{project_id}:{external_id}")
        for external_id in external_ids
    ]


def _label_later(*, project, annotator, external_ids) -> None:
    """Items added after their predictions, then labelled "B" by the annotator."""
    annotation_services.items_create_bulk(
        project=project,
        rows=[
            {"external_id": e, "prompt": f"{e}?", "responses": ["yes", "no"]} for e in external_ids
        ],
    )
    items_label(project=project, annotator=annotator, choice="B")


NEVER = [f"never-{i}" for i in range(12)]


def test_unlabelled_predictions_do_not_hide_the_labelled_ones_behind_them(version, monkeypatch):
    """More never-labelled predictions than a batch sit first: the newer labelled ones are
    still matched, in one run, and only once."""
    monkeypatch.setattr(services, "COLLECT_BATCH", 5)
    _predictions_naming(version=version, external_ids=NEVER)
    labelled = _predictions_naming(
        version=version, external_ids=["p0", "p1", "p2"], p_a=0.9, at=T0 + timedelta(hours=1)
    )
    outcomes = services.outcomes_collect(version=version)
    assert sorted(o.prediction_id for o in outcomes) == [p.pk for p in labelled]
    assert {o.label for o in outcomes} == {1}
    for _ in range(3):
        assert services.outcomes_collect(version=version) == []
    assert Outcome.objects.filter(version=version).count() == 3
    assert MetricPoint.objects.get(version=version, window=Window.DAY).n == 3


def test_a_run_looks_at_a_bounded_number_of_predictions(version, monkeypatch):
    """Two batches of five per run: each run carries on where the last one stopped, and the
    labelled predictions (13th to 15th) are reached in the third run, once."""
    monkeypatch.setattr(services, "COLLECT_BATCH", 5)
    monkeypatch.setattr(services, "COLLECT_BATCHES_PER_RUN", 2)
    _predictions_naming(version=version, external_ids=NEVER)
    labelled = _predictions_naming(version=version, external_ids=["p0", "p1", "p2"], p_a=0.9)
    found = [services.outcomes_collect(version=version) for _ in range(3)]
    assert [len(f) for f in found] == [0, 0, 3]
    assert sorted(o.prediction_id for o in found[2]) == [p.pk for p in labelled]
    for _ in range(6):  # round and round the never-labelled ones: nothing twice
        assert services.outcomes_collect(version=version) == []
    assert Outcome.objects.filter(version=version).count() == 3


def test_a_prediction_labelled_later_is_matched_when_the_rotation_comes_round(
    version, anna, monkeypatch
):
    """The 9th of 12 unmatched predictions is labelled after every one was looked at: with
    one batch of five a run left for the older ones, a few runs later it is matched."""
    monkeypatch.setattr(services, "COLLECT_BATCH", 5)
    monkeypatch.setattr(services, "COLLECT_BATCHES_PER_RUN", 2)
    predictions = _predictions_naming(
        version=version, external_ids=[*NEVER[:8], "late", *NEVER[8:11]]
    )
    for _ in range(3):
        assert services.outcomes_collect(version=version) == []
    _label_later(project=version.snapshot.project, annotator=anna, external_ids=["late"])

    found = []
    for _ in range(4):  # 12 older unmatched predictions, 5 a run, and one turn around
        found += services.outcomes_collect(version=version)
    assert [(o.prediction_id, o.label) for o in found] == [(predictions[8].pk, 0)]
    for _ in range(6):
        assert services.outcomes_collect(version=version) == []
    assert Outcome.objects.filter(version=version).count() == 1


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
