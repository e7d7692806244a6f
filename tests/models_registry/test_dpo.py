"""DPO: TRL's DPOTrainer on a tiny GPT-2 built from a config, registered as a policy."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from models_registry.models import ModelVersion
from tests.models_registry.conftest import train_now

pytestmark = pytest.mark.django_db


def test_a_tiny_causal_lm_trains_with_dpo_and_registers_a_policy(rosa, snapshot, tiny_causal_lm):
    job = train_now(
        user=rosa, base_model=tiny_causal_lm, snapshot=snapshot, kind="policy", name="tiny-dpo",
        config={"epochs": 1, "learning_rate": 1e-3, "beta": 0.1},
    )  # fmt: skip
    assert job.status == "succeeded", job.traceback
    version = ModelVersion.objects.get(training_job=job)
    assert version.kind == "policy" and version.calibration == {"method": "none"}
    assert version.metrics["heldout_pairs"] == job.n_eval > 0
    assert version.metrics["heldout_reward_accuracy"] is not None
    assert default_storage.exists(f"{version.artifact_path}/model.safetensors")
    assert job.history  # loss and eval points reached the job row
