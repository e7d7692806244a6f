"""Governance tasks."""

from celery import shared_task

from rlhf_platform import request_context

from .outbox import outbox_prune, outbox_task_enqueue
from .services import (
    approval_requests_expire,
    audit_checkpoint_write,
    audit_event_record,
    webhook_deliveries_reap,
    webhook_delivery_attempt,
    webhook_log_prune,
    worker_heartbeats_prune,
)


@shared_task(
    name="governance.audit_checkpoint", queue="default", time_limit=120, soft_time_limit=100
)
def audit_checkpoint() -> str | None:
    """Write a signed checkpoint of the audit chain head (beat, every AUDIT_CHECKPOINT_INTERVAL)."""
    path = audit_checkpoint_write()
    return str(path) if path else None


@shared_task(name="governance.system_probe", time_limit=60, soft_time_limit=50)
def system_probe(token: str, count: int = 1) -> None:
    """Write ``count`` audit events for ``token``: proof that a task went from the broker
    through a worker into the database (``manage.py worker_probe``, tests)."""
    with request_context.bind(request_id_value=f"probe-{token}"[:64]):
        for index in range(count):
            audit_event_record(
                action="system.probe",
                object_type="system.probe",
                object_id=token,
                after={"n": index},
            )


@shared_task(name="governance.outbox_prune", time_limit=300, soft_time_limit=280)
def outbox_prune_task() -> int:
    """Delete outbox rows sent more than a week ago, heartbeats of long-gone worker
    instances and webhook logs older than 30 days (scheduled by beat)."""
    return outbox_prune() + worker_heartbeats_prune() + webhook_log_prune()


@shared_task(name="governance.approval_requests_expire", time_limit=300, soft_time_limit=280)
def approval_requests_expire_task() -> int:
    """Close pending approval requests past their expiry (scheduled by beat)."""
    with request_context.bind(request_id_value="beat-approvals-expire"):
        return approval_requests_expire()


DEMO_PROMOTE_ATTEMPTS = 60  # every 20 s: the demo model trains within a few minutes


@shared_task(name="governance.demo_promote", time_limit=120, soft_time_limit=100)
def demo_promote(attempt: int = 0) -> str:
    """Promote the demo model once the worker has trained it (queued by ``demo_setup``);
    until then, try again in 20 s (a bounded number of times)."""
    from django.db import transaction

    from rlhf_platform.demo import demo_promotion

    state = demo_promotion()
    if state == "waiting" and attempt < DEMO_PROMOTE_ATTEMPTS:
        with transaction.atomic():
            outbox_task_enqueue(
                task="governance.demo_promote", kwargs={"attempt": attempt + 1}, delay=20,
                dedupe_key="demo-promote",
            )  # fmt: skip
    return state


@shared_task(name="governance.webhook_deliver", time_limit=120, soft_time_limit=100)
def webhook_deliver(delivery_id: int, attempt: int = 1) -> str | None:
    """Attempt ``attempt`` of a webhook delivery (queue ``webhooks``; retries are queued by
    the service through the outbox, with backoff)."""
    delivery = webhook_delivery_attempt(delivery_id=delivery_id, attempt=attempt)
    return delivery.status if delivery else None


@shared_task(name="governance.webhook_deliveries_reap", time_limit=120, soft_time_limit=100)
def webhook_deliveries_reap_task() -> dict[str, int]:
    """Queue again deliveries a dead worker left behind (scheduled by beat)."""
    return webhook_deliveries_reap()
