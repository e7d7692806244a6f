"""Generation through a real Celery worker (the ``generation`` queue) against the fake
provider: a job end to end with items, a cancel while it runs; the worker's log never
holds the API key."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings as django_settings

from annotation import services as annotation_services
from annotation.models import Item
from models_registry import generation, prompts
from models_registry.generation_models import GeneratedResponse, GenerationJob
from tests.models_registry.conftest import API_KEY
from tests.polling import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def finished(job_id: int) -> GenerationJob | None:
    job = GenerationJob.objects.get(pk=job_id)
    return job if job.finished else None


def test_a_job_runs_end_to_end_on_the_worker(celery_worker_process, rosa, provider,
                                             fake_provider):  # fmt: skip
    fake_provider.faults.extend(["429", "500", "malformed"])
    project = annotation_services.project_create(created_by=rosa, name="Worker pairs")
    prompt_set = prompts.prompt_set_create(
        user=rosa, name="W", prompts=[f"Worker question {i}" for i in range(10)]
    )
    job = generation.generation_job_create(
        user=rosa, prompt_set=prompt_set, provider=provider, k=3, project_id=project.pk,
        sampling={"seed": 1, "max_tokens": 32},
    )  # fmt: skip
    done = wait_until(lambda: finished(job.pk), timeout=90)
    assert done.status == "succeeded", done.message
    assert done.worker.startswith("test-") and done.succeeded == 30 and done.retries == 3
    assert GeneratedResponse.objects.filter(job=job).count() == 30
    assert Item.objects.filter(project=project).count() == done.items_created == 30
    log = Path(django_settings.VAR_DIR, "test-worker.log").read_text(errors="replace")
    assert "generation_job_run[" in log and API_KEY not in log


def test_a_running_job_is_cancelled(celery_worker_process, api_as, rosa, provider, fake_provider):
    fake_provider.latency = 0.2
    prompt_set = prompts.prompt_set_create(
        user=rosa, name="Long", prompts=[f"Long question {i}" for i in range(300)]
    )
    job = generation.generation_job_create(
        user=rosa, prompt_set=prompt_set, provider=provider, k=1, concurrency=1
    )
    wait_until(lambda: GenerationJob.objects.filter(pk=job.pk, succeeded__gt=0).exists(),
               timeout=60)  # fmt: skip
    response = api_as(rosa).post(f"/api/models/generation-jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["cancel_requested"] is True
    done = wait_until(lambda: finished(job.pk), timeout=30)
    assert done.status == "cancelled"
    assert 0 < done.succeeded < 300
    assert fake_provider.stats()["chat"] < 300
