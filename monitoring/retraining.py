"""Retraining triggers: a rule with ``retrain`` set starts, when it fires, exactly one
training job — the next version of the watched model on a fresh snapshot of its data,
through the registry's services.  The new version is not promoted: moving an alias to it
stays a governance decision.

Exactly one: the firing queues ``monitoring.alert_retraining_start`` through the outbox
(deduplicated per alert), and the service takes the alert's row lock and does nothing
once the alert records a job or a reason for none (``Alert.retraining_job`` is one-to-one),
so a redelivered or retried task cannot start a second job.  A rule fires at most once per
cooldown, and a rule whose previous retraining job is still unfinished starts none.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction

from governance.outbox import outbox_task_enqueue
from governance.services import audit_event_record
from models_registry import selectors as registry_selectors
from models_registry import services as registry_services

from .models import Alert

logger = logging.getLogger(__name__)


def alert_retraining_queue(*, alert: Alert) -> None:
    """Called when a retraining rule fires (inside the firing's transaction)."""
    outbox_task_enqueue(
        task="monitoring.alert_retraining_start",
        kwargs={"alert_id": alert.pk},
        dedupe_key=f"alert-retraining-{alert.pk}",
        subject=alert,
    )


def _note(alert: Alert, note: str) -> Alert:
    alert.retraining_note = note[:500]
    alert.save(update_fields=["retraining_note"])
    audit_event_record(
        action="monitoring.retraining_skip", obj=alert, after={"rule": alert.rule_id, "note": note}
    )
    return alert


@transaction.atomic
def alert_retraining_start(*, alert_id: int) -> Alert | None:
    """Start the alert's one retraining job (idempotent); record it, or why none started,
    on the alert, audited."""
    alert = (
        # Only the alert's row is locked (PostgreSQL refuses to lock the nullable side of
        # the outer join to the rule's author).
        Alert.objects.select_for_update(of=("self",))
        .select_related("rule", "rule__created_by", "version")
        .filter(pk=alert_id)
        .first()
    )
    if alert is None or not alert.rule.retrain:
        return alert
    if alert.retraining_job_id is not None or alert.retraining_note:
        return alert  # already done: a repeated delivery
    rule = alert.rule
    if rule.created_by is None or not rule.created_by.is_active:
        return _note(alert, "not retrained: the rule has no active author to train as")
    earlier = list(
        Alert.objects.filter(rule=rule, retraining_job__isnull=False)
        .exclude(pk=alert.pk)
        .values_list("retraining_job_id", flat=True)
    )
    if registry_selectors.training_jobs_unfinished(job_ids=earlier):
        return _note(alert, "not retrained: the rule's previous retraining job is unfinished")
    try:
        with transaction.atomic():  # a refused job leaves no snapshot row behind
            job = registry_services.training_job_retrain(
                version=alert.version, user=rule.created_by, config=rule.retrain_config or None
            )
    except ValidationError as exc:
        reasons = (
            "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.message_dict.items())
            if hasattr(exc, "error_dict")
            else "; ".join(exc.messages)
        )
        return _note(alert, f"not retrained: {reasons}")
    alert.retraining_job = job
    alert.retraining_note = f"Retraining job #{job.pk} on snapshot #{job.snapshot_id}."
    alert.save(update_fields=["retraining_job", "retraining_note"])
    audit_event_record(
        action="monitoring.retraining_start",
        obj=alert,
        after={"rule": rule.pk, "version": alert.version_id, "job": job.pk,
               "snapshot": job.snapshot_id, "snapshot_sha256": job.snapshot.sha256},
    )  # fmt: skip
    logger.info("alert %s started retraining job %s", alert.pk, job.pk)
    return alert
