"""Approvals fixtures: a registered version with stored metrics and calibration (never
trained: approvals read only its rows), the agreement of its snapshot, and two members
of the ethics committee besides Eve."""

from __future__ import annotations

import pytest

from annotation.models import ProjectStats
from models_registry import services as models_services
from models_registry.models import ModelVersion
from tests.factories import UserFactory
from tests.models_registry.conftest import demo_rows, labelled_snapshot


def version_make(*, snapshot, base, registered_model=None, number: int = 1, accuracy=0.8,
                 ece=0.03, name: str = "gov-rm") -> ModelVersion:  # fmt: skip
    """A version row with the metrics and calibration the gates read, and a model card
    with its intended use and limitations written (the card gate)."""
    if registered_model is None:
        registered_model = models_services.registered_model_create(
            user=snapshot.created_by, name=name
        )
    reliability = {"prob_pred": [0.2, 0.5, 0.8], "prob_true": [0.25, 0.5, 0.75], "count": [3, 3, 3]}
    version = ModelVersion.objects.create(
        registered_model=registered_model, number=number, kind="reward", base_model=base,
        snapshot=snapshot, snapshot_sha256=snapshot.sha256, artifact_path=f"models/{name}/{number}",
        artifact_sha256="0" * 64, artifact_files={}, size_bytes=0, training_config={},
        library_versions={}, metrics={"heldout_accuracy": accuracy, "heldout_pairs": 40},
        calibration={"method": "temperature", "temperature": 1.3, "n_pairs": 40,
                     "before": {"ece": 0.09, "reliability": reliability},
                     "after": {"ece": ece, "reliability": reliability}},
    )  # fmt: skip
    models_services.model_card_update(
        version=version, user=snapshot.created_by,
        fields={"intended_use": "Ranking polite vs rude answers in the demo.",
                "limitations": "Trained on a few hundred English pairs."},
    )  # fmt: skip
    return version


@pytest.fixture
def snapshot(rosa, anna):
    snapshot = labelled_snapshot(researcher=rosa, annotator=anna, rows=demo_rows(6), name="Gov")
    # The agreement when the snapshot was taken (what the α gate reads): one annotator
    # gives no α, so say what two agreeing annotators would have measured.
    ProjectStats.objects.filter(project=snapshot.project).update(
        n_annotations=12, metrics={"alpha_nominal": 0.82, "fleiss_kappa": 0.8}
    )
    return snapshot


@pytest.fixture
def base(ada):
    return models_services.base_model_minilm_ensure(user=ada)


@pytest.fixture
def version(snapshot, base):
    return version_make(snapshot=snapshot, base=base)


@pytest.fixture
def ethan(db):
    """A second member of the ethics committee."""
    return UserFactory(username="ethan", roles=["ethics_committee"])


@pytest.fixture
def rhea(db):
    """A researcher who also sits on the ethics committee."""
    return UserFactory(username="rhea", roles=["researcher", "ethics_committee"])
