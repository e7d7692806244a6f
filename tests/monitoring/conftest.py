"""Monitoring fixtures: a registered version (never trained: monitoring reads only its
rows), its labelled project, and outcomes made directly for the metric and rule tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from annotation.models import Item
from models_registry import services as models_services
from models_registry.models import ModelVersion, Prediction
from monitoring.models import Outcome
from tests.models_registry.conftest import (
    demo_rows,
    labelled_snapshot,
    tiny_encoder,  # noqa: F401 — a fixture
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def snapshot(rosa, anna):
    return labelled_snapshot(researcher=rosa, annotator=anna, rows=demo_rows(6), name="Mon")


@pytest.fixture
def version(ada, rosa, snapshot):
    base = models_services.base_model_minilm_ensure(user=ada)
    job = models_services.training_job_create(
        user=rosa, kind="reward", registered_model_name="watched-rm", base_model=base,
        snapshot_id=snapshot.pk,
    )  # fmt: skip
    version = ModelVersion.objects.create(
        registered_model=job.registered_model, number=1, kind="reward", base_model=base,
        snapshot=snapshot, snapshot_sha256=snapshot.sha256, training_job=job,
        artifact_path="models/watched-rm/none", artifact_sha256="0" * 64, artifact_files={},
        size_bytes=0, training_config=job.config, library_versions={}, metrics={},
        calibration={"method": "temperature", "temperature": 1.0},
    )  # fmt: skip
    models_services.model_alias_set(
        registered_model=job.registered_model, alias="production", version=version, user=rosa
    )
    return version


def prediction_make(*, version, p_a: float, at: datetime, item_ref: str = "") -> Prediction:
    row = Prediction.objects.create(
        version=version, item_ref=item_ref, text_sha256="0" * 64, reward_a=p_a, reward_b=0.0,
        margin=p_a - 0.5, p_a=p_a,
    )  # fmt: skip
    Prediction.objects.filter(pk=row.pk).update(created_at=at)
    row.refresh_from_db()
    return row


def outcomes_make(*, version, probs, labels, at: datetime) -> list[Outcome]:
    """Outcomes as if these predictions had met the consensus (project: the snapshot's)."""
    project_id = Item.objects.filter(project=version.snapshot.project).first().project_id
    rows = []
    for p, y in zip(probs, labels, strict=True):
        prediction = prediction_make(version=version, p_a=float(p), at=at)
        rows.append(
            Outcome(prediction=prediction, version=version, project_id=project_id, p_a=float(p),
                    margin=float(p) - 0.5, label=int(y), predicted_at=at)
        )  # fmt: skip
    return Outcome.objects.bulk_create(rows)
