"""/healthz reports the database, the broker and the workers."""

import datetime as dt

import pytest
from django.utils import timezone

from governance.models import WorkerHeartbeat
from governance.services import worker_heartbeat_record

pytestmark = pytest.mark.django_db


def test_no_worker_means_503(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is True and body["broker"]["ok"] is True
    assert body["workers"] == {"ok": False, "alive": [], "max_age_seconds": 45}


def test_recent_heartbeat_means_200(client):
    worker_heartbeat_record(hostname="celery@box", queues=["default"])
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert [w["hostname"] for w in response.json()["workers"]["alive"]] == ["celery@box"]


def test_stale_heartbeat_means_503(client):
    worker_heartbeat_record(hostname="celery@box", queues=["default"])
    WorkerHeartbeat.objects.update(last_seen=timezone.now() - dt.timedelta(minutes=5))
    assert client.get("/healthz").status_code == 503


def test_unreachable_broker_means_503(client):
    from rlhf_platform.celery import app

    worker_heartbeat_record(hostname="celery@box", queues=["default"])
    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False
    assert response.json()["database"]["ok"] is True
