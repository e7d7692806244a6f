"""Annotation's audit actions that are webhook events (registered in AnnotationConfig.ready)."""

from __future__ import annotations

from governance.webhooks import webhook_event_register, webhook_project_namer_register


def _after(event) -> dict:
    return event.after if isinstance(event.after, dict) else {}


def _project_name(project_id: int) -> str | None:
    from .models import Project

    return Project.objects.filter(pk=project_id).values_list("name", flat=True).first()


def _project_completed(event) -> dict:
    after = _after(event)
    return {
        "project": int(event.object_id),
        "name": _project_name(int(event.object_id)),
        "items": after.get("items"),
        "overlap": after.get("overlap"),
    }


def _snapshot_created(event) -> dict:
    after = _after(event)
    return {
        "snapshot": int(event.object_id),
        "format": after.get("format"),
        "rows": after.get("rows"),
        "sha256": after.get("sha256"),
    }


def _import_job(event) -> dict:
    # Counts only: a failed import's reasons may quote the rows' text.
    after = _after(event)
    return {
        "kind": "import",
        "job": int(event.object_id),
        "status": after.get("status"),
        "rows": after.get("rows"),
        "created": after.get("created"),
        "errors": after.get("errors"),
    }


def webhook_events_register() -> None:
    """Map annotation's audit actions to webhook event types."""
    webhook_project_namer_register(_project_name)
    webhook_event_register(
        action="project.complete",
        event_type="annotation.project_completed",
        project=lambda event: int(event.object_id),
        data=_project_completed,
    )
    webhook_event_register(
        action="dataset.export",
        event_type="dataset.snapshot_created",
        project=lambda event: _after(event).get("project"),
        data=_snapshot_created,
    )
    for action, event_type in (
        ("items.import_finished", "job.finished"),
        ("items.import_failed", "job.failed"),
    ):
        webhook_event_register(
            action=action,
            event_type=event_type,
            project=lambda event: _after(event).get("project"),
            data=_import_job,
        )
