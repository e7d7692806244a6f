"""Retraining on the error memory with a real tiny model: the snapshot oversamples the
recorded errors and leaves the held-out items out, training starts a new version, and
the new version is compared with its parent on the same held-out items."""

from __future__ import annotations

import json

import pytest

from annotation import selectors as annotation_selectors
from models_registry import loop, services
from models_registry.models import ModelError, ModelVersion
from tests.models_registry.conftest import demo_rows, labelled_snapshot, train_now

pytestmark = pytest.mark.django_db


def test_error_memory_retraining_end_to_end(rosa, anna, tiny_encoder):
    # The parent: a tiny model trained on 40 pairs of a first project.
    first = labelled_snapshot(researcher=rosa, annotator=anna, rows=demo_rows(40), name="Seed")
    parent_job = train_now(user=rosa, base_model=tiny_encoder, snapshot=first)
    parent = ModelVersion.objects.get(training_job=parent_job)
    services.model_alias_set(
        registered_model=parent.registered_model, alias="production", version=parent, user=rosa
    )
    # A second project, labelled by a human (the source's preference, response A): the
    # loop with a threshold of 0.5 and ratio 1 sends every item to humans as a check,
    # so every item the model got wrong lands in the error memory.
    snapshot = labelled_snapshot(
        researcher=rosa, annotator=anna, rows=demo_rows(40, offset=40), name="Loop"
    )
    project = snapshot.project
    loop.loop_settings_update(
        project=project, user=rosa, enabled=True, registered_model="tiny-rm",
        confidence_threshold=0.5, human_feedback_ratio=1.0,
    )  # fmt: skip
    run = loop.loop_run(project=project, trigger="manual", user=rosa)
    assert run.status == "succeeded", run.message
    assert run.items_scored == 40 and run.checks == 40
    errors = set(
        ModelError.objects.filter(project=project).values_list("item__external_id", flat=True)
    )
    assert run.errors_found == len(errors) > 0  # a tiny model errs somewhere
    assert run.check_agreement == pytest.approx(1 - len(errors) / 40)

    request = loop.retraining_request_create(project=project, user=rosa, oversample=4)
    rows = annotation_selectors.snapshot_rows(snapshot=request.snapshot)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["external_id"]] = counts.get(row["external_id"], 0) + 1
    assert {e: counts.get(e) for e in errors} == dict.fromkeys(errors, 4)
    assert not set(request.heldout) & set(counts)  # held-out items are not trained on
    assert not set(request.heldout) & errors and request.heldout
    others = set(annotation_selectors.labelled_external_ids(project=project))
    others -= errors | set(request.heldout)
    assert all(counts[e] == 1 for e in others)
    assert request.snapshot.row_count == len(rows) == 4 * len(errors) + len(others)
    assert request.snapshot.filters["repeat"]  # recorded with the snapshot

    # Training on it starts a new version of the same model, from the parent's base.
    job = services.training_job_run(job_id=request.training_job.pk, worker="in-process")
    assert job.status == "succeeded", job.traceback
    child = ModelVersion.objects.get(training_job=job)
    assert child.registered_model == parent.registered_model and child.number == 2
    compared = loop.retraining_compare(request=request).comparison
    assert compared["heldout_pairs"] == len(request.heldout)
    assert compared["parent"]["ref"] == parent.ref and compared["retrained"]["ref"] == child.ref
    for side in ("parent", "retrained"):
        assert 0.0 <= compared[side]["accuracy"] <= 1.0
    assert json.dumps(compared)  # stored as plain JSON


def test_retraining_validates_its_input(rosa):
    from django.core.exceptions import ValidationError

    from tests.models_registry.loop_fixtures import known_project, known_version

    known_version(user=rosa)
    project = known_project(user=rosa, probabilities=[0.9], name="Bad input")
    for bad, field in (({"oversample": 0}, "oversample"), ({"oversample": "x"}, "oversample"),
                       ({"heldout_fraction": 0.9}, "heldout_fraction")):  # fmt: skip
        with pytest.raises(ValidationError) as exc:
            loop.retraining_request_create(project=project, user=rosa, **bad)
        assert field in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:  # no model configured yet
        loop.retraining_request_create(project=project, user=rosa)
    assert "model" in exc.value.message_dict
