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


def _beat(instance="celery@box:10:a", pid=10):
    return worker_heartbeat_record(
        instance=instance, hostname="celery@box", pid=pid, queues=["default"]
    )


def test_recent_heartbeat_means_200(client):
    _beat()
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert [w["hostname"] for w in response.json()["workers"]["alive"]] == ["celery@box"]


def test_a_restarted_worker_does_not_hide_the_dead_one():
    """Heartbeats are per worker instance: a new process under the same node name is a
    second row, and the first one's row goes stale on its own."""
    dead = _beat("celery@box:10:a", pid=10)
    WorkerHeartbeat.objects.filter(pk=dead.pk).update(
        last_seen=timezone.now() - dt.timedelta(minutes=5)
    )
    _beat("celery@box:11:b", pid=11)
    rows = dict(WorkerHeartbeat.objects.values_list("instance", "last_seen"))
    assert set(rows) == {"celery@box:10:a", "celery@box:11:b"}
    assert rows["celery@box:10:a"] < timezone.now() - dt.timedelta(minutes=4)


def test_stale_heartbeat_means_503(client):
    _beat()
    WorkerHeartbeat.objects.update(last_seen=timezone.now() - dt.timedelta(minutes=5))
    assert client.get("/healthz").status_code == 503


def test_unreachable_broker_means_503(client):
    from rlhf_platform.celery import app

    _beat()
    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False
    assert response.json()["database"]["ok"] is True
