"""Who may read what inside a project: snapshots and import jobs, API and HTML.

In the blind "Helpfulness" project Anna and Ben label, Rex reviews and Rosa (researcher)
exports.  A dataset snapshot holds every annotator's answers and the gold answers, so only
those with the project's export permission (Rosa, Ada) may list or download one; an import
job is the record of someone's upload, for those who may import (Rosa, Ada).
"""

from __future__ import annotations

import io
import json

import pytest
from django.test import Client

from annotation import exports, services
from annotation.consensus import consensus_recompute
from tests.annotation.conftest import label

pytestmark = pytest.mark.django_db
API = "/api/annotation"


@pytest.fixture
def snapshot(project, anna, ben, rosa):
    """A CSV snapshot of a blind project in which Anna and Ben answered."""
    for _ in range(2):
        label(project, anna, "A")
        label(project, ben, "B")
    consensus_recompute(project=project)
    assert project.blind
    return exports.dataset_export(project=project, fmt="csv", user=rosa)


def html_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("persona", ["anna", "ben", "rex", "vic", "nobody"])
def test_only_exporters_see_or_download_snapshots(api_as, snapshot, persona, request):
    user = request.getfixturevalue(persona)
    project = snapshot.project
    api = api_as(user)
    assert api.get(f"{API}/snapshots/{snapshot.pk}/download/").status_code == 404
    assert api.get(f"{API}/snapshots/{snapshot.pk}/").status_code == 404
    assert api.get(f"{API}/snapshots/").json()["results"] == []
    assert api.get(f"{API}/snapshots/?project={project.pk}").json()["results"] == []
    # Members learn that they may not (403); others do not learn the project exists (404).
    listed = api.get(f"{API}/projects/{project.pk}/exports/").status_code
    assert listed == (403 if persona in ("anna", "ben", "rex") else 404)

    html = html_client(user)
    download = f"/annotation/projects/{project.pk}/snapshots/{snapshot.pk}/download/"
    assert html.get(download).status_code == (403 if persona in ("anna", "ben", "rex") else 404)
    dashboard = html.get(f"/annotation/projects/{project.pk}/")
    if dashboard.status_code == 200:
        page = dashboard.content.decode()
        assert download not in page and 'id="snapshots"' not in page


@pytest.mark.parametrize("persona", ["rosa", "ada"])
def test_exporters_list_and_download_snapshots(api_as, snapshot, persona, request):
    user = request.getfixturevalue(persona)
    project = snapshot.project
    api = api_as(user)
    body = b"".join(api.get(f"{API}/snapshots/{snapshot.pk}/download/").streaming_content)
    assert body.count(b"ann-") == 4  # the file holds every annotator's answers
    assert [s["id"] for s in api.get(f"{API}/snapshots/").json()["results"]] == [snapshot.pk]
    listed = api.get(f"{API}/projects/{project.pk}/exports/").json()["results"]
    assert [s["id"] for s in listed] == [snapshot.pk]
    download = f"/annotation/projects/{project.pk}/snapshots/{snapshot.pk}/download/"
    html = html_client(user)
    assert html.get(download).status_code == 200
    assert download in html.get(f"/annotation/projects/{project.pk}/").content.decode()


@pytest.mark.parametrize(
    ("persona", "sees_it"),
    [("rosa", True), ("ada", True), ("anna", False), ("rex", False), ("vic", False)],
)
def test_import_jobs_are_for_those_who_may_import(api_as, project, rosa, persona, sees_it, request):
    upload = io.BytesIO(json.dumps({"prompt": "p", "responses": ["a", "b"]}).encode())
    upload.name = "secret-batch.jsonl"
    job = services.import_job_create(project=project, user=rosa, file=upload)
    api = api_as(request.getfixturevalue(persona))
    assert api.get(f"{API}/import-jobs/{job.pk}/").status_code == (200 if sees_it else 404)
    listed = [j["id"] for j in api.get(f"{API}/import-jobs/").json()["results"]]
    assert listed == ([job.pk] if sees_it else [])


# ----------------------------------------------------------------------------------------
# Viewers: read the projects and reports shared with them, and nothing else
# ----------------------------------------------------------------------------------------


