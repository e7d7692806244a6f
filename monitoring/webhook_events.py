"""Monitoring's audit actions that are webhook events (registered in its AppConfig.ready)."""

from __future__ import annotations

from governance.webhooks import webhook_event_register


def _alert_project(event) -> int | None:
    from .models import Alert

    return (
        Alert.objects.filter(pk=event.object_id)
        .values_list("rule__scope_project_id", flat=True)
        .first()
    )


def _alert(event) -> dict:
    from .models import Alert

    alert = (
        Alert.objects.filter(pk=event.object_id)
        .select_related("rule", "rule__registered_model", "version")
        .first()
    )
    if alert is None:
        return {"alert": int(event.object_id)}
    rule = alert.rule
    return {
        "alert": alert.pk,
        "state": alert.state,
        "rule": {
            "id": rule.pk,
            "name": rule.name,
            "metric": rule.metric,
            "comparator": rule.comparator,
            "threshold": rule.threshold,
            "window": rule.window,
            "severity": rule.severity,
        },
        "value": alert.value,
        "model": rule.registered_model.name,
        "alias": rule.alias,
        "version": alert.version.ref,
        "fired_at": alert.fired_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


def webhook_events_register() -> None:
    """Map monitoring's audit actions to webhook event types."""
    webhook_event_register(
        action="monitoring.alert_fire",
        event_type="alert.fired",
        project=_alert_project,
        data=_alert,
    )
    webhook_event_register(
        action="monitoring.alert_resolve",
        event_type="alert.resolved",
        project=_alert_project,
        data=_alert,
    )
