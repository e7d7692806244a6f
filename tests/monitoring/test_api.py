"""Monitoring API: viewers and researchers read; only admins acknowledge; annotators see
nothing; acknowledging twice is a 409."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitoring import services

from .conftest import T0, outcomes_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def alert(version, rosa):
    services.alert_rule_create(
        user=rosa, name="acc", metric="accuracy", comparator="lt", threshold=0.5, window="hour",
        cooldown=timedelta(hours=1), registered_model=version.registered_model,
    )  # fmt: skip
    outcomes_make(version=version, probs=[0.9, 0.9], labels=[0, 0], at=T0)
    services.metric_points_update(version=version, times=[T0])
    return services.alert_rules_evaluate(version=version, now=T0)[0]


def test_viewers_read_metric_points_annotators_do_not(api_as, vic, anna, alert):
    rows = api_as(vic).get("/api/monitoring/metric-points/?window=hour").json()["results"]
    assert [(r["n"], r["accuracy"]) for r in rows] == [(2, 0.0)]
    assert api_as(anna).get("/api/monitoring/metric-points/").status_code == 403


def test_only_admins_acknowledge_and_only_once(api_as, ada, rosa, alert):
    url = f"/api/monitoring/alerts/{alert.pk}/acknowledge/"
    assert api_as(rosa).post(url).status_code == 403
    response = api_as(ada).post(url)
    assert response.status_code == 200 and response.json()["state"] == "acknowledged"
    again = api_as(ada).post(url)
    assert again.status_code == 409 and again.json()["error"]["fields"] == {
        "state": ["the alert is acknowledged, not firing"]
    }
