"""The loop's API and page: researchers change settings (audited) and read runs, chart
data and the error memory; viewers read; annotators get nothing; bad input is a 400
naming the field; the page's chart is served without inline script."""

from __future__ import annotations

import pytest

from annotation import services as annotation_services
from governance.models import AuditEvent
from models_registry import loop
from tests.models_registry.loop_fixtures import known_project, known_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(rosa, anna, vic):
    known_version(user=rosa)
    project = known_project(
        user=rosa, probabilities=[0.9, 0.5, 0.1], name="API", annotators=(anna,)
    )
    annotation_services.project_member_add(project=project, user=vic, role="viewer")
    return project


def url(project, tail=""):
    return f"/api/models/loop/{project.pk}/{tail}"


def test_researcher_configures_and_reads_the_loop(api_as, rosa, project):
    api = api_as(rosa)
    body = {"enabled": True, "registered_model": "known-rm", "confidence_threshold": 0.85,
            "human_feedback_ratio": 0.3}  # fmt: skip
    response = api.patch(url(project), body, format="json")
    assert response.status_code == 200, response.content
    state = response.json()
    assert state["version"] == "known-rm@1" and state["settings"]["confidence_threshold"] == 0.85
    assert AuditEvent.objects.filter(action="loop.settings_update").count() == 1
    loop.loop_run(project=project, trigger="command")
    runs = api.get(url(project, "runs/")).json()["results"]
    assert runs[0]["items_scored"] == 3 and runs[0]["trigger"] == "command"
    chart = api.get(url(project, "chart/")).json()
    assert chart["items_scored"] == [3] and len(chart["started_at"]) == 1
    assert api.get(url(project, "errors/")).json()["results"] == []
    assert api.get(url(project)).json()["summary"] == {
        "auto": 1, "check": 1, "human": 1, "errors": 0, "retrainings": 0,
    }  # fmt: skip
    # Kill switch through the API: "run now" is then refused (409).
    assert api.patch(url(project), {"kill_switch": True}, format="json").status_code == 200
    assert api.post(url(project, "run/")).status_code == 409


@pytest.mark.parametrize(
    "body, field",
    [
        ({"confidence_threshold": 0.2}, "confidence_threshold"),
        ({"human_feedback_ratio": "lots"}, "human_feedback_ratio"),
        ({"registered_model": "missing"}, "registered_model"),
        ({"uncertainty": "vibes"}, "uncertainty"),
        ({"enabled": True}, "registered_model"),
    ],
)
def test_bad_settings_are_a_400_naming_the_field(api_as, rosa, project, body, field):
    response = api_as(rosa).patch(url(project), body, format="json")
    assert response.status_code == 400
    assert field in str(response.json())


def test_viewers_read_annotators_get_nothing(api_as, anna, vic, project):
    assert api_as(vic).get(url(project, "runs/")).status_code == 200
    assert api_as(vic).patch(url(project), {"kill_switch": True}, format="json").status_code == 403
    assert api_as(anna).get(url(project)).status_code == 404


def test_the_loop_page(client, rosa, project):
    loop.loop_settings_update(project=project, user=rosa, enabled=True, registered_model="known-rm")
    loop.loop_run(project=project, trigger="command")
    client.force_login(rosa)
    page = client.get(f"/models/loop/{project.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="loop-data"' in html and "js/loop.js" in html and "vendor/plotly" in html
    assert "<script>" not in html and 'style="' not in html
    response = client.post(
        f"/models/loop/{project.pk}/",
        {"registered_model": "known-rm", "alias": "production", "confidence_threshold": "0.9",
         "human_feedback_ratio": "0.2", "uncertainty": "entropy", "schedule_minutes": "30",
         "batch_size": "64", "seed": "1", "kill_switch": "on", "enabled": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    settings = loop.loop_settings_get(project=project)
    assert settings.kill_switch and settings.uncertainty == "entropy"
    assert settings.schedule_minutes == 30


def test_suggestions_shown_only_where_the_project_allows_and_never_on_checks(client, rosa, anna):
    known_version(user=rosa)
    project = known_project(
        user=rosa, probabilities=[0.6, 0.95], name="Hints", annotators=(anna,), overlap=1
    )
    loop.loop_settings_update(
        project=project, user=rosa, enabled=True, registered_model="known-rm",
        confidence_threshold=0.9, human_feedback_ratio=1.0,
    )  # fmt: skip
    loop.loop_run(project=project, trigger="command")
    client.force_login(anna)
    page = client.get(f"/annotation/projects/{project.pk}/label/").content.decode()
    assert "p=0.6000" in page and 'data-testid="suggestion"' not in page  # not allowed yet
    annotation_services.project_update(project=project, show_suggestions=True)
    page = client.get(f"/annotation/projects/{project.pk}/label/").content.decode()
    assert 'data-testid="suggestion"' in page and "response A is better" in page
    # The uncertain item answered, the next is the check item: blind.
    item_id = int(page.split('name="item_id" value="')[1].split('"')[0])
    key = page.split('name="idempotency_key" value="')[1].split('"')[0]
    client.post(
        f"/annotation/projects/{project.pk}/label/",
        {"item_id": item_id, "idempotency_key": key, "q-preference-choice": "A"},
    )
    page = client.get(f"/annotation/projects/{project.pk}/label/").content.decode()
    assert "p=0.9500" in page and 'data-testid="suggestion"' not in page
