"""Model registry background tasks: thin wrappers over services, on the ``training`` queue
(``settings.CELERY_TASK_ROUTES``), so GPU hosts can take the training work."""

import os

from celery import shared_task
from django.conf import settings

from rlhf_platform.celery import worker_instance

from .services import training_job_run, training_jobs_fail_abandoned


@shared_task(
    bind=True,
    name="models_registry.training_job_run",
    time_limit=settings.TRAINING_TASK_TIME_LIMIT,
    soft_time_limit=settings.TRAINING_TASK_TIME_LIMIT - 120,
)
def training_job_run_task(self, job_id: int) -> None:
    """Train, calibrate and register (queued by ``services.training_job_create``)."""
    worker = worker_instance() or self.request.hostname or ""
    training_job_run(job_id=job_id, worker=worker, worker_pid=os.getpid())


@shared_task(name="models_registry.training_jobs_reap", time_limit=60, soft_time_limit=50)
def training_jobs_reap_task() -> int:
    """Fail training jobs whose worker died (scheduled by beat, on the default queue)."""
    return training_jobs_fail_abandoned()


@shared_task(
    bind=True,
    name="models_registry.generation_job_run",
    time_limit=settings.GENERATION_TASK_TIME_LIMIT,
    soft_time_limit=settings.GENERATION_TASK_TIME_LIMIT - 60,
)
def generation_job_run_task(self, job_id: int) -> None:
    """Generate a job's responses and items (queued by ``generation.generation_job_create``;
    on the ``generation`` queue)."""
    from .generation import generation_job_run

    generation_job_run(job_id=job_id, worker=worker_instance() or self.request.hostname or "")


@shared_task(name="models_registry.generation_jobs_reap", time_limit=60, soft_time_limit=50)
def generation_jobs_reap_task() -> dict[str, int]:
    """Requeue, fail or cancel generation jobs whose worker died (scheduled by beat, on the
    default queue)."""
    from .generation import generation_jobs_reap

    return generation_jobs_reap()


@shared_task(name="models_registry.prompt_set_generate", time_limit=3600, soft_time_limit=3540)
def prompt_set_generate_task(prompt_set_id: int) -> None:
    """Generate a prompt set from its topics (queued by ``prompts.prompt_set_generate_request``)."""
    from .prompts import prompt_set_generate

    prompt_set_generate(prompt_set_id=prompt_set_id)


@shared_task(
    name="models_registry.loop_run",
    time_limit=settings.LOOP_TASK_TIME_LIMIT,
    soft_time_limit=settings.LOOP_TASK_TIME_LIMIT - 60,
)
def loop_run_task(project_id: int, trigger: str = "schedule", user_id: int | None = None):
    """One pass of a project's RLHF loop (queued by ``loop.loop_run_request`` / beat)."""
    from django.contrib.auth import get_user_model

    from annotation.models import Project
    from rlhf_platform.errors import Conflict

    from .loop import loop_run

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    try:
        loop_run(project=project, trigger=trigger, user=user)
    except Conflict:  # killed, or a pass already runs: nothing to do
        return


@shared_task(name="models_registry.loop_schedule", time_limit=300, soft_time_limit=280)
def loop_schedule_task() -> int:
    """Queue the passes that are due, and compare finished retrainings (beat)."""
    from .loop import loop_schedule_due

    return loop_schedule_due()
