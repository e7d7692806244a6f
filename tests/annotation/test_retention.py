"""Retention: each project's policy deletes what is due, audits counts (never content), and
refuses to touch data under a legal hold or behind a snapshot a model was trained on."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from annotation import exports, retention, services
from annotation.consensus import consensus_recompute
from annotation.models import (
    Annotation,
    Assignment,
    DatasetSnapshot,
    ImportJob,
    Item,
    ItemConsensus,
    ProjectStats,
)
from annotation.tasks import retention_apply_task
from governance.models import AuditEvent
from models_registry.models import BaseModel, RegisteredModel, TrainingJob
from tests.annotation.conftest import label, pairs

pytestmark = pytest.mark.django_db


def _age(project, *, days: int, external_ids=None) -> None:
    """Make the project's items (or some of them) and its snapshots ``days`` old."""
    then = timezone.now() - timedelta(days=days)
    items = Item.objects.filter(project=project)
    if external_ids is not None:
        items = items.filter(external_id__in=external_ids)
    items.update(created_at=then)


@pytest.fixture
def old_and_new(project, anna, ben, rosa):
    """Five labelled items 100 days old (with a snapshot and an import job as old) and
    three new ones; retention of 30 days."""
    for _ in range(5):
        label(project, anna, "A")
        label(project, ben, "A")
    consensus_recompute(project=project)
    snapshot = exports.dataset_export(project=project, fmt="trl", user=rosa)
    job = ImportJob.objects.create(project=project, format="jsonl", status="succeeded")
    _age(project, days=100)
    DatasetSnapshot.objects.filter(pk=snapshot.pk).update(
        created_at=timezone.now() - timedelta(days=100)
    )
    ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=100))
    services.items_create_bulk(project=project, rows=pairs(3, prefix="new"))
    services.project_update(project=project, retention_days=30)
    project.refresh_from_db()
    return project, snapshot


def test_retention_deletes_what_is_due_and_audits_only_counts(
    old_and_new, django_capture_on_commit_callbacks
):
    project, snapshot = old_and_new
    path = Path(snapshot.file.path)
    assert path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        counts = retention.project_retention_apply(project=project)
    assert counts["items"] == 5 and counts["annotations"] == 10 and counts["assignments"] == 10
    assert counts["consensus"] == 5 and counts["snapshots"] == 1 and counts["import_jobs"] == 1
    assert sorted(Item.objects.filter(project=project).values_list("external_id", flat=True)) == [
        "new-0", "new-1", "new-2",
    ]  # fmt: skip
    assert not Annotation.objects.filter(project=project).exists()
    assert not Assignment.objects.filter(project=project).exists()
    assert not DatasetSnapshot.objects.filter(pk=snapshot.pk).exists()
    assert not ImportJob.objects.filter(project=project).exists()
    assert not path.exists()  # the file went with its row, once the deletion committed
    event = AuditEvent.objects.get(action="project.retention_delete")
    assert event.object_id == str(project.pk)
    assert event.after["deleted"]["items"] == 5 and event.after["rule"] == "age"
    # Counts, never content: no item text or external id in the event.
    assert "item-0" not in event.canonical and "Question" not in event.canonical
    # Nothing more is due: a second run deletes nothing and records nothing.
    assert retention.project_retention_apply(project=project) == {}
    assert AuditEvent.objects.filter(action="project.retention_delete").count() == 1


def test_a_legal_hold_keeps_everything_and_records_what_was_held(old_and_new, ada):
    project, _ = old_and_new
    with pytest.raises(ValidationError) as exc:
        retention.project_legal_hold_set(project=project, held=True, reason=" ")
    assert "legal_hold_reason" in exc.value.message_dict
    retention.project_legal_hold_set(project=project, held=True, reason="Case 2026-17")
    project.refresh_from_db()
    assert retention.project_retention_apply(project=project) == {}
    assert Item.objects.filter(project=project).count() == 8
    held = AuditEvent.objects.get(action="project.retention_held")
    assert held.after["due"]["items"] == 5 and held.after["legal_hold"] is True
    assert not AuditEvent.objects.filter(action="project.retention_delete").exists()
    # Lifted: the next run deletes.
    retention.project_legal_hold_set(project=project, held=False)
    project.refresh_from_db()
    assert retention.project_retention_apply(project=project)["items"] == 5
    assert AuditEvent.objects.filter(action="project.legal_hold_lift").exists()


