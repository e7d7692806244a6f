"""Alert rules: fire once, acknowledged, resolve, stay quiet within the cooldown, re-fire
after it; notified in-app and by e-mail; every state change audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from governance.models import AuditEvent
from monitoring import services
from monitoring.models import Alert, Notification

from .conftest import T0, outcomes_make

pytestmark = pytest.mark.django_db


def _hour(version, *, accuracy_high: bool, at):
    labels = [1, 1, 1, 1] if accuracy_high else [0, 0, 0, 1]
    outcomes_make(version=version, probs=[0.8] * 4, labels=labels, at=at)
    services.metric_points_update(version=version, times=[at])


def test_a_rule_fires_once_respects_its_cooldown_and_resolves(
    version, rosa, ada, django_capture_on_commit_callbacks
):
    rule = services.alert_rule_create(
        user=rosa, name="accuracy drop", metric="accuracy", comparator="lt", threshold=0.5,
        window="hour", severity="critical", cooldown=timedelta(hours=3),
        registered_model=version.registered_model, alias="production", email_to=["ops@example.org"],
    )  # fmt: skip
    _hour(version, accuracy_high=False, at=T0)
    with django_capture_on_commit_callbacks(execute=True):
        fired = services.alert_rules_evaluate(version=version, now=T0)
    assert [a.state for a in fired] == ["firing"]
    assert services.alert_rules_evaluate(version=version, now=T0 + timedelta(minutes=5)) == []
    assert len(mail.outbox) == 1 and "accuracy drop" in mail.outbox[0].subject
    assert set(Notification.objects.values_list("user__username", flat=True)) == {"rosa", "ada"}

    alert = services.alert_acknowledge(alert=fired[0], user=ada)
    assert alert.state == "acknowledged"

    _hour(version, accuracy_high=True, at=T0 + timedelta(hours=1))  # latest hour is fine
    resolved = services.alert_rules_evaluate(version=version, now=T0 + timedelta(hours=1))
    assert [a.state for a in resolved] == ["resolved"]

    _hour(version, accuracy_high=False, at=T0 + timedelta(hours=2))  # bad again, in cooldown
    assert services.alert_rules_evaluate(version=version, now=T0 + timedelta(hours=2)) == []
    refired = services.alert_rules_evaluate(version=version, now=T0 + timedelta(hours=3))
    assert [a.state for a in refired] == ["firing"]
    assert Alert.objects.filter(rule=rule).count() == 2
    actions = list(
        AuditEvent.objects.filter(action__startswith="monitoring.").values_list("action", flat=True)
    )
    assert sorted(actions) == sorted([
        "monitoring.alert_rule_create", "monitoring.alert_fire", "monitoring.alert_acknowledge",
        "monitoring.alert_resolve", "monitoring.alert_fire",
    ])  # fmt: skip


def test_a_rule_follows_its_alias(version, rosa):
    services.alert_rule_create(
        user=rosa, name="staging only", metric="accuracy", comparator="lt", threshold=0.5,
        window="hour", cooldown=timedelta(hours=1), registered_model=version.registered_model,
        alias="staging",
    )  # fmt: skip
    _hour(version, accuracy_high=False, at=T0)
    assert services.alert_rules_evaluate(version=version, now=T0) == []  # no staging alias


def test_collecting_outcomes_fires_the_rule(version, rosa):
    """The path a worker takes: outcomes arrive, the rule fires in the same transaction."""
    from annotation.models import Item

    from .conftest import prediction_make

    services.alert_rule_create(
        user=rosa, name="wrong", metric="accuracy", comparator="lt", threshold=0.5, window="day",
        cooldown=timedelta(hours=1), registered_model=version.registered_model,
    )  # fmt: skip
    for item in Item.objects.filter(project=version.snapshot.project):
        prediction_make(
            version=version, p_a=0.1, at=T0, item_ref=f"{item.project_id}:{item.external_id}"
        )
    services.outcomes_collect(version=version, now=T0)
    assert Alert.objects.get().value == 0.0
