"""The reaper of generation jobs whose worker died (SIGKILL, OOM, a lost machine): such a job
is queued again once (its rerun asks only for what is missing), failed after
``GENERATION_JOB_MAX_RUNS`` runs, cancelled if a cancel was asked; jobs of live workers and
finished jobs are left alone.  Dead and live workers are heartbeat rows, as a worker
writes them; a job "killed mid-run" is the row its worker left behind."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotation import services as annotation_services
from annotation.models import Item
from governance.models import AuditEvent, OutboxMessage, WorkerHeartbeat
from models_registry import generation, prompts
from models_registry.generation_models import GeneratedResponse, GenerationJob
from models_registry.tasks import generation_jobs_reap_task

pytestmark = pytest.mark.django_db

DEAD, LIVE = "w@gen:1:dead", "w@gen:2:live"


@pytest.fixture(autouse=True)
def workers(settings):
    """A worker that stopped sending heartbeats two minutes ago, and one alive now."""
    settings.WORKER_HEARTBEAT_MAX_AGE = 45
    now = timezone.now()
    for instance, seen in ((DEAD, now - timedelta(minutes=2)), (LIVE, now)):
        WorkerHeartbeat.objects.create(
            instance=instance, hostname=instance.split(":")[0], last_seen=seen, started_at=seen
        )


@pytest.fixture
def job(rosa, provider):
    prompt_set = prompts.prompt_set_create(
        user=rosa, name="Questions", prompts=[f"Question number {i}?" for i in range(6)]
    )
    job = generation.generation_job_create(user=rosa, prompt_set=prompt_set, provider=provider)
    OutboxMessage.objects.filter(subject_id=str(job.pk)).update(sent_at=timezone.now())
    return job


def left_running(job, *, worker: str = DEAD, runs: int = 1, quiet_seconds: float = 60, **fields):
    """The job as a worker leaves it when it dies: running, its last progress
    ``quiet_seconds`` ago."""
    beat = timezone.now() - timedelta(seconds=quiet_seconds)
    GenerationJob.objects.filter(pk=job.pk).update(
        status="running", worker=worker, runs=runs, started_at=beat, heartbeat_at=beat, **fields
    )
    job.refresh_from_db()
    return job


def unsent(job) -> list[str]:
    return list(
        OutboxMessage.objects.filter(subject_id=str(job.pk), sent_at=None).values_list(
            "dedupe_key", flat=True
        )
    )


def reaped(job) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(action="generation.reaped", object_id=str(job.pk)).order_by(
            "sequence"
        )
    )


def test_a_job_whose_worker_died_is_queued_again_once_and_then_finishes(job, fake_provider):
    job = left_running(job)  # 60 s without progress: past the worker's, not the job's, limit

    assert generation_jobs_reap_task() == {"requeued": 1, "failed": 0, "cancelled": 0}
    job.refresh_from_db()
    assert job.status == "queued" and DEAD in job.message and not job.finished_at
    assert unsent(job) == [f"generation-job-{job.pk}-run-1"]
    (event,) = reaped(job)
    assert event.before == {"status": "running"}
    assert event.after == {"status": "queued", "worker": DEAD, "runs": 1}
    # Queued, the job is no business of the reaper's: a second pass queues nothing more.
    assert generation.generation_jobs_reap() == {"requeued": 0, "failed": 0, "cancelled": 0}
    assert len(unsent(job)) == 1 and len(reaped(job)) == 1
    # The queued task's delivery runs it to the end.
    job = generation.generation_job_run(job_id=job.pk, worker=LIVE)
    assert job.status == "succeeded" and job.runs == 2
    assert GeneratedResponse.objects.filter(job=job, ok=True).count() == 12


def test_a_job_of_no_known_worker_is_queued_again_once_it_made_no_progress(job):
    """Its own heartbeat decides: ``STALE_SECONDS`` without progress."""
    recent = left_running(job, worker="", quiet_seconds=60)
    assert generation.generation_jobs_reap()["requeued"] == 0
    left_running(recent, worker="", quiet_seconds=generation.STALE_SECONDS + 60)
    assert generation.generation_jobs_reap()["requeued"] == 1
    job.refresh_from_db()
    assert job.status == "queued" and "an unknown worker" in job.message


def test_a_job_at_the_run_cap_fails_with_a_clear_message(job):
    job = left_running(job, runs=generation.GENERATION_JOB_MAX_RUNS, succeeded=5)

    assert generation.generation_jobs_reap() == {"requeued": 0, "failed": 1, "cancelled": 0}
    job.refresh_from_db()
    assert job.status == "failed" and job.finished_at
    assert job.message == (
        f"The worker running this job ({DEAD}) stopped, after 3 runs; 5 of 12 responses kept. "
        "Retry it to ask for the rest."
    )
    assert unsent(job) == []
    assert reaped(job)[0].after == {"status": "failed", "worker": DEAD, "runs": 3}
    # A retry by hand is still allowed.
    assert generation.generation_job_retry(job=job).status == "queued"


def test_a_job_whose_cancel_was_asked_is_cancelled_not_queued(job):
    job = left_running(job, cancel_requested=True)

    assert generation.generation_jobs_reap() == {"requeued": 0, "failed": 0, "cancelled": 1}
    job.refresh_from_db()
    assert job.status == "cancelled" and job.finished_at and "Cancelled" in job.message
    assert unsent(job) == []
    assert reaped(job)[0].after["status"] == "cancelled"


@pytest.mark.parametrize(
    "leftover",
    [
        {"worker": LIVE, "quiet_seconds": 60},  # a live worker, recent progress
        {"worker": DEAD, "quiet_seconds": 5},  # progress since its worker's last heartbeat
        {"worker": "w@gen:3:not-yet-seen", "quiet_seconds": 5},  # no heartbeat row yet
    ],
)
def test_a_job_that_makes_progress_is_left_alone(job, leftover):
    job = left_running(job, **leftover)
    assert generation.generation_jobs_reap() == {"requeued": 0, "failed": 0, "cancelled": 0}
    job.refresh_from_db()
    assert job.status == "running" and unsent(job) == [] and reaped(job) == []


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled", "stopped", "queued"])
def test_a_job_that_is_not_running_is_untouched(job, status):
    job = left_running(job, quiet_seconds=3600)
    GenerationJob.objects.filter(pk=job.pk).update(status=status, message="as it was")
    assert generation.generation_jobs_reap() == {"requeued": 0, "failed": 0, "cancelled": 0}
    job.refresh_from_db()
    assert (job.status, job.message) == (status, "as it was")
    assert unsent(job) == [] and reaped(job) == []


def test_a_job_that_finishes_while_the_reaper_looks_is_left_alone(job):
    """The worker was only slow: it finishes the job between the reaper's scan and its lock
    on the row (the job's own finish, written just before the reaper reads it again)."""
    job = left_running(job)
    finished = []

    def finish_first(execute, sql, params, many, context):
        if not finished and "models_registry_generationjob" in sql and "LIMIT 1" in sql:
            finished.append(True)
            generation._finish(job.pk, "succeeded", "12 responses, 0 errors.")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(finish_first):
        assert generation.generation_jobs_reap() == {"requeued": 0, "failed": 0, "cancelled": 0}
    job.refresh_from_db()
    assert finished and job.status == "succeeded" and job.message == "12 responses, 0 errors."
    assert unsent(job) == [] and reaped(job) == []


def test_pairing_counts_as_progress(rosa, provider, job, monkeypatch):
    """A long pairing refreshes the job's heartbeat, so the reaper never takes it for a dead
    worker's."""
    project = annotation_services.project_create(created_by=rosa, name="Pairs", overlap=1)
    job = generation.generation_job_run(job_id=job.pk, worker=LIVE)
    GenerationJob.objects.filter(pk=job.pk).update(item_project=project, pairing="all")
    job = left_running(job, worker=LIVE, quiet_seconds=3600)
    monkeypatch.setattr(generation, "ITEM_BATCH", 2)
    assert generation.generation_items_create(job=job) == 6
    job.refresh_from_db()
    assert job.heartbeat_at > timezone.now() - timedelta(minutes=10)
    assert Item.objects.filter(project=project).count() == 6


def test_the_reaper_runs_on_the_default_queue_every_minute(settings):
    from rlhf_platform.celery import app

    name = "models_registry.generation_jobs_reap"
    assert generation_jobs_reap_task.name == name and generation_jobs_reap_task.time_limit
    assert app.amqp.router.route({}, name)["queue"].name == "default"
    schedule = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == name]
    assert schedule == [{"task": name, "schedule": 60.0}]
