"""Helpers for the RLHF loop's tests: a reward-model version whose confidence is KNOWN —
a deterministic scorer registered for it (``loop.loop_scorer_register``) reads P(a ≻ b)
from each item's prompt — and projects of items carrying those probabilities."""

from __future__ import annotations

import math

from annotation import services as annotation_services
from annotation.exports import dataset_export
from models_registry import loop, services
from models_registry.models import BaseModel, ModelVersion


def prompt_for(p_a: float, i: int) -> str:
    """An item's prompt that tells the known scorer its P(a ≻ b)."""
    return f"p={p_a:.4f} question {i}?"


def known_scorer(pairs: list[dict]) -> list[dict]:
    """P(a ≻ b) as written in the prompt; rewards and margin consistent with it."""
    out = []
    for pair in pairs:
        p_a = float(pair["prompt"].split()[0][2:])
        margin = math.log(p_a / (1 - p_a))
        out.append({"reward_a": margin, "reward_b": 0.0, "margin": margin, "p_a": p_a})
    return out


def known_version(*, user, name: str = "known-rm", alias: str = "production") -> ModelVersion:
    """A registered reward-model version scored by :func:`known_scorer` (its artifact is
    never loaded), with ``alias`` pointing at it."""
    project = annotation_services.project_create(created_by=user, name=f"{name} data")
    snapshot = dataset_export(project=project, fmt="trl", user=user)
    base = BaseModel.objects.filter(name="known-base").first() or BaseModel.objects.create(
        name="known-base", architecture="encoder", source="directory", location="/nonexistent"
    )
    registered = services.registered_model_create(name=name, user=user)
    version = ModelVersion.objects.create(
        registered_model=registered, number=1, kind="reward", base_model=base,
        snapshot=snapshot, snapshot_sha256=snapshot.sha256, artifact_path="models/none",
        artifact_sha256="0" * 64, artifact_files={}, size_bytes=0,
        training_config={"max_length": 64}, library_versions={},
        calibration={"method": "none"},
    )  # fmt: skip
    services.model_alias_set(registered_model=registered, alias=alias, version=version, user=user)
    loop.loop_scorer_register(version=version, scorer=known_scorer)
    return version


def known_project(*, user, probabilities: list[float], name: str = "Loop", overlap: int = 2,
                  annotators=()):  # fmt: skip
    """A project whose item i has P(a ≻ b) = probabilities[i] under the known scorer."""
    project = annotation_services.project_create(created_by=user, name=name, overlap=overlap)
    for annotator in annotators:
        annotation_services.project_member_add(project=project, user=annotator, role="annotator")
    annotation_services.items_create_bulk(
        project=project,
        rows=[
            {
                "external_id": f"i{i:03d}",
                "prompt": prompt_for(p, i),
                "responses": [f"first answer {i}", f"second answer {i}"],
            }
            for i, p in enumerate(probabilities)
        ],
    )
    return project
