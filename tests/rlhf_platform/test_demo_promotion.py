"""The demo shows the approval workflow: once the worker has trained the demo model, its
``production`` alias is set by a real approved request — asked by the demo researcher,
approved by two other demo users — never by a direct move."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from governance.models import ApprovalRequest, AuditEvent, OutboxMessage
from governance.tasks import demo_promote
from models_registry.models import ModelAlias, ModelVersion, TrainingJob
from rlhf_platform.demo import demo_promotion

pytestmark = pytest.mark.django_db


def test_the_demo_model_reaches_production_through_an_approved_request(settings):
    settings.DEBUG = True
    call_command("demo_setup")
    # Not trained yet: a worker is asked to try again shortly.
    assert OutboxMessage.objects.filter(task="governance.demo_promote", sent_at=None).exists()
    assert demo_promote(attempt=0) == "waiting"

    job = TrainingJob.objects.get(registered_model__name="demo-reward")
    version = ModelVersion.objects.create(  # what the worker registers after training
        registered_model=job.registered_model, number=1, kind="reward", base_model=job.base_model,
        snapshot=job.snapshot, snapshot_sha256=job.snapshot.sha256, training_job=job,
        artifact_path="models/demo-reward/1", artifact_sha256="0" * 64, artifact_files={},
        size_bytes=0, training_config=job.config, library_versions={},
        metrics={"heldout_accuracy": 0.95, "heldout_pairs": 10},
        calibration={"method": "temperature", "after": {"ece": 0.2}},
    )  # fmt: skip
    TrainingJob.objects.filter(pk=job.pk).update(status="succeeded")
    assert demo_promotion() == "done"
    assert demo_promotion() == "done"  # idempotent

    request = ApprovalRequest.objects.get()
    assert request.status == "executed" and request.requested_by.username == "researcher"
    decisions = list(request.decisions.select_related("reviewer"))
    assert [d.reviewer.username for d in decisions] == ["admin", "ethics"]
    # The small demo data fails checks (ECE here): the admin's override says so, in words.
    assert decisions[0].gate_override and "Demo only" in decisions[0].override_rationale
    assert ModelAlias.objects.get(name="production").version == version
    decided = AuditEvent.objects.filter(action="approval.decided").order_by("sequence")
    assert [e.actor_username for e in decided] == ["admin", "ethics"]
