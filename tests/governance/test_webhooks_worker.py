"""Webhooks end to end: a real Celery worker on the ``webhooks`` queue posts to a real local
HTTP receiver.  An alert that fires is delivered, signed as the README says; a receiver
that fails gets retries with growing delays and exactly one successful delivery."""

from __future__ import annotations

import itertools
import json
import re
from datetime import timedelta

import pytest
from django.db import transaction

from governance import services, webhooks
from governance.models import WebhookDelivery
from governance.outbox import outbox_task_enqueue
from monitoring import services as monitoring_services
from tests.monitoring.conftest import T0, outcomes_make, snapshot, version  # noqa: F401
from tests.polling import wait_until

from .webhook_receiver import Receiver

_SUCCEEDED = re.compile(r"Task governance\.webhook_deliver\[[^\]]+\] succeeded")

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _delivered(delivery_filter) -> WebhookDelivery | None:
    return WebhookDelivery.objects.filter(**delivery_filter, status="succeeded").first()


def test_a_fired_alert_is_delivered_signed_by_the_worker(celery_worker_process, ada, rosa, version):  # noqa: F811
    with Receiver() as receiver:
        subscription, secret = services.webhook_subscription_create(
            user=ada, name="on-call", url=receiver.url, event_types=["alert.fired"],
            allow_private=True,
        )  # fmt: skip
        rule = monitoring_services.alert_rule_create(
            user=rosa, name="accuracy drop", metric="accuracy", comparator="lt", threshold=0.5,
            window="hour", severity="critical", cooldown=timedelta(hours=1),
            registered_model=version.registered_model, alias="production",
        )  # fmt: skip
        outcomes_make(version=version, probs=[0.9] * 4, labels=[0, 0, 0, 1], at=T0)
        monitoring_services.metric_points_update(version=version, times=[T0])
        with transaction.atomic():
            (alert,) = monitoring_services.alert_rules_evaluate(version=version, now=T0)
        wait_until(lambda: _delivered({"subscription": subscription}), timeout=60)
    (request,) = receiver.requests
    assert webhooks.signature_verify(
        secret=secret, header=request.headers["Attune-Signature"], body=request.body
    )
    assert request.headers["Attune-Event"] == "alert.fired"
    body = json.loads(request.body)
    assert body["type"] == "alert.fired" and body["project"] is None
    assert body["data"]["alert"] == alert.pk and body["data"]["rule"]["id"] == rule.pk
    assert body["data"]["rule"]["severity"] == "critical" and body["data"]["value"] == 0.25
    assert body["data"]["version"] == version.ref


def test_a_failing_receiver_gets_growing_retries_and_one_success(
    start_worker, broker_on_own_redis, ada
):
    """Three 500s, then 200: four attempts of one delivery (one delivery id), each after
    at least the backoff recorded for it, the backoffs growing; two duplicate copies of
    the task (as a broker may redeliver) post nothing more."""
    worker = start_worker(WEBHOOK_RETRY_BASE_SECONDS="0.4", WEBHOOK_MAX_ATTEMPTS="6")
    with Receiver(plan=[500, 500, 500]) as receiver:
        subscription, secret = services.webhook_subscription_create(
            user=ada, name="flaky", url=receiver.url, event_types=["approval.decided"],
            allow_private=True,
        )  # fmt: skip
        with transaction.atomic():
            services.audit_event_record(
                action="approval.decided", object_type="governance.approvalrequest",
                object_id=1, after={"decision": "approved"},
            )  # fmt: skip
            delivery = WebhookDelivery.objects.get(subscription=subscription)
            for _ in range(2):
                outbox_task_enqueue(
                    task="governance.webhook_deliver", kwargs={"delivery_id": delivery.pk},
                    queue="webhooks",
                )  # fmt: skip
        wait_until(lambda: _delivered({"pk": delivery.pk}), timeout=90)
        # Every copy of the task ran (3 sent at first, 3 retries) before counting posts.
        wait_until(lambda: len(_SUCCEEDED.findall(worker.log())) >= 6, timeout=60)
    assert [r.status for r in receiver.requests] == [500, 500, 500, 200]
    assert {r.headers["Attune-Delivery"] for r in receiver.requests} == {str(delivery.delivery_id)}
    for request in receiver.requests:
        assert webhooks.signature_verify(
            secret=secret, header=request.headers["Attune-Signature"], body=request.body
        )
    log = list(delivery.log.order_by("number"))
    assert [a.status_code for a in log] == [500, 500, 500, 200]
    backoffs = [a.retry_in_seconds for a in log[:3]]
    assert all(later > earlier for earlier, later in itertools.pairwise(backoffs))
    assert log[3].retry_in_seconds is None
    arrivals = [r.at for r in receiver.requests]
    for gap, backoff in zip(itertools.pairwise(arrivals), backoffs, strict=True):
        assert gap[1] - gap[0] >= backoff
    delivery.refresh_from_db()
    assert delivery.attempts == 4 and delivery.status == "succeeded"
