"""Control charts, model evolution and the preference timeline through the API and the
pages: limits from the baseline, an SPC alert rule firing on an out-of-control accuracy
point, who may read what, and 400s naming the bad filter."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from annotation import services as annotation_services
from monitoring import preferences, services
from monitoring.models import Alert

from .votes import Voter, history_make, outcomes_day_make

pytestmark = pytest.mark.django_db

#: Correct answers out of 10 per day: ten baseline days, then a collapse.
CORRECT = [8, 7, 9, 8, 8, 7, 9, 8, 8, 8, 2]


@pytest.fixture
def watched(version):
    for day, correct in enumerate(CORRECT):
        outcomes_day_make(version=version, day=day, correct=correct)
    return version


def test_the_accuracy_chart_has_the_baselines_limits_and_flags_the_collapse(api_as, vic, watched):
    url = f"/api/monitoring/control-charts/accuracy/?version={watched.pk}&window=day"
    body = api_as(vic).get(url).json()
    base = np.array(CORRECT[:10]) / 10
    assert body["baseline"] == 10 and body["rules"] == [1]
    assert body["center"] == pytest.approx(base.mean())
    assert body["points"][0]["ucl"] == pytest.approx(base.mean() + 3 * base.std(ddof=1))
    assert [p["signals"] for p in body["points"]] == [[]] * 10 + [[1]]
    assert body["out_of_control"] is True
    we = api_as(vic).get(url + "&rules=we&baseline=5").json()
    assert we["rules"] == [1, 2, 3, 4] and we["baseline"] == 5


def test_bad_chart_filters_answer_400_naming_the_field(api_as, vic, anna, watched):
    client = api_as(vic)
    cases = {
        f"version={watched.pk}&rules=9": "rules",
        f"version={watched.pk}&baseline=1": "baseline",
        f"version={watched.pk}&window=month": "window",
        "version=999999": "version",
        "": "version",
    }
    for query, field in cases.items():
        response = client.get(f"/api/monitoring/control-charts/accuracy/?{query}")
        assert response.status_code == 400, query
        assert field in response.json()["error"]["fields"], query
    assert (
        api_as(anna)
        .get(f"/api/monitoring/control-charts/accuracy/?version={watched.pk}")
        .status_code
        == 403
    )


def test_an_spc_alert_rule_fires_when_accuracy_leaves_control(version, rosa):
    services.alert_rule_create(
        user=rosa, name="accuracy out of control", metric="accuracy_spc", comparator="gte",
        threshold=1, window="day", cooldown=timedelta(hours=1),
        registered_model=version.registered_model,
    )  # fmt: skip
    for day, correct in enumerate(CORRECT[:-1]):
        outcomes_day_make(version=version, day=day, correct=correct)
    assert services.alert_rules_evaluate(version=version) == []  # in control
    outcomes_day_make(version=version, day=10, correct=CORRECT[-1])
    fired = services.alert_rules_evaluate(version=version)
    assert [(a.rule.metric, a.value) for a in fired] == [("accuracy_spc", 1.0)]
    assert Alert.objects.filter(state="firing").count() == 1


def test_spc_rules_cannot_be_scoped_to_a_project(version, rosa):
    with pytest.raises(ValidationError) as error:
        services.alert_rule_create(
            user=rosa, name="x", metric="accuracy_we", comparator="gte", threshold=1,
            window="day", cooldown=timedelta(hours=1), registered_model=version.registered_model,
            scope_project=version.snapshot.project,
        )  # fmt: skip
    assert "scope_project" in error.value.message_dict


def test_model_evolution_compares_versions_with_their_training_data(api_as, vic, watched):
    body = (
        api_as(vic)
        .get(f"/api/monitoring/model-evolution/?model={watched.registered_model.name}&window=day")
        .json()
    )
    (row,) = body["versions"]
    assert row["ref"] == watched.ref and row["aliases"] == ["production"]
    assert row["training"]["snapshot"] == watched.snapshot_id
    assert row["training"]["rows"] == watched.snapshot.row_count
    assert row["production"]["outcomes"] == 10 * len(CORRECT)
    assert row["production"]["accuracy"] == pytest.approx(sum(CORRECT) / (10 * len(CORRECT)))
    assert [p["accuracy"] for p in row["trajectory"]] == pytest.approx([c / 10 for c in CORRECT])
    missing = api_as(vic).get("/api/monitoring/model-evolution/?model=nope")
    assert missing.status_code == 400 and "model" in missing.json()["error"]["fields"]


@pytest.fixture
def voted(rosa, vic):
    project, users = history_make(
        researcher=rosa, voters=[Voter("mo"), Voter("ned", day=6, accuracy_after=0.4)],
        days=9, items_per_day=15, seed=11,
    )  # fmt: skip
    annotation_services.project_member_add(project=project, user=vic, role="viewer")
    preferences.preference_points_refresh(project_id=project.pk)
    return project, users


def test_the_preference_charts_are_read_by_the_projects_readers_only(api_as, vic, ben, voted):
    project, users = voted
    timeline = api_as(vic).get(f"/api/monitoring/preference-timeline/?project={project.pk}").json()
    assert timeline["labels"] == ["A", "tie", "B"] and len(timeline["points"]) == 9
    alpha = api_as(vic).get(
        f"/api/monitoring/control-charts/agreement/?project={project.pk}&baseline=5"
    )
    assert alpha.status_code == 200 and alpha.json()["metric"] == "alpha"
    chart = (
        api_as(vic)
        .get(
            f"/api/monitoring/control-charts/annotator/?project={project.pk}"
            f"&annotator={users['ned'].pk}&metric=agreement"
        )
        .json()
    )
    assert chart["out_of_control"] and chart["points"][-1]["signals"] == [1]
    drift = api_as(vic).get(f"/api/monitoring/annotator-drift/?project={project.pk}&drifting=true")
    assert [r["annotator"] for r in drift.json()["results"]] == [users["ned"].pk]
    # ben is no member: the project looks like one without points, and lists are empty.
    refused = api_as(ben).get(f"/api/monitoring/preference-timeline/?project={project.pk}")
    assert refused.status_code == 400 and "project" in refused.json()["error"]["fields"]
    assert api_as(ben).get("/api/monitoring/annotator-drift/").json()["results"] == []


def test_the_pages_render_their_charts_and_refuse_bad_filters(client, vic, watched, voted):
    project, users = voted
    client.force_login(vic)
    control = client.get("/monitoring/control/?we=1")
    assert control.status_code == 200
    assert (
        b"control-charts/accuracy/?version=" in control.content and b"rules=we" in control.content
    )
    assert f"control-charts/agreement/?project={project.pk}".encode() in control.content
    evolution = client.get("/monitoring/evolution/")
    assert evolution.status_code == 200 and watched.ref.encode() in evolution.content
    page = client.get(f"/monitoring/preferences/?project={project.pk}&annotator={users['ned'].pk}")
    assert page.status_code == 200
    assert b'data-drift="ned-agreement"' in page.content and b"drifting down" in page.content
    assert b"control-charts/annotator/" in page.content
    for url, field in (
        ("/monitoring/control/?version=x", b"version"),
        ("/monitoring/evolution/?model=nope", b"model"),
        ("/monitoring/preferences/?project=999999", b"project"),
        ("/monitoring/preferences/?window=year", b"window"),
    ):
        response = client.get(url)
        assert response.status_code == 400 and field in response.content, url
