"""Retraining triggers, in this process: a retraining rule's firing starts exactly one
training job on a fresh snapshot, however often the task is delivered; the result is
never promoted; every step is recorded on the alert and audited.  The real worker runs
the whole loop in test_retraining_worker.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from governance.models import AuditEvent, OutboxMessage
from models_registry.models import TrainingJob
from monitoring import retraining, services
from monitoring.models import Alert

from .conftest import T0
from .retraining_world import predictions_for_items, retraining_rule, tiny_watched_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def watched(rosa, anna, tiny_encoder):
    return tiny_watched_version(rosa=rosa, anna=anna, base_model=tiny_encoder)


def _fire(version, at):
    predictions_for_items(version=version, p_a=0.1, at=at)  # the model prefers B: wrong
    services.outcomes_collect(version=version, now=at)


def test_a_firing_starts_exactly_one_job_on_a_fresh_snapshot(watched, rosa):
    rule = retraining_rule(version=watched, user=rosa)
    _fire(watched, T0)
    alert = Alert.objects.get(rule=rule)
    queued = OutboxMessage.objects.filter(task="monitoring.alert_retraining_start")
    assert list(queued.values_list("kwargs", flat=True)) == [{"alert_id": alert.pk}]

    for _ in range(3):  # a redelivered or retried task
        retraining.alert_retraining_start(alert_id=alert.pk)
    new_jobs = TrainingJob.objects.exclude(pk=watched.training_job_id)
    assert new_jobs.count() == 1
    job = new_jobs.get()
    alert.refresh_from_db()
    assert alert.retraining_job == job and f"#{job.pk}" in alert.retraining_note
    assert job.snapshot_id != watched.snapshot_id  # a fresh export of the project
    assert job.snapshot.project_id == watched.snapshot.project_id
    assert (job.base_model_id, job.config) == (watched.base_model_id, watched.training_config)
    assert job.registered_model_id == watched.registered_model_id and job.created_by == rosa
    assert AuditEvent.objects.filter(action="monitoring.retraining_start").count() == 1

    # Within the cooldown the rule stays quiet: no alert, no job.
    _fire(watched, T0 + timedelta(minutes=30))
    assert Alert.objects.filter(rule=rule).count() == 1 and new_jobs.count() == 1
    # Nothing was promoted: production still names version 1.
    from models_registry.selectors import alias_version

    assert alias_version(registered_model=watched.registered_model, alias="production") == watched


def test_no_second_job_while_the_previous_one_is_unfinished(watched, rosa):
    rule = retraining_rule(version=watched, user=rosa, cooldown=timedelta(0))
    _fire(watched, T0)
    first = Alert.objects.get(rule=rule)
    retraining.alert_retraining_start(alert_id=first.pk)
    services.alert_rules_evaluate(version=watched, now=T0)  # unchanged: still open
    Alert.objects.filter(pk=first.pk).update(state="resolved")
    second = services.alert_rules_evaluate(version=watched, now=T0 + timedelta(minutes=1))[0]
    retraining.alert_retraining_start(alert_id=second.pk)
    second.refresh_from_db()
    assert second.retraining_job is None and "unfinished" in second.retraining_note
    assert TrainingJob.objects.exclude(pk=watched.training_job_id).count() == 1
    assert AuditEvent.objects.filter(action="monitoring.retraining_skip").count() == 1


def test_a_rule_without_retraining_starts_nothing(watched, rosa):
    services.alert_rule_create(
        user=rosa, name="just tell me", metric="accuracy", comparator="lt", threshold=0.5,
        window="hour", cooldown=timedelta(hours=1), registered_model=watched.registered_model,
    )  # fmt: skip
    _fire(watched, T0)
    assert Alert.objects.count() == 1
    assert not OutboxMessage.objects.filter(task="monitoring.alert_retraining_start").exists()


def test_a_retraining_rule_with_bad_settings_is_refused(watched, rosa):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        services.alert_rule_create(
            user=rosa, name="bad", metric="accuracy", comparator="lt", threshold=0.5,
            window="hour", cooldown=timedelta(hours=1), registered_model=watched.registered_model,
            retrain=True, retrain_config={"epochz": 1},
        )  # fmt: skip
    assert "config.epochz" in caught.value.message_dict
