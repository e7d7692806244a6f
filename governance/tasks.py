"""Governance tasks."""

from celery import shared_task

from rlhf_platform import request_context

from .outbox import outbox_prune
from .services import audit_checkpoint_write, audit_event_record, worker_heartbeats_prune


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
    """Delete outbox rows sent more than a week ago, and heartbeats of long-gone worker
    instances (scheduled by beat)."""
    return outbox_prune() + worker_heartbeats_prune()
