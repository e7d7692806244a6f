"""Annotation goes on from the database while Redis (cache and broker) is down.

Redis here is a private redis-server (``own_redis``) that the tests stop; requests run
for real (transactional tests), so on-commit work runs as in production.
"""

import logging

import pytest

from annotation import services
from annotation.models import Annotation, ImportJob
from governance.models import OutboxMessage
from tests.annotation.conftest import pairs
from tests.annotation.test_import_jobs import _jsonl

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def outage_project(rosa, anna):
    project = services.project_create(created_by=rosa, name="Outage", overlap=1)
    services.project_member_add(project=project, user=anna, role="annotator")
    services.items_create_bulk(project=project, rows=pairs(3, prefix="o"))
    return project


def test_next_submit_and_the_labelling_page_work_while_redis_is_down(
    broker_on_own_redis, outage_project, api_as, client, anna, caplog
):
    project = outage_project
    broker_on_own_redis.stop()
    api = api_as(anna)

    response = api.post(f"/api/annotation/projects/{project.pk}/next/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["item"] is not None and body["progress"]["available"] == 3  # counted in the db

    submitted = api.post(
        f"/api/annotation/projects/{project.pk}/submit/",
        {"item": body["item"]["id"], "answer": {"preference": {"choice": "A"}},
         "idempotency_key": "outage-1"},
    )  # fmt: skip
    assert submitted.status_code == 201, submitted.content
    assert Annotation.objects.filter(annotator=anna, idempotency_key="outage-1").exists()
    # The consensus recomputation is kept for when the broker is back, not lost.
    assert OutboxMessage.objects.filter(
        task="annotation.consensus_recompute", args=[project.pk], sent_at__isnull=True
    ).exists()

    client.force_login(anna)
    page = client.get(f"/annotation/projects/{project.pk}/label/")
    assert page.status_code == 200
    assert 'name="item_id"' in page.content.decode()
    # Degraded, not failed: the cache outage is a warning, nothing is logged as an error.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
    ]


def test_an_import_queued_while_the_broker_is_down_waits_and_says_why(
    broker_on_own_redis, outage_project, api_as, rosa
):
    import redis

    project = outage_project
    broker_on_own_redis.stop()
    response = api_as(rosa).post(
        f"/api/annotation/projects/{project.pk}/import/",
        {"file": _jsonl(pairs(2, prefix="later")), "background": True},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    job = ImportJob.objects.get(pk=response.json()["id"])
    assert job.status == "queued"
    row = OutboxMessage.objects.get(subject_type="annotation.importjob", subject_id=str(job.pk))
    assert row.sent_at is None and row.attempts == 1 and row.last_error  # the fast path failed
    shown = api_as(rosa).get(f"/api/annotation/import-jobs/{job.pk}/").json()
    assert shown["status"] == "queued"
    assert shown["waiting_reason"].startswith("Waiting for the task broker")

    # The broker is back: the next relay pass sends the kept task.
    from governance.outbox import outbox_relay

    broker_on_own_redis.start()
    assert outbox_relay().sent == 1
    row.refresh_from_db()
    assert row.sent_at is not None and row.last_error == ""
    assert redis.Redis.from_url(broker_on_own_redis.url()).llen("default") == 1
    assert (
        api_as(rosa).get(f"/api/annotation/import-jobs/{job.pk}/").json()["waiting_reason"]
        == "Waiting for a free worker."
    )
