"""Training through real Celery workers: a tiny model end to end, cancel while running,
and a worker killed mid-run (no version, the job failed by the reaper)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from models_registry import services
from models_registry.models import ModelVersion, TrainingJob
from tests.models_registry.conftest import TINY_CONFIG
from tests.polling import wait_until
from tests.processes import WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def queue_job(*, user, base_model, snapshot, config=None, queue=None):
    return services.training_job_create(
        user=user, kind="reward", registered_model_name="worker-rm", base_model=base_model,
        snapshot_id=snapshot.pk, config={**TINY_CONFIG, **(config or {})}, queue=queue,
    )  # fmt: skip


def finished(job_id: int) -> TrainingJob | None:
    job = TrainingJob.objects.get(pk=job_id)
    return job if job.finished else None


def test_a_tiny_model_trains_end_to_end_on_the_worker(
    celery_worker_process, rosa, snapshot, tiny_encoder
):
    job = queue_job(user=rosa, base_model=tiny_encoder, snapshot=snapshot)
    done = wait_until(lambda: finished(job.pk), timeout=120)
    assert done.status == "succeeded", done.traceback or done.message
    assert done.worker.startswith("test-") and done.worker_pid
    version = ModelVersion.objects.get(training_job=done)
    assert version.ref == "worker-rm@1" and version.calibration["method"] == "temperature"
    results = services.predictions_create(
        version=version, pairs=[{"prompt": "p", "response_a": "yes", "response_b": "no"}]
    )
    assert 0.0 <= results[0]["p_a"] <= 1.0


def test_a_running_job_is_cancelled_at_its_next_step(
    celery_worker_process, api_as, rosa, snapshot, tiny_encoder
):
    job = queue_job(user=rosa, base_model=tiny_encoder, snapshot=snapshot, config={"epochs": 100})
    wait_until(lambda: TrainingJob.objects.filter(pk=job.pk, step__gt=0).exists(), timeout=120)
    response = api_as(rosa).post(f"/api/models/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["cancel_requested"] is True
    done = wait_until(lambda: finished(job.pk), timeout=60)
    assert done.status == "cancelled" and done.step < done.total_steps
    assert not ModelVersion.objects.exists()


def test_a_killed_worker_leaves_no_version_and_the_job_is_failed(
    worker_database_url, settings, rosa, snapshot, tiny_encoder
):
    # A worker of its own, on a queue of its own, in its own process group.
    queue = f"training-kill-{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(
        env={
            "DATABASE_URL": worker_database_url,
            "WORKER_HEARTBEAT_INTERVAL": "1",
            "OUTBOX_RELAY": "0",
            "TRAINING_JOB_HEARTBEAT_INTERVAL": "0.5",
        },
        log_path=Path(django_settings.VAR_DIR) / "test-worker-kill.log",
    ).start(queues=queue)
    try:
        job = queue_job(
            user=rosa,
            base_model=tiny_encoder,
            snapshot=snapshot,
            config={"epochs": 100},
            queue=queue,
        )
        wait_until(lambda: TrainingJob.objects.filter(pk=job.pk, step__gt=0).exists(), timeout=120)
    finally:
        worker.kill()  # the machine dies: worker and pool children
    assert TrainingJob.objects.get(pk=job.pk).status == "running"
    settings.TRAINING_JOB_HEARTBEAT_MAX_AGE = 2
    wait_until(lambda: services.training_jobs_fail_abandoned() == 1, timeout=30, interval=0.5)
    job.refresh_from_db()
    assert job.status == "failed" and "stopped while training" in job.message
    assert not ModelVersion.objects.exists()
