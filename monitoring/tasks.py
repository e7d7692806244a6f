"""Monitoring background tasks: thin wrappers over services, on the ``monitoring`` queue
(``settings.CELERY_TASK_ROUTES``)."""

from celery import shared_task

from models_registry import selectors as registry_selectors

from . import retraining, services, zones


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


@shared_task(name="monitoring.outcomes_collect_version", time_limit=300, soft_time_limit=270)
def outcomes_collect_version_task(version_id: int) -> int:
    """Collect one version's new outcomes (queued when its predictions are stored)."""
    version = registry_selectors.version_resolve(ref=str(version_id))
    return len(services.outcomes_collect(version=version)) if version else 0


@shared_task(name="monitoring.error_zones_run", time_limit=1800, soft_time_limit=1740)
def error_zones_run_task(run_id: int) -> None:
    """Run one error-zone search (queued by ``zones.error_zones_request``)."""
    zones.error_zones_run(run_id=run_id)


@shared_task(name="monitoring.error_zones_schedule", time_limit=120, soft_time_limit=100)
def error_zones_schedule_task() -> int:
    """Beat: a daily error-zone search per version with recent outcomes."""
    return len(zones.error_zones_schedule())


@shared_task(name="monitoring.alert_retraining_start", time_limit=600, soft_time_limit=570)
def alert_retraining_start_task(alert_id: int) -> None:
    """Start the one retraining job of a retraining rule's alert (idempotent)."""
    retraining.alert_retraining_start(alert_id=alert_id)


@shared_task(name="monitoring.preference_points_refresh", time_limit=600, soft_time_limit=560)
def preference_points_refresh_task() -> list[int]:
    """Beat: re-aggregate the preference and annotator points (and annotator drift) of
    every project whose consensus was recomputed since.  Returns the projects done."""
    from . import preferences

    return preferences.preference_points_refresh_due()
