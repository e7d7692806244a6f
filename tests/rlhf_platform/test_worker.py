"""A real Celery worker, through the real broker (Redis in CI, the filesystem broker on the
embedded default), writing into the real database (PostgreSQL in CI, SQLite embedded)."""

import threading
import time
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
    or duplicated event, and the chain still verifies (writes were serialised).

    The web side starts writing before the worker's task is sent and keeps writing until
    the worker has finished, so every worker write happens inside the web's window.
    """
    token = uuid.uuid4().hex
    per_writer = 300
    errors: list[BaseException] = []
    started = threading.Event()

    def worker_done() -> bool:
        return (
            AuditEvent.objects.filter(object_id=token, action="system.probe").count() >= per_writer
        )

    def web_writes():
        try:
            index = 0
            deadline = time.monotonic() + 90
            while True:
                audit_event_record(
                    action="web.write",
                    object_type="system.probe",
                    object_id=token,
                    after={"n": index},
                )
                index += 1
                started.set()
                if worker_done() or time.monotonic() > deadline:
                    break
            audit_event_record(
                action="web.write", object_type="system.probe", object_id=token, after={"n": index}
            )
        except BaseException as exc:
            errors.append(exc)
            started.set()
        finally:
            connection.close()

    writer = threading.Thread(target=web_writes)
    writer.start()
    started.wait(timeout=30)
    system_probe.delay(token, count=per_writer)  # the worker's writes
    writer.join(timeout=120)
    assert errors == []
    events = AuditEvent.objects.filter(object_id=token)
    web = list(events.filter(action="web.write").values_list("sequence", flat=True))
    worker = list(events.filter(action="system.probe").values_list("sequence", flat=True))
    assert len(worker) == per_writer and len(set(web + worker)) == len(web) + len(worker)
    assert min(web) < min(worker) and max(worker) < max(web)
    report = audit_chain_verify()
    assert report.ok, report.first_break