def test_a_snapshot_a_model_was_trained_on_keeps_itself_and_its_items(old_and_new, ada):
    project, snapshot = old_and_new
    base = BaseModel.objects.create(
        name="base", architecture="encoder", source="directory", location="/nonexistent"
    )
    registered = RegisteredModel.objects.create(name="rm")
    TrainingJob.objects.create(
        registered_model=registered, base_model=base, snapshot=snapshot, config={}
    )
    # One more old item, created after the snapshot: not in it, so still due.
    services.items_create_bulk(project=project, rows=pairs(1, prefix="late"))
    Item.objects.filter(project=project, external_id="late-0").update(
        created_at=timezone.now() - timedelta(days=50)
    )
    counts = retention.project_retention_apply(project=project)
    assert counts["items"] == 1 and counts["snapshots"] == 0
    assert DatasetSnapshot.objects.filter(pk=snapshot.pk).exists()
    assert Item.objects.filter(project=project).count() == 8
    assert Annotation.objects.filter(project=project).count() == 10
    event = AuditEvent.objects.get(action="project.retention_delete")
    assert event.after["kept_by_lineage"] == {"items": 5, "snapshots": 1}


def test_an_archived_project_is_emptied_after_its_archive_period(project, anna, ben, rosa):
    label(project, anna, "A")
    label(project, ben, "A")
    consensus_recompute(project=project)
    services.project_update(project=project, status="archived", archive_retention_days=7)
    project.refresh_from_db()
    assert project.archived_at is not None
    # Not yet due.
    assert retention.project_retention_apply(project=project) == {}
    later = timezone.now() + timedelta(days=8)
    counts = retention.project_retention_apply(project=project, now=later)
    assert counts["items"] == 5 and counts["project_stats"] >= 1
    assert not Item.objects.filter(project=project).exists()
    assert not ItemConsensus.objects.filter(project=project).exists()
    assert not ProjectStats.objects.filter(project=project).exists()
    project.refresh_from_db()
    assert project.purged_at == later
    event = AuditEvent.objects.get(action="project.retention_delete")
    assert event.after["rule"] == "archived"
    # Unarchiving stops the clock.
    services.project_update(project=project, status="active")
    project.refresh_from_db()
    assert project.archived_at is None


def test_the_beat_task_applies_every_policy(old_and_new, rosa):
    project, _ = old_and_new
    untouched = services.project_create(created_by=rosa, name="No policy")
    services.items_create_bulk(project=untouched, rows=pairs(2))
    _age(untouched, days=1000)
    results = retention_apply_task()
    assert results == {project.pk: results[project.pk]} and results[project.pk]["items"] == 5
    assert Item.objects.filter(project=untouched).count() == 2


def test_an_administrator_places_a_legal_hold_in_the_admin(client, password, ada, project):
    client.login(username=ada.username, password=password)
    url = f"/admin/annotation/project/{project.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {
        name: form.initial.get(name, field.initial)
        for name, field in form.fields.items()
        if form.initial.get(name, field.initial) is not None
    }
    data.update(
        question_schema=json.dumps(project.question_schema),
        pii_detectors=json.dumps(["email"]),
        retention_days="",
        archive_retention_days="",
        legal_hold="on",
        legal_hold_reason="",
    )
    response = client.post(url, data)
    assert response.status_code == 200  # the reason is required
    assert "A legal hold needs a reason." in response.content.decode()
    response = client.post(url, {**data, "legal_hold_reason": "Case 2026-17"})
    assert response.status_code == 302, response.content.decode()[:2000]
    project.refresh_from_db()
    assert project.legal_hold and project.pii_detectors == ["email"]
    # Both went through the services: validated and audited.
    assert AuditEvent.objects.filter(action="project.legal_hold_set").exists()
    update = AuditEvent.objects.filter(action="project.update").latest("sequence")
    assert update.after == {"pii_detectors": ["email"]}
