"""Outcomes are collected when predictions naming items are stored (the registry's
``predictions_stored`` signal), not only by beat's minute."""

from __future__ import annotations

import pytest

from annotation.models import Item
from governance.models import OutboxMessage
from models_registry import services as models_services
from models_registry.models import ModelVersion
from monitoring.models import Outcome
from monitoring.tasks import outcomes_collect_version_task
from tests.models_registry.conftest import demo_rows, labelled_snapshot, train_now

pytestmark = pytest.mark.django_db


def test_storing_predictions_of_items_queues_their_collection(rosa, anna, tiny_encoder):
    snapshot = labelled_snapshot(researcher=rosa, annotator=anna, rows=demo_rows(12), name="C")
    job = train_now(user=rosa, base_model=tiny_encoder, snapshot=snapshot)
    version = ModelVersion.objects.get(training_job=job)
    item = Item.objects.filter(project=snapshot.project).first()
    pair = {"prompt": item.prompt, "response_a": item.responses[0]["text"],
            "response_b": item.responses[1]["text"]}  # fmt: skip
    models_services.predictions_create(version=version, pairs=[pair])  # names no item
    assert not OutboxMessage.objects.filter(task="monitoring.outcomes_collect_version").exists()

    models_services.predictions_create(
        version=version, pairs=[{**pair, "item_ref": f"{item.project_id}:{item.external_id}"}]
    )
    queued = OutboxMessage.objects.get(task="monitoring.outcomes_collect_version")
    assert queued.kwargs == {"version_id": version.pk}
    assert outcomes_collect_version_task(**queued.kwargs) == 1  # what the worker runs
    assert Outcome.objects.get().version == version
