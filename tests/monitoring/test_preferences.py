"""Preference and annotator points from the votes, and annotator drift: with seeded
histories, an annotator whose agreement drops or who starts rushing is flagged, the
stable ones are not; the preference timeline follows a change in the humans' choices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from governance.models import AuditEvent
from monitoring import charts, preferences, services
from monitoring.models import AnnotatorDrift, AnnotatorPoint, PreferencePoint, Window
from tests.monitoring.conftest import T0
from tests.monitoring.votes import Voter, history_make

pytestmark = pytest.mark.django_db

DAYS, PER_DAY = 16, 25


@pytest.fixture
def history(rosa):
    voters = [
        Voter("cara"),
        Voter("dino", accuracy=0.85, lead_ms=12000),
        Voter("eve", accuracy=0.92, lead_ms=6000),
        Voter("fay", day=10, accuracy_after=0.5),  # stops reading: agreement falls
        Voter("gus", day=11, lead_ms_after=1200),  # starts rushing
    ]
    project, users = history_make(researcher=rosa, voters=voters, days=DAYS, items_per_day=PER_DAY)
    preferences.preference_points_refresh(project_id=project.pk)
    return project, users


def _verdicts(project):
    return {
        (d.annotator.username, d.metric): d
        for d in AnnotatorDrift.objects.filter(project=project).select_related("annotator")
    }


def test_the_degrading_annotators_are_flagged_and_the_stable_ones_are_not(history):
    project, _users = history
    verdicts = _verdicts(project)
    assert len(verdicts) == 10  # 5 annotators × (agreement, speed)
    assert verdicts["fay", "agreement"].drifting
    assert verdicts["fay", "agreement"].direction == "down"
    assert verdicts["fay", "agreement"].since == (T0 + timedelta(days=10)).replace(hour=0)
    assert verdicts["gus", "speed"].drifting and verdicts["gus", "speed"].direction == "down"
    assert verdicts["gus", "speed"].latest < 2000 < 6000 < verdicts["gus", "speed"].center
    flagged = {key for key, d in verdicts.items() if d.drifting}
    assert flagged == {("fay", "agreement"), ("gus", "speed")}
    assert not any(d.signals for key, d in verdicts.items() if key[0] in ("cara", "dino", "eve"))
    # Starting to drift is audited once; a refresh that changes nothing adds no event.
    events = AuditEvent.objects.filter(action="monitoring.annotator_drift")
    assert events.count() == 2
    preferences.preference_points_refresh(project_id=project.pk)
    assert events.count() == 2


def test_annotator_points_count_the_votes_and_the_agreement(history):
    project, users = history
    day = AnnotatorPoint.objects.filter(project=project, window=Window.DAY)
    assert day.count() == 5 * DAYS
    first = day.get(annotator=users["cara"], start=T0.replace(hour=0))
    assert first.n_votes == PER_DAY and first.n_consensus_votes == PER_DAY
    assert 0.7 < first.n_agree / first.n_consensus_votes <= 1
    assert np.exp(first.log_lead_time_mean) == pytest.approx(8000, rel=0.25)
    week = AnnotatorPoint.objects.filter(
        project=project, window=Window.WEEK, annotator=users["cara"]
    )
    assert sum(p.n_votes for p in week) == DAYS * PER_DAY
    assert all(p.start.weekday() == 0 for p in week)
    chart = charts.annotator_control_chart(
        project_id=project.pk, annotator_id=users["fay"].pk, metric="agreement"
    )
    assert chart["out_of_control"] and len(chart["points"]) == DAYS


def test_week_buckets_match_the_calibration_points():
    times = np.array([datetime(2026, 3, d, 13, tzinfo=UTC).timestamp() for d in range(1, 15)])
    for window in Window.values:
        got = preferences.bucket_starts(times, window=window)
        want = [
            services.bucket_start(at=datetime.fromtimestamp(t, UTC), window=window).timestamp()
            for t in times
        ]
        assert got.tolist() == want


def test_the_preference_timeline_follows_the_humans(rosa):
    project, _ = history_make(
        researcher=rosa, voters=[Voter("hal", accuracy=1.0), Voter("ida", accuracy=1.0)],
        days=6, items_per_day=40, seed=3, share_a=0.8, share_a_after=(3, 0.2),
    )  # fmt: skip
    preferences.preference_points_refresh(project_id=project.pk)
    timeline = charts.preference_timeline(project_id=project.pk, window=Window.DAY)
    assert timeline["labels"] == ["A", "tie", "B"]
    shares_a = [p["shares"][0] for p in timeline["points"]]
    assert len(shares_a) == 6
    assert min(shares_a[:3]) > 0.6 and max(shares_a[3:]) < 0.4
    assert all(
        p["agreement"] == 1.0 and p["alpha"] == pytest.approx(1.0) for p in timeline["points"]
    )
    assert all(p["n_items"] == 40 and p["n_votes"] == 80 for p in timeline["points"])


def test_alpha_per_bucket_equals_the_krippendorff_package(rosa):
    import krippendorff

    project, _ = history_make(
        researcher=rosa, voters=[Voter("jo", accuracy=0.7), Voter("kim", accuracy=0.8), Voter("lu")],
        days=2, items_per_day=30, seed=5,
    )  # fmt: skip
    preferences.preference_points_refresh(project_id=project.pk)
    from annotation.models import Annotation

    day0 = Annotation.objects.filter(project=project, item__external_id__startswith="d0-")
    matrix = {}
    for a in day0:
        matrix.setdefault(a.annotator_id, {})[a.item_id] = a.label
    items = sorted({i for row in matrix.values() for i in row})
    data = [[row.get(i, np.nan) for i in items] for row in matrix.values()]
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    point = PreferencePoint.objects.get(
        project=project, window=Window.DAY, start=T0.replace(hour=0)
    )
    assert point.alpha == pytest.approx(expected)


def test_refresh_due_follows_consensus_recomputations(history):
    project, _ = history
    assert preferences.preference_points_refresh_due() == []  # already aggregated
    from annotation import consensus

    consensus.consensus_recompute(project=project)
    assert preferences.preference_points_refresh_due() == [project.pk]
    assert preferences.preference_points_refresh_due() == []
