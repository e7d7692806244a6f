"""A watched version that retraining can really train: a tiny encoder base, tiny
settings, a labelled project, and a retraining rule on its production alias."""

from __future__ import annotations

from datetime import datetime, timedelta

from annotation.models import Item
from models_registry import services as models_services
from models_registry.models import ModelVersion, TrainingJob
from monitoring import services
from tests.models_registry.conftest import TINY_CONFIG, demo_rows, labelled_snapshot

from .conftest import prediction_make


def tiny_watched_version(*, rosa, anna, base_model) -> ModelVersion:
    """Version 1 of ``retrain-rm`` on production (its artifact is never loaded)."""
    snapshot = labelled_snapshot(researcher=rosa, annotator=anna, rows=demo_rows(16), name="R")
    registered = models_services.registered_model_create(name="retrain-rm", user=rosa)
    config = models_services.training_config_validate(kind="reward", config=TINY_CONFIG)
    # A finished job row, not a queued one: nothing should train version 1.
    job = TrainingJob.objects.create(
        kind="reward", registered_model=registered, base_model=base_model, snapshot=snapshot,
        config=config, status=TrainingJob.Status.SUCCEEDED, created_by=rosa,
    )  # fmt: skip
    version = ModelVersion.objects.create(
        registered_model=registered, number=1, kind="reward", base_model=base_model,
        snapshot=snapshot, snapshot_sha256=snapshot.sha256, training_job=job,
        artifact_path="models/retrain-rm/none", artifact_sha256="0" * 64, artifact_files={},
        size_bytes=0, training_config=config, library_versions={}, metrics={},
        calibration={"method": "temperature", "temperature": 1.0},
    )  # fmt: skip
    models_services.model_alias_set(
        registered_model=registered, alias="production", version=version, user=rosa
    )
    return version


def retraining_rule(*, version, user, cooldown=timedelta(hours=2)):
    return services.alert_rule_create(
        user=user, name="retrain when wrong", metric="accuracy", comparator="lt", threshold=0.5,
        window="hour", cooldown=cooldown, registered_model=version.registered_model,
        alias="production", retrain=True,
    )  # fmt: skip


def predictions_for_items(*, version, p_a: float, at: datetime) -> None:
    """One prediction per item of the version's project (the humans chose A on each)."""
    for item in Item.objects.filter(project=version.snapshot.project):
        prediction_make(
            version=version, p_a=p_a, at=at, item_ref=f"{item.project_id}:{item.external_id}"
        )
