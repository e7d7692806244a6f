"""An archived project takes no more work: `next` and submit are refused with a 409 naming
the project, in the API and on the labelling page; a retry of an answer given before the
archive still returns it."""

import pytest

from annotation import services
from annotation.models import Annotation, Project

pytestmark = pytest.mark.django_db
BASE = "/api/annotation/projects"
ANSWER = {"preference": {"choice": "A"}}


def archive(project):
    return services.project_update(project=project, status=Project.Status.ARCHIVED)


def assert_closed(response):
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert error["fields"] == {"project": ["the project is archived; it takes no more answers"]}


def test_api_refuses_next_and_submit_in_an_archived_project(api_as, anna, project):
    locked = services.assignment_next(project=project, annotator=anna)
    archive(project)
    client = api_as(anna)
    assert_closed(client.post(f"{BASE}/{project.pk}/next/"))
    body = {"item": locked.item_id, "answer": ANSWER, "idempotency_key": "k1"}
    assert_closed(client.post(f"{BASE}/{project.pk}/submit/", body, format="json"))
    assert not Annotation.objects.exists()


def test_a_retry_of_an_earlier_answer_still_returns_it(api_as, anna, project):
    client = api_as(anna)
    item = client.post(f"{BASE}/{project.pk}/next/").json()["item"]
    body = {"item": item["id"], "answer": ANSWER, "idempotency_key": "k1"}
    first = client.post(f"{BASE}/{project.pk}/submit/", body, format="json")
    assert first.status_code == 201
    archive(project)
    retry = client.post(f"{BASE}/{project.pk}/submit/", body, format="json")
    assert retry.status_code == 200 and retry.json()["id"] == first.json()["id"]


def test_services_refuse_with_a_stale_project(anna, project):
    from annotation.errors import ProjectClosed

    locked = services.assignment_next(project=project, annotator=anna)
    archive(project)  # `project` still says "active": the services read the status afresh
    with pytest.raises(ProjectClosed):
        services.assignment_next(project=project, annotator=anna)
    with pytest.raises(ProjectClosed):
        services.annotation_submit(
            project=project, item_id=locked.item_id, annotator=anna, answer=ANSWER,
            idempotency_key="k1",
        )  # fmt: skip


def test_labelling_page_refuses_an_archived_project(client, password, anna, project):
    locked = services.assignment_next(project=project, annotator=anna)
    archive(project)
    client.login(username="anna", password=password)
    url = f"/annotation/projects/{project.pk}/label/"
    page = client.get(url)
    assert page.status_code == 409
    assert "is archived" in page.content.decode()
    posted = client.post(
        url, {"item_id": locked.item_id, "idempotency_key": "k1", "q-preference-choice": "A"}
    )
    assert posted.status_code == 409
    assert "is archived" in posted.content.decode()
    assert not Annotation.objects.exists()


def test_a_paused_project_still_has_nothing_to_hand_out(api_as, anna, project):
    services.project_update(project=project, status=Project.Status.PAUSED)
    response = api_as(anna).post(f"{BASE}/{project.pk}/next/")
    assert response.status_code == 200 and response.json()["item"] is None
