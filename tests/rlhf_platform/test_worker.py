"""A real Celery worker, through the real broker (Redis in CI, the filesystem broker on the
embedded default), writing into the real database (PostgreSQL in CI, SQLite embedded)."""

import threading
import uuid

import pytest
from django.db import connection

from governance.models import AuditEvent, WorkerHeartbeat
from governance.selectors import audit_chain_verify
from governance.services import audit_event_record
from governance.tasks import system_probe
from tests.polling import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_task_goes_through_the_broker_to_a_worker_and_into_the_database(celery_worker_process):
    token = uuid.uuid4().hex
    system_probe.delay(token)
    event = wait_until(lambda: AuditEvent.objects.filter(object_id=token).first(), timeout=30)
    assert event.action == "system.probe"
    assert event.request_id == f"probe-{token}"[:64]
    assert audit_chain_verify().ok


def test_worker_heartbeat_makes_health_green(celery_worker_process, client):
    wait_until(lambda: WorkerHeartbeat.objects.exists(), timeout=15)
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["workers"]["alive"][0]["hostname"].startswith("test-")


def test_web_and_worker_write_at_the_same_time(celery_worker_process):
    """Both processes append to the audit chain at once: no "database is locked", no lost
    or duplicated event, and the chain still verifies (writes were serialised)."""
    token = uuid.uuid4().hex
    per_writer = 400
    errors: list[BaseException] = []

    def web_writes():
        try:
            for index in range(per_writer):
                audit_event_record(
                    action="web.write",
                    object_type="system.probe",
                    object_id=token,
                    after={"n": index},
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    system_probe.delay(token, count=per_writer)  # the worker's writes
    # Start writing from here once the worker has begun, so the two really overlap.
    wait_until(
        lambda: AuditEvent.objects.filter(object_id=token).exists(), timeout=30, interval=0.01
    )
    writer = threading.Thread(target=web_writes)
    writer.start()
    writer.join(timeout=120)
    wait_until(
        lambda: AuditEvent.objects.filter(object_id=token).count() >= 2 * per_writer, timeout=60
    )
    assert errors == []
    events = AuditEvent.objects.filter(object_id=token)
    assert events.filter(action="web.write").count() == per_writer
    assert events.filter(action="system.probe").count() == per_writer
    web = list(events.filter(action="web.write").values_list("sequence", flat=True))
    worker = list(events.filter(action="system.probe").values_list("sequence", flat=True))
    assert min(web) < max(worker), "the writers did not overlap, so nothing was tested"
    report = audit_chain_verify()
    assert report.ok, report.first_break
