"""Real workers against a private Redis that is stopped, and workers that are killed or
stopped mid-import.  Each test starts its own worker process(es) (``start_worker``)."""

import subprocess

import pytest
from django.core.files.storage import default_storage

from annotation import services
from annotation.models import ImportJob, Item
from governance.models import OutboxMessage
from tests.annotation.conftest import pairs
from tests.annotation.test_import_jobs import _jsonl
from tests.polling import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

BIG = 100_000  # rows: an import that runs for a few seconds, long enough to be interrupted


def _status(job) -> str:
    return ImportJob.objects.values_list("status", flat=True).get(pk=job.pk)


def test_a_worker_lives_through_a_redis_outage_and_queued_work_resumes(
    start_worker, broker_on_own_redis, rosa
):
    from rlhf_platform.celery import app

    redis_server = broker_on_own_redis
    worker = start_worker()
    project = services.project_create(created_by=rosa, name="Outage")
    # A countdown task the worker holds, unacknowledged, through the outage: with Celery
    # 5.7 and Redis, losing the connection then was an "Unrecoverable error".
    app.send_task("governance.system_probe", args=["held"], countdown=60)
    wait_until(lambda: "governance.system_probe" in worker.log(), timeout=20)

    redis_server.stop()
    job = services.import_job_create(
        project=project, user=rosa, file=_jsonl(pairs(20, prefix="during"))
    )
    wait_until(lambda: "Connection to broker lost" in worker.log(), timeout=20)
    assert _status(job) == "queued"
    redis_server.start()

    wait_until(lambda: _status(job) == "succeeded", timeout=60)
    assert worker.alive(), worker.log()[-3000:]
    assert "Unrecoverable error" not in worker.log()
    assert Item.objects.filter(project=project).count() == 20

    # The same message delivered again (a relay that died before marking it sent: the row
    # is pending again, and the worker's relay sends it a second time) imports nothing.
    row = OutboxMessage.objects.get(subject_type="annotation.importjob", subject_id=str(job.pk))
    OutboxMessage.objects.filter(pk=row.pk).update(sent_at=None)
    wait_until(lambda: worker.log().count(f"[{row.message_id}] succeeded") >= 2, timeout=60)
    job.refresh_from_db()
    assert (job.status, job.created, job.attempts) == ("succeeded", 20, 1)
    assert Item.objects.filter(project=project).count() == 20


def test_a_job_whose_worker_was_killed_is_requeued_finished_and_its_upload_deleted(
    start_worker, broker_on_own_redis, settings, rosa
):
    settings.WORKER_HEARTBEAT_MAX_AGE = 3
    first = start_worker()
    project = services.project_create(created_by=rosa, name="Killed")
    job = services.import_job_create(project=project, user=rosa, file=_jsonl(pairs(BIG)))
    upload = job.file.name
    wait_until(lambda: _status(job) == "running", timeout=30)
    first.kill()
    job.refresh_from_db()
    assert job.status == "running" and job.worker.startswith("w-")
    assert not Item.objects.filter(project=project).exists()  # the import rolled back

    start_worker()
    # What beat's reaper does every WORKER_REAP_INTERVAL seconds: once the killed
    # instance's heartbeat is older than WORKER_HEARTBEAT_MAX_AGE, its job runs again.
    wait_until(lambda: services.import_jobs_reap()["requeued"] == 1, timeout=30, interval=0.5)
    wait_until(lambda: _status(job) in ("succeeded", "failed"), timeout=120)
    job.refresh_from_db()
    assert (job.status, job.created, job.attempts) == ("succeeded", BIG, 2), job.message
    assert Item.objects.filter(project=project).count() == BIG
    assert not job.file and not default_storage.exists(upload)


def test_sigterm_stops_a_busy_worker_cleanly_within_10_seconds(
    start_worker, broker_on_own_redis, rosa
):
    worker = start_worker()
    project = services.project_create(created_by=rosa, name="Stopped")
    job = services.import_job_create(project=project, user=rosa, file=_jsonl(pairs(BIG)))
    wait_until(lambda: _status(job) == "running", timeout=30)
    worker.proc.terminate()
    try:
        exit_code = worker.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 10 s after SIGTERM:\n{worker.log()[-3000:]}")
    assert exit_code == 0, worker.log()[-3000:]
    problems = [line for line in worker.log().splitlines() if "ERROR" in line or "CRITICAL" in line]
    assert problems == []