@pytest.fixture
def shared(api_as, snapshot, rosa, vic):
    """Rosa shares her project with Vic as a viewer (through the API, as a client would)."""
    project = snapshot.project
    response = api_as(rosa).post(
        f"{API}/projects/{project.pk}/members/", {"username": "vic", "role": "viewer"}
    )
    assert response.status_code == 204, response.content
    return project


def test_a_viewer_reads_the_project_and_its_reports(api_as, shared, vic):
    api = api_as(vic)
    assert api.get(f"{API}/projects/{shared.pk}/").json()["name"] == "Helpfulness"
    assert [p["id"] for p in api.get(f"{API}/projects/").json()["results"]] == [shared.pk]
    stats = api.get(f"{API}/projects/{shared.pk}/stats/").json()
    assert {a["annotator"] for a in stats["annotators"]} == {"anna", "ben"}

    page = html_client(vic).get(f"/annotation/projects/{shared.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="annotators"' in html and 'data-testid="agreement"' in html
    for control in ("Start labelling", "Review disagreements", "Import items", "Recompute now"):
        assert control not in html
    assert 'id="snapshots"' not in html


def test_a_viewer_changes_nothing_labels_nothing_and_sees_no_answers(api_as, shared, vic):
    api, base = api_as(vic), f"{API}/projects/{shared.pk}"
    snapshot = shared.snapshots.get()
    denied = {
        # gold answers and others' answers
        ("get", f"{base}/items/"): 403,
        ("get", f"{base}/consensus/"): 403,
        ("get", f"{base}/exports/"): 403,
        ("get", f"{API}/snapshots/{snapshot.pk}/download/"): 404,
        # labelling and reviewing
        ("post", f"{base}/next/"): 403,
        ("post", f"{base}/submit/"): 403,
        ("post", f"{base}/skip/"): 403,
        ("post", f"{base}/adjudicate/"): 403,
        ("post", f"{base}/recompute/"): 403,
        # writes
        ("patch", f"{base}/"): 403,
        ("post", f"{base}/members/"): 403,
        ("post", f"{base}/items/"): 403,
        ("post", f"{base}/import/"): 403,
        ("post", f"{base}/exports/"): 403,
        ("post", f"{API}/projects/"): 403,
    }
    answered = {key: getattr(api, key[0])(key[1], {}).status_code for key in denied}
    assert answered == denied

    html, page = html_client(vic), f"/annotation/projects/{shared.pk}"
    for method, path in [
        ("get", "queue/"), ("get", "label/"), ("post", "label/"), ("post", "skip/"),
        ("get", "review/"), ("post", "recompute/"), ("post", "import/"), ("post", "export/"),
        ("get", f"snapshots/{snapshot.pk}/download/"),
    ]:  # fmt: skip
        assert getattr(html, method)(f"{page}/{path}").status_code == 403, path
    assert html.post("/annotation/", {"name": "Mine"}).status_code == 403
    assert not shared.items.filter(assignments__annotator=vic).exists()


def test_a_viewer_home_page_leads_to_the_shared_dashboards(shared, vic):
    html = html_client(vic).get("/").content.decode()
    assert f'href="/annotation/projects/{shared.pk}/"' in html
    assert "No project has been shared with you yet" not in html


def test_a_viewer_without_projects_is_told_how_to_get_one(vic):
    html = html_client(vic).get("/").content.decode()
    assert "No project has been shared with you yet" in html


def test_reviewers_and_researchers_keep_their_reports_after_the_upgrade(project, rex, rosa):
    """Migration annotation.0003 gives holders of ``review_project`` the new
    ``report_project`` (as users and as groups)."""
    from importlib import import_module

    from django.apps import apps
    from django.contrib.auth.models import Group
    from guardian.shortcuts import assign_perm, get_perms, remove_perm

    migration = import_module("annotation.migrations.0003_project_report_permission")
    group = Group.objects.create(name="qa-team")
    assign_perm("annotation.review_project", group, project)
    for holder in (rex, rosa):
        remove_perm("annotation.report_project", holder, project)  # as before the upgrade
        assert "report_project" not in get_perms(holder, project)
    migration.report_grant_to_reviewers(apps, None)
    assert "report_project" in get_perms(rex, project)
    assert "report_project" in get_perms(rosa, project)
    assert "report_project" in get_perms(group, project)
