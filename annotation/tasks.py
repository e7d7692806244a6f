"""Annotation background tasks: thin wrappers over services.

Services queue these by name through the outbox (``governance.outbox``); every task is
idempotent, because an outbox row or a Redis message may be delivered twice.
"""

from celery import shared_task

from rlhf_platform.celery import worker_instance

from .consensus import consensus_recompute
from .models import Project
from .retention import retention_apply_all
from .services import assignment_reclaim_expired, import_job_run, import_jobs_reap


@shared_task(name="annotation.consensus_recompute", time_limit=15 * 60, soft_time_limit=14 * 60)
def consensus_recompute_task(project_id: int) -> None:
    """Recompute a project's consensus and quality (queued, debounced, by submissions);
    running it twice gives the same result."""
    project = Project.objects.filter(pk=project_id).first()
    if project is not None:  # deleted since it was queued: nothing to do
        consensus_recompute(project=project)


@shared_task(name="annotation.assignment_reclaim", time_limit=120, soft_time_limit=100)
def assignment_reclaim_task() -> int:
    """Free the slots of expired locks in every project (scheduled by beat)."""
    total = 0
    while reclaimed := assignment_reclaim_expired():
        total += reclaimed
    return total


@shared_task(name="annotation.import_job_run", time_limit=2 * 60 * 60, soft_time_limit=115 * 60)
def import_job_run_task(job_id: int) -> None:
    """Import a stored upload (queued by ``services.import_job_create``); a job already
    claimed is left alone."""
    import_job_run(job_id=job_id, worker=worker_instance())


@shared_task(name="annotation.import_jobs_reap", time_limit=60, soft_time_limit=50)
def import_jobs_reap_task() -> dict[str, int]:
    """Requeue or fail import jobs whose worker vanished (scheduled by beat)."""
    return import_jobs_reap()


@shared_task(name="annotation.retention_apply", time_limit=60 * 60, soft_time_limit=55 * 60)
def retention_apply_task() -> dict[int, dict[str, int]]:
    """Apply every project's retention policy (scheduled daily by beat)."""
    return retention_apply_all()
