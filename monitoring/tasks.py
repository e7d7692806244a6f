"""Monitoring background tasks: thin wrappers over services, on the ``monitoring`` queue
(``settings.CELERY_TASK_ROUTES``)."""

from celery import shared_task

from models_registry import selectors as registry_selectors

from . import services


@shared_task(name="monitoring.outcomes_collect", time_limit=300, soft_time_limit=270)
def outcomes_collect_task() -> int:
    """Beat: match every version's new predictions with the consensus (metric points,
    detectors and alert rules follow).  Returns the number of new outcomes."""
    return sum(
        len(services.outcomes_collect(version=version))
        for version in registry_selectors.versions_with_predictions()
    )


@shared_task(name="monitoring.drift_report_run", time_limit=900, soft_time_limit=840)
def drift_report_run_task(report_id: int) -> None:
    """Run one drift report (queued by ``services.drift_report_request``)."""
    services.drift_report_run(report_id=report_id)


@shared_task(name="monitoring.drift_reports_schedule", time_limit=120, soft_time_limit=100)
def drift_reports_schedule_task() -> int:
    """Beat: a daily Evidently drift report per version with recent outcomes."""
    return len(services.drift_reports_schedule())
