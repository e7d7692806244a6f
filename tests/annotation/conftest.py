"""Annotation fixtures: a project run by rosa (researcher) with annotators anna and ben
and reviewer rex; vic (viewer) and nobody are not members."""

import pytest

from annotation import services


def pairs(n: int, *, prefix: str = "item") -> list[dict]:
    """n pairwise items as native import rows."""
    return [
        {
            "external_id": f"{prefix}-{i}",
            "prompt": f"Question {i}?",
            "responses": [f"good answer {i}", f"bad answer {i}"],
        }
        for i in range(n)
    ]


@pytest.fixture
def project(rosa, anna, ben, rex):
    project = services.project_create(
        created_by=rosa, name="Helpfulness", overlap=2, lock_ttl_seconds=600
    )
    for user in (anna, ben):
        services.project_member_add(project=project, user=user, role="annotator")
    services.project_member_add(project=project, user=rex, role="reviewer")
    services.items_create_bulk(project=project, rows=pairs(5))
    return project


def label(
    project, annotator, choice: str = "A", *, key: str | None = None, strength: int | None = None
):
    """Take the next item and answer it; returns the annotation."""
    assignment = services.assignment_next(project=project, annotator=annotator)
    assert assignment is not None, "no item left"
    answer = {"preference": {"choice": choice}}
    if strength is not None:
        answer["preference"]["strength"] = strength
    annotation, _ = services.annotation_submit(
        project=project,
        item_id=assignment.item_id,
        annotator=annotator,
        answer=answer,
        idempotency_key=key or f"{annotator.pk}-{assignment.item_id}",
    )
    return annotation
