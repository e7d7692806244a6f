"""Registry services: training in-process with tiny models, registration, artifacts,
aliases, cancellation and the reaper."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.utils import timezone

from governance.models import AuditEvent
from models_registry import selectors, services
from models_registry.artifacts import ArtifactCorrupted
from models_registry.models import AliasChange, ModelVersion, Prediction, TrainingJob
from models_registry.scoring import cache_clear, pairs_score
from tests.models_registry.conftest import train_now

pytestmark = pytest.mark.django_db


def test_a_tiny_reward_model_trains_calibrates_and_registers(rosa, snapshot, tiny_encoder):
    job = train_now(user=rosa, base_model=tiny_encoder, snapshot=snapshot)
    assert job.status == "succeeded", job.traceback
    version = ModelVersion.objects.get(training_job=job)
    assert version.ref == "tiny-rm@1" and version.kind == "reward"
    # Lineage and provenance.
    assert version.snapshot_id == snapshot.pk and version.snapshot_sha256 == snapshot.sha256
    assert version.base_model == tiny_encoder
    assert {"torch", "transformers", "trl"} <= set(version.library_versions)
    assert version.training_config["max_length"] == 64
    # Progress was reported: steps, an eval accuracy per epoch, a loss curve.
    assert job.step == job.total_steps > 0 and job.n_train + job.n_eval == 40
    assert len(version.metrics["eval_accuracy_per_epoch"]) == 2
    assert any("loss" in point for point in job.history)
    assert 0.0 <= version.metrics["heldout_accuracy"] <= 1.0
    # Calibration fitted on the held-out pairs, measured before and after.
    calibration = version.calibration
    assert calibration["method"] == "temperature" and calibration["temperature"] > 0
    assert calibration["after"]["nll"] <= calibration["before"]["nll"] + 1e-9
    assert set(calibration["before"]) >= {
        "ece",
        "ece_equal_mass",
        "mce",
        "brier",
        "nll",
        "reliability",
    }
    # The artifact: safetensors in storage, hashed; nothing pickled.
    assert "model.safetensors" in version.artifact_files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in version.artifact_files)
    assert default_storage.exists(f"{version.artifact_path}/model.safetensors")
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert {"training.queue", "training.start", "model.version_register"} <= set(actions)


def test_a_version_predicts_with_its_calibration_and_stores_predictions(
    rosa, snapshot, tiny_encoder
):
    job = train_now(user=rosa, base_model=tiny_encoder, snapshot=snapshot)
    version = job.version
    pair = {"prompt": "Say hello.", "response_a": "Hello!", "response_b": "Go away, idiot."}
    swapped = {**pair, "response_a": pair["response_b"], "response_b": pair["response_a"]}
    results = services.predictions_create(version=version, pairs=[pair, swapped], user=rosa)
    first, second = results
    assert first["margin"] == pytest.approx(first["reward_a"] - first["reward_b"])
    # Temperature scaling is order-symmetric: P(a≻b) = 1 − P(b≻a).
    assert first["p_a"] == pytest.approx(1 - second["p_a"], abs=1e-6)
    stored = Prediction.objects.get(pk=first["id"])
    assert stored.version == version and stored.text_sha256 == services.text_sha256(
        pair["prompt"], pair["response_a"], pair["response_b"]
    )
    assert Prediction.objects.count() == 2


def test_a_corrupted_artifact_refuses_to_load(rosa, snapshot, tiny_encoder):
    version = train_now(user=rosa, base_model=tiny_encoder, snapshot=snapshot).version
    cache_clear()
    path = default_storage.path(f"{version.artifact_path}/model.safetensors")
    with open(path, "r+b") as handle:
        handle.seek(-8, 2)
        handle.write(b"\x00corrupt")
    with pytest.raises(ArtifactCorrupted, match=r"model\.safetensors"):
        pairs_score(version=version, pairs=[{"prompt": "p", "response_a": "a", "response_b": "b"}])


def test_versions_are_immutable(rosa, snapshot, tiny_encoder):
    version = train_now(user=rosa, base_model=tiny_encoder, snapshot=snapshot).version
    version.metrics = {"heldout_accuracy": 1.0}
    with pytest.raises(ValueError, match="immutable"):
        version.save()


def test_aliases_move_with_a_recorded_history(rosa, snapshot, tiny_encoder):
    first = train_now(user=rosa, base_model=tiny_encoder, snapshot=snapshot).version
    second = train_now(user=rosa, base_model=tiny_encoder, snapshot=snapshot).version
    model = first.registered_model
    services.model_alias_set(registered_model=model, alias="production", version=first, user=rosa)
    services.model_alias_set(
        registered_model=model, alias="production", version=second, user=rosa, reason="better"
    )
    assert selectors.version_resolve(ref="tiny-rm:production") == second
    assert selectors.version_resolve(ref="tiny-rm@1") == first
    assert selectors.version_resolve(ref=str(first.pk)) == first
    assert selectors.version_resolve(ref="tiny-rm:staging") is None
    history = list(selectors.alias_history(registered_model=model))
    assert [(c.from_version_id, c.to_version_id) for c in history] == [
        (first.pk, second.pk),
        (None, first.pk),
    ]
    services.model_alias_remove(registered_model=model, alias="production", user=rosa)
    assert selectors.version_resolve(ref="tiny-rm:production") is None
    assert AliasChange.objects.filter(to_version=None).count() == 1
    assert AuditEvent.objects.filter(action="model.alias_set").count() == 2


def test_training_settings_are_validated_field_by_field():
    with pytest.raises(ValidationError) as error:
        services.training_config_validate(
            kind="reward", config={"epochs": 0, "learning_rate": "fast", "bogus": 1}
        )
    assert set(error.value.message_dict) == {
        "config.epochs",
        "config.learning_rate",
        "config.bogus",
    }
    clean = services.training_config_validate(kind="policy", config={})
    assert clean["beta"] == 0.1 and clean["epochs"] == 1


def test_a_snapshot_the_user_may_not_read_cannot_be_trained_on(vic, snapshot, tiny_encoder):
    with pytest.raises(ValidationError) as error:
        services.training_job_create(
            user=vic, kind="reward", registered_model_name="x", base_model=tiny_encoder,
            snapshot_id=snapshot.pk,
        )  # fmt: skip
    assert "snapshot" in error.value.message_dict


def test_a_job_past_its_time_limit_fails_and_registers_nothing(rosa, snapshot, tiny_encoder):
    job = train_now(
        user=rosa, base_model=tiny_encoder, snapshot=snapshot,
        config={"epochs": 100, "max_seconds": 1},
    )  # fmt: skip
    assert job.status == "failed" and "Time limit" in job.message
    assert not ModelVersion.objects.exists()


def test_a_queued_job_is_cancelled_at_once(rosa, snapshot, tiny_encoder):
    job = services.training_job_create(
        user=rosa, kind="reward", registered_model_name="c", base_model=tiny_encoder,
        snapshot_id=snapshot.pk,
    )  # fmt: skip
    assert services.training_job_cancel(job=job).status == "cancelled"
    # The worker that picks the message up later leaves it alone.
    assert services.training_job_run(job_id=job.pk).status == "cancelled"
    assert not ModelVersion.objects.exists()


def test_the_reaper_fails_jobs_whose_process_died_and_removes_their_files(
    rosa, snapshot, tiny_encoder, settings, django_capture_on_commit_callbacks
):
    job = services.training_job_create(
        user=rosa, kind="reward", registered_model_name="r", base_model=tiny_encoder,
        snapshot_id=snapshot.pk,
    )  # fmt: skip
    fresh = services.training_job_create(
        user=rosa, kind="reward", registered_model_name="r", base_model=tiny_encoder,
        snapshot_id=snapshot.pk,
    )  # fmt: skip
    # A dead run that had written part of its artifact but registered nothing.
    prefix = "models/r/dead-run"
    default_storage.save(f"{prefix}/model.safetensors", __import__("io").BytesIO(b"partial"))
    old = timezone.now() - timedelta(seconds=settings.TRAINING_JOB_HEARTBEAT_MAX_AGE + 5)
    TrainingJob.objects.filter(pk=job.pk).update(
        status="registering", heartbeat_at=old, worker="gone@host", artifact_path=prefix
    )
    TrainingJob.objects.filter(pk=fresh.pk).update(status="running", heartbeat_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert services.training_jobs_fail_abandoned() == 1
    job.refresh_from_db()
    fresh.refresh_from_db()
    assert job.status == "failed" and "stopped while training" in job.message
    assert fresh.status == "running"
    assert not default_storage.exists(f"{prefix}/model.safetensors")
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_training_reports_cost_the_training_thread_no_database_work(rosa, snapshot, tiny_encoder):
    """Progress reaches the job row from the reporter's thread; the training thread only
    hands it over (a commit per report once cost a large share of training time), and a
    cancel request still stops training."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from models_registry.services import _JobReporter
    from tests.polling import wait_until

    job = services.training_job_create(
        user=rosa, kind="reward", registered_model_name="r", base_model=tiny_encoder,
        snapshot_id=snapshot.pk,
    )  # fmt: skip
    reporter = _JobReporter(job, threaded=True, interval=0.05)
    with reporter:
        with CaptureQueriesContext(connection) as queries:
            assert reporter.progress({"step": 3, "total_steps": 9, "loss": 0.5,
                                      "history": [{"step": 3, "loss": 0.5}]}) is False  # fmt: skip
        assert len(queries) == 0
        wait_until(lambda: TrainingJob.objects.get(pk=job.pk).step == 3)
        TrainingJob.objects.filter(pk=job.pk).update(cancel_requested=True)
        wait_until(lambda: reporter.progress({"step": 4}))
    job.refresh_from_db()
    assert job.step == 4 and job.loss == 0.5 and job.history == [{"step": 3, "loss": 0.5}]
    assert reporter.state["reason"] == "cancelled"
