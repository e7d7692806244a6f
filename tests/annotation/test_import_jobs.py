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
    assert import_jobs_reap_task() == {"requeued": 0, "failed": 1, "resent": 0}
    job.refresh_from_db()
    fresh.refresh_from_db()
    assert job.status == "failed" and "stopped; nothing was imported" in job.message
    assert not job.file  # the upload is deleted with the failed job
    assert fresh.status == "running"


def _heartbeat(instance: str, *, age_seconds: float) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from governance.models import WorkerHeartbeat

    seen = timezone.now() - timedelta(seconds=age_seconds)
    WorkerHeartbeat.objects.create(
        instance=instance, hostname=instance.split(":")[0], last_seen=seen, started_at=seen
    )


@pytest.mark.django_db
def test_the_reaper_requeues_jobs_of_a_vanished_worker_and_spares_live_ones(
    project, rosa, settings
):
    from datetime import timedelta

    from django.utils import timezone

    from governance.models import OutboxMessage

    settings.WORKER_HEARTBEAT_MAX_AGE = 45
    _heartbeat("w@a:1:dead", age_seconds=120)
    _heartbeat("w@a:2:live", age_seconds=1)
    started = timezone.now() - timedelta(minutes=5)
    dead = services.import_job_create(project=project, user=rosa, file=_jsonl(pairs(1, prefix="d")))
    live = services.import_job_create(project=project, user=rosa, file=_jsonl(pairs(1, prefix="l")))
    ImportJob.objects.filter(pk=dead.pk).update(
        status="running", worker="w@a:1:dead", started_at=started, attempts=1
    )
    ImportJob.objects.filter(pk=live.pk).update(
        status="running", worker="w@a:2:live", started_at=started, attempts=1
    )

    assert services.import_jobs_reap() == {"requeued": 1, "failed": 0, "resent": 0}
    dead.refresh_from_db()
    live.refresh_from_db()
    assert (dead.status, dead.worker, dead.started_at) == ("queued", "", None)
    assert "w@a:1:dead" in dead.message and dead.file  # the upload stays for the rerun
    assert OutboxMessage.objects.filter(subject_id=str(dead.pk), sent_at__isnull=True).exists()
    assert live.status == "running"
    # Queued again, the job runs to the end (what the worker's delivery does).
    assert services.import_job_run(job_id=dead.pk, worker="w@a:2:live").status == "succeeded"


@pytest.mark.django_db
def test_a_job_whose_worker_vanished_too_often_fails_and_loses_its_upload(project, rosa):
    from datetime import timedelta

    from django.utils import timezone

    _heartbeat("w@a:1:dead", age_seconds=600)
    job = services.import_job_create(project=project, user=rosa, file=_jsonl(pairs(1, prefix="f")))
    ImportJob.objects.filter(pk=job.pk).update(
        status="running", worker="w@a:1:dead", attempts=services.IMPORT_JOB_MAX_ATTEMPTS,
        started_at=timezone.now() - timedelta(minutes=10),
    )  # fmt: skip
    assert services.import_jobs_reap()["failed"] == 1
    job.refresh_from_db()
    assert job.status == "failed" and not job.file and job.finished_at


@pytest.mark.django_db
def test_a_queued_job_whose_message_was_lost_is_sent_again(project, rosa):
    from datetime import timedelta

    from django.utils import timezone

    from governance.models import OutboxMessage

    job = services.import_job_create(project=project, user=rosa, file=_jsonl(pairs(1, prefix="q")))
    OutboxMessage.objects.filter(subject_id=str(job.pk)).update(
        sent_at=timezone.now() - timedelta(hours=1)
    )
    assert services.import_jobs_reap()["resent"] == 1
    assert OutboxMessage.objects.filter(subject_id=str(job.pk), sent_at__isnull=True).count() == 1
    assert services.import_jobs_reap()["resent"] == 0  # the new row is not sent yet
