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
