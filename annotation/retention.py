"""Data retention: each project's policy applied by beat, the deletions audited (counts only).

The rule (README "Data protection"):

- ``retention_days = N``: items created more than N days ago are deleted with everything
  hanging off them (annotations, assignments with their skip reasons, adjudications,
  consensus), as are dataset snapshots (row and file) and finished import-job records
  older than N days.
- ``archive_retention_days = M``: M days after a project was archived, all of its data
  goes the same way (whatever its age), with its agreement and annotator statistics; the
  project row stays (name, settings, ``purged_at``) so the audit trail and lineage still
  name it.
- Nothing is deleted while the project is under a **legal hold** (only an administrator
  places or lifts one: :func:`project_legal_hold_set`); the run records what it held.
- **Lineage hold**: a snapshot some trained model points at is never deleted, nor is any
  item created before the newest such snapshot — it may be in it, and the model's lineage
  (back to items, answers and agreement) must stay whole.  Which snapshots are held is
  asked of the providers other apps register (:func:`snapshot_hold_register`; the models
  registry registers its training jobs and versions), since annotation knows nothing of
  models.
- Every run that deletes or holds something writes one audit event on the project with the
  counts, the cut-off and why — never the content.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from governance.services import audit_event_record
from rlhf_platform.validation import texts_validate

from .models import (
    Adjudication,
    Annotation,
    AnnotatorStats,
    Assignment,
    DatasetSnapshot,
    ImportJob,
    Item,
    ItemConsensus,
    Project,
    ProjectStats,
)
from .selectors import project_item_count_forget
from .services import consensus_schedule

logger = logging.getLogger(__name__)

BATCH = 1000

# Called as provider(snapshot_ids=[...]) and answers the ids it needs kept.
SnapshotHoldProvider = Callable[..., Iterable[int]]
_snapshot_hold_providers: list[SnapshotHoldProvider] = []


def snapshot_hold_register(*, provider: SnapshotHoldProvider) -> None:
    """Register ``provider(snapshot_ids=...) -> ids that must be kept`` (AppConfig.ready)."""
    if provider not in _snapshot_hold_providers:
        _snapshot_hold_providers.append(provider)


def snapshots_held(*, snapshot_ids: list[int]) -> set[int]:
    """The snapshots among ``snapshot_ids`` that some app needs kept (e.g. trained on)."""
    held: set[int] = set()
    if snapshot_ids:
        for provider in _snapshot_hold_providers:
            held.update(provider(snapshot_ids=list(snapshot_ids)))
    return held


@transaction.atomic
def project_legal_hold_set(*, project: Project, held: bool, reason: str = "") -> Project:
    """Place (``held=True``, with a reason) or lift a legal hold on a project (audited)."""
    reason = (reason or "").strip()
    if held and not reason:
        raise ValidationError({"legal_hold_reason": ["a legal hold needs a reason"]})
    if len(reason) > 500:
        raise ValidationError({"legal_hold_reason": ["at most 500 characters"]})
    texts_validate(legal_hold_reason=reason)
    project = Project.objects.select_for_update().get(pk=project.pk)
    before = {"legal_hold": project.legal_hold, "legal_hold_reason": project.legal_hold_reason}
    project.legal_hold, project.legal_hold_reason = held, reason if held else ""
    project.save(update_fields=["legal_hold", "legal_hold_reason"])
    audit_event_record(
        action="project.legal_hold_set" if held else "project.legal_hold_lift",
        obj=project,
        before=before,
        after={"legal_hold": project.legal_hold, "legal_hold_reason": project.legal_hold_reason},
    )
    return project


def _cutoff(project: Project, now: datetime) -> tuple[datetime | None, str]:
    """Everything created before the returned time is due, and why ("" when nothing is)."""
    if (
        project.status == Project.Status.ARCHIVED
        and project.archive_retention_days
        and project.archived_at is not None
        and project.archived_at + timedelta(days=project.archive_retention_days) <= now
    ):
        return now, "archived"
    if project.retention_days:
        return now - timedelta(days=project.retention_days), "age"
    return None, ""


def _delete_items(item_ids: list[int]) -> dict[str, int]:
    """Delete items and everything hanging off them; counts per kind."""
    counts = {}
    for name, model in (
        ("consensus", ItemConsensus),
        ("adjudications", Adjudication),
        ("annotations", Annotation),
        ("assignments", Assignment),
    ):
        counts[name] = model.objects.filter(item_id__in=item_ids).delete()[0]
    counts["items"] = Item.objects.filter(pk__in=item_ids).delete()[0]
    return counts


@dataclasses.dataclass
class _RetentionPlan:
    """What one run of a project's policy deletes, and what it keeps for lineage."""

    items: QuerySet
    snapshots: QuerySet
    import_jobs: QuerySet
    project_stats: QuerySet
    annotator_stats: QuerySet
    record: dict[str, Any]

    def due(self) -> dict[str, int]:
        return {
            name: getattr(self, name).count()
            for name in ("items", "snapshots", "import_jobs", "project_stats", "annotator_stats")
        }


