"""Background imports: stored upload, run by a worker, same all-or-nothing rules."""

import io
import json

import pytest

from annotation import services
from annotation.models import ImportJob, Item
from tests.annotation.conftest import pairs
from tests.polling import wait_until

BASE = "/api/annotation/projects"


def _jsonl(rows) -> io.BytesIO:
    upload = io.BytesIO(("\n".join(json.dumps(r) for r in rows) + "\n").encode())
    upload.name = "items.jsonl"
    return upload


@pytest.mark.django_db
def test_a_job_imports_and_a_rerun_does_nothing(project, rosa):
    job = services.import_job_create(project=project, user=rosa, file=_jsonl(pairs(4, prefix="bg")))
    assert job.status == "queued" and job.file.name
    done = services.import_job_run(job_id=job.pk)
    assert (done.status, done.rows, done.created) == ("succeeded", 4, 4)
    assert not done.file  # the upload is gone once read
    assert Item.objects.filter(project=project, external_id__startswith="bg-").count() == 4
    # A redelivered task finds the job already claimed.
    assert services.import_job_run(job_id=job.pk).status == "succeeded"
    assert Item.objects.filter(project=project, external_id__startswith="bg-").count() == 4


@pytest.mark.django_db
def test_a_bad_file_fails_the_job_with_line_numbers_and_imports_nothing(project, rosa):
    rows = [*pairs(2, prefix="bad"), {"prompt": "", "responses": ["a", "b"]}]
    job = services.import_job_create(project=project, user=rosa, file=_jsonl(rows))
    done = services.import_job_run(job_id=job.pk)
    assert done.status == "failed" and done.errors[0]["line"] == 3
    assert not Item.objects.filter(project=project, external_id__startswith="bad-").exists()


@pytest.mark.django_db
def test_api_background_import_answers_202_and_the_job_is_readable(api_as, project, rosa, vic):
    response = api_as(rosa).post(
        f"{BASE}/{project.pk}/import/", {"file": _jsonl(pairs(2, prefix="api")), "background": True},
        format="multipart",
    )  # fmt: skip
    assert response.status_code == 202 and response.json()["status"] == "queued"
    job_url = f"/api/annotation/import-jobs/{response.json()['id']}/"
    assert api_as(rosa).get(job_url).json()["original_name"] == "items.jsonl"
    assert api_as(vic).get(job_url).status_code == 404  # not a member of the project


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_the_import(celery_worker_process, rosa):
    project = services.project_create(created_by=rosa, name="Background")
    job = services.import_job_create(project=project, user=rosa, file=_jsonl(pairs(50, prefix="w")))
    wait_until(
        lambda: ImportJob.objects.get(pk=job.pk).status in ("succeeded", "failed"), timeout=60
    )
    job.refresh_from_db()
    assert (job.status, job.created) == ("succeeded", 50), job.message
    assert Item.objects.filter(project=project).count() == 50


@pytest.mark.django_db
def test_dashboard_queues_a_background_import_and_lists_it(client, password, project, rosa):
    client.login(username="rosa", password=password)
    response = client.post(
        f"/annotation/projects/{project.pk}/import/",
        {"file": _jsonl(pairs(3, prefix="ui")), "format": "jsonl", "background": "on"},
    )
    assert response.status_code == 302
    job = ImportJob.objects.get(project=project)
    services.import_job_run(job_id=job.pk)
    page = client.get(f"/annotation/projects/{project.pk}/").content.decode()
    assert 'data-testid="import-jobs"' in page and "3 new of 3 rows" in page


@pytest.mark.django_db
def test_jobs_whose_worker_died_are_failed_by_the_reaper(project, rosa):
    from datetime import timedelta

    from django.utils import timezone

    from annotation.tasks import import_jobs_reap_task

    job = services.import_job_create(project=project, user=rosa, file=_jsonl(pairs(1, prefix="z")))
    fresh = services.import_job_create(
        project=project, user=rosa, file=_jsonl(pairs(1, prefix="y"))
    )
    ImportJob.objects.filter(pk=job.pk).update(
        status="running", started_at=timezone.now() - timedelta(hours=3)
    )
    ImportJob.objects.filter(pk=fresh.pk).update(status="running", started_at=timezone.now())
    assert import_jobs_reap_task() == {"requeued": 0, "failed": 1}
    job.refresh_from_db()
    fresh.refresh_from_db()
    assert job.status == "failed" and "stopped; nothing was imported" in job.message
    assert not job.file  # the upload is deleted with the failed job
    assert fresh.status == "running"
