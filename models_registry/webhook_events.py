"""The registry's audit actions that are webhook events (registered in its AppConfig.ready).

Models belong to no project; an event's project is the one whose snapshot trained the
version concerned.
"""

from __future__ import annotations

from governance.webhooks import webhook_event_register


def _payload(value) -> dict:
    return value if isinstance(value, dict) else {}


def _job_project(event) -> int | None:
    from .models import TrainingJob

    return (
        TrainingJob.objects.filter(pk=event.object_id)
        .values_list("snapshot__project_id", flat=True)
        .first()
    )


def _job(event) -> dict:
    from .models import TrainingJob

    job = TrainingJob.objects.filter(pk=event.object_id).select_related("registered_model").first()
    # The status only: a failure's message and traceback stay in the app.
    return {
        "kind": "training",
        "job": int(event.object_id),
        "status": _payload(event.after).get("status"),
        "model": job.registered_model.name if job else None,
        "training_kind": job.kind if job else None,
    }


def _alias_versions(event) -> tuple[int | None, int | None]:
    before, after = _payload(event.before), _payload(event.after)
    return before.get("version"), after.get("version")


def _alias_project(event) -> int | None:
    from .models import ModelVersion

    version_id = _alias_versions(event)[1] or _alias_versions(event)[0]
    if version_id is None:
        return None
    return (
        ModelVersion.objects.filter(pk=version_id)
        .values_list("snapshot__project_id", flat=True)
        .first()
    )


def _alias_moved(event) -> dict:
    from .models import ModelAlias, ModelVersion

    from_id, to_id = _alias_versions(event)
    versions = ModelVersion.objects.filter(pk__in=[from_id, to_id]).select_related(
        "registered_model"
    )
    refs = {v.pk: v.ref for v in versions}
    alias = ModelAlias.objects.filter(pk=event.object_id).select_related("registered_model").first()
    # The reason is free text a person typed: not sent.
    return {
        "model": alias.registered_model.name if alias else None,
        "alias": _payload(event.before).get("alias") or _payload(event.after).get("alias"),
        "from_version": refs.get(from_id),
        "to_version": refs.get(to_id),
        "removed": event.action == "model.alias_remove",
    }


def webhook_events_register() -> None:
    """Map the registry's audit actions to webhook event types."""
    for action, event_type in (
        ("training.succeeded", "job.finished"),
        ("training.cancelled", "job.finished"),
        ("training.failed", "job.failed"),
    ):
        webhook_event_register(
            action=action, event_type=event_type, project=_job_project, data=_job
        )
    for action in ("model.alias_set", "model.alias_remove"):
        webhook_event_register(
            action=action, event_type="alias.moved", project=_alias_project, data=_alias_moved
        )
