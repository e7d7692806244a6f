"""The retraining loop on a real Celery worker: a retraining rule fires once, stays quiet
within its cooldown, resolves, and starts exactly one training job, which the worker
trains into a new version that is not promoted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from governance.models import AuditEvent
from models_registry.models import ModelVersion, TrainingJob
from models_registry.selectors import alias_version
from monitoring import retraining, services
from monitoring.models import Alert
from tests.polling import wait_until

from .retraining_world import predictions_for_items, retraining_rule, tiny_watched_version

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_rule_fires_once_resolves_and_retrains_once_on_the_worker(
    celery_worker_process, rosa, anna, tiny_encoder
):
    version = tiny_watched_version(rosa=rosa, anna=anna, base_model=tiny_encoder)
    rule = retraining_rule(version=version, user=rosa)
    now = timezone.now()

    predictions_for_items(version=version, p_a=0.1, at=now)  # wrong on every item
    services.outcomes_collect(version=version, now=now)  # fires; the task goes after commit
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "firing"

    started = wait_until(
        lambda: Alert.objects.filter(pk=alert.pk, retraining_job__isnull=False).first(),
        timeout=60,
    )
    job = wait_until(
        lambda: TrainingJob.objects.filter(pk=started.retraining_job_id, finished_at__isnull=False)
        .first(),
        timeout=180,
    )  # fmt: skip
    assert job.status == "succeeded", job.traceback or job.message
    new = ModelVersion.objects.get(training_job=job)
    assert new.ref == "retrain-rm@2" and new.snapshot_id != version.snapshot_id

    # Within the cooldown: still wrong, but no second alert and no second job.
    predictions_for_items(version=version, p_a=0.1, at=now + timedelta(minutes=10))
    services.outcomes_collect(version=version, now=now + timedelta(minutes=10))
    # The next hour is right again: the alert resolves.
    later = now + timedelta(hours=1)
    predictions_for_items(version=version, p_a=0.9, at=later)
    services.outcomes_collect(version=version, now=later)
    alert.refresh_from_db()
    assert alert.state == "resolved"
    retraining.alert_retraining_start(alert_id=alert.pk)  # a late redelivery: no effect

    assert Alert.objects.filter(rule=rule).count() == 1
    assert TrainingJob.objects.exclude(pk=version.training_job_id).count() == 1
    assert ModelVersion.objects.filter(registered_model=version.registered_model).count() == 2
    # Promotion is governance's: production still names version 1.
    assert alias_version(registered_model=version.registered_model, alias="production") == version
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"monitoring.alert_fire", "monitoring.retraining_start", "training.queue",
            "model.version_register", "monitoring.alert_resolve"} <= actions  # fmt: skip
