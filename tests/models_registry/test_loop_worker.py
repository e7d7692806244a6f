"""A loop pass queued by hand (the UI's and the API's "run now") and run by a real Celery
worker with a real tiny reward model."""

from __future__ import annotations

import pytest

from models_registry import loop, services
from models_registry.models import ItemSuggestion, LoopRun, ModelVersion
from tests.models_registry.conftest import demo_rows, labelled_snapshot, train_now
from tests.polling import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_loop_pass_runs_on_the_worker(celery_worker_process, rosa, anna, tiny_encoder):
    snapshot = labelled_snapshot(researcher=rosa, annotator=anna, rows=demo_rows(24))
    version = ModelVersion.objects.get(
        training_job=train_now(user=rosa, base_model=tiny_encoder, snapshot=snapshot)
    )
    services.model_alias_set(
        registered_model=version.registered_model, alias="production", version=version, user=rosa
    )
    project = snapshot.project
    loop.loop_settings_update(
        project=project, user=rosa, enabled=True, registered_model="tiny-rm",
        confidence_threshold=0.6, human_feedback_ratio=0.5, batch_size=10,
    )  # fmt: skip
    loop.loop_run_request(project=project, user=rosa)
    run = wait_until(
        lambda: LoopRun.objects.filter(project=project).exclude(status="running").first(),
        timeout=120,
    )
    assert run.status == "succeeded", run.message
    assert run.trigger == "manual" and run.started_by == rosa and run.version == version
    assert run.items_scored == 24
    assert run.auto_labelled + run.sent_to_humans == 24
    assert ItemSuggestion.objects.filter(project=project).count() == 24
    # Every item already has its (final) human consensus: checks are compared at once.
    assert run.checks_compared == run.checks