def _retention_plan(project: Project, cutoff: datetime, why: str) -> _RetentionPlan:
    snapshots = DatasetSnapshot.objects.filter(project=project)
    held = snapshots_held(snapshot_ids=list(snapshots.values_list("pk", flat=True)))
    items = Item.objects.filter(project=project, created_at__lt=cutoff)
    lineage_kept = 0
    if held:
        # Items up to the newest trained-on snapshot may be in it: they stay.
        until = snapshots.filter(pk__in=held).aggregate(t=Max("created_at"))["t"]
        lineage_kept = items.filter(created_at__lte=until).count()
        items = items.filter(created_at__gt=until)
    # Statistics describe the whole project: they go only with all of its data.
    whole = why == "archived"
    return _RetentionPlan(
        items=items,
        snapshots=snapshots.filter(created_at__lt=cutoff).exclude(pk__in=held),
        import_jobs=ImportJob.objects.filter(
            project=project,
            created_at__lt=cutoff,
            status__in=[ImportJob.Status.SUCCEEDED, ImportJob.Status.FAILED],
        ),
        project_stats=ProjectStats.objects.filter(project=project)
        if whole
        else ProjectStats.objects.none(),
        annotator_stats=AnnotatorStats.objects.filter(project=project)
        if whole
        else AnnotatorStats.objects.none(),
        record={
            "rule": why,
            "cutoff": cutoff,
            "kept_by_lineage": {"items": lineage_kept, "snapshots": len(held)},
        },
    )


def _retention_delete(plan: _RetentionPlan) -> dict[str, int]:
    """Delete what the plan names; files go after the commit (a rollback keeps them)."""
    counts = dict.fromkeys(("items", "consensus", "adjudications", "annotations", "assignments"), 0)
    item_ids = list(plan.items.values_list("pk", flat=True))
    for start in range(0, len(item_ids), BATCH):
        for name, n in _delete_items(item_ids[start : start + BATCH]).items():
            counts[name] += n
    files = []
    counts["snapshots"] = 0
    for snapshot in plan.snapshots:
        name, storage = snapshot.file.name, snapshot.file.storage
        project_id = snapshot.project_id
        snapshot.delete()
        counts["snapshots"] += 1
        # Snapshots are named by their content hash: a kept one may share the file.
        if not DatasetSnapshot.objects.filter(project_id=project_id, file=name).exists():
            files.append((storage, name))
    files += [(job.file.storage, job.file.name) for job in plan.import_jobs if job.file]
    counts["import_jobs"] = plan.import_jobs.delete()[0]
    counts["project_stats"] = plan.project_stats.delete()[0]
    counts["annotator_stats"] = plan.annotator_stats.delete()[0]
    for storage, name in files:
        transaction.on_commit(lambda storage=storage, name=name: storage.delete(name))
    return counts


def project_retention_apply(*, project: Project, now: datetime | None = None) -> dict[str, int]:
    """Apply one project's retention policy now (see the module docstring); returns what
    was deleted per kind ({} when nothing was, or a legal hold kept it)."""
    now = now or timezone.now()
    cutoff, why = _cutoff(project, now)
    if cutoff is None:
        return {}
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        plan = _retention_plan(project, cutoff, why)
        if project.legal_hold:
            due = plan.due()
            if any(due.values()):
                audit_event_record(
                    action="project.retention_held",
                    obj=project,
                    after={**plan.record, "due": due, "legal_hold": True},
                )
            return {}
        counts = _retention_delete(plan)
        if not any(counts.values()):
            return {}
        if why == "archived":
            project.purged_at = now
            project.save(update_fields=["purged_at"])
        audit_event_record(
            action="project.retention_delete", obj=project, after={**plan.record, "deleted": counts}
        )
        if counts["items"] and why == "age":
            # Agreement and progress change with the items: recompute them.
            consensus_schedule(project=project)
    project_item_count_forget(project_id=project.pk)
    return counts


def retention_apply_all(*, now: datetime | None = None) -> dict[int, dict[str, int]]:
    """Apply every project's retention policy (beat, daily); returns counts per project.

    One project's failure is logged and does not stop the others.
    """
    now = now or timezone.now()
    policies = Project.objects.filter(
        Q(retention_days__isnull=False) | Q(archive_retention_days__isnull=False)
    ).order_by("pk")
    results: dict[int, dict[str, int]] = {}
    for project in policies:
        try:
            counts = project_retention_apply(project=project, now=now)
        except Exception:
            logger.exception("retention of project %s failed", project.pk)
            continue
        if counts:
            results[project.pk] = counts
    return results
