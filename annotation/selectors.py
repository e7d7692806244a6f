"""Annotation reads: project lists and progress, queues, review data and dashboards.

Every list that depends on the user goes through ``governance.access``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from governance import access

from .models import (
    Adjudication,
    Annotation,
    AnnotatorStats,
    Assignment,
    DatasetSnapshot,
    Item,
    ItemConsensus,
    Project,
    ProjectStats,
)


def project_list(*, user, action: str = "view") -> QuerySet[Project]:
    """Projects the user may see (or annotate, review, ... with ``action``)."""
    return access.queryset_restrict(queryset=Project.objects.all(), user=user, action=action)


def project_progress(*, project: Project) -> dict[str, Any]:
    """Items, completed items (N submitted), annotations and open locks of a project."""
    items = Item.objects.filter(project=project, is_gold=False).aggregate(
        total=Count("id"),
        complete=Count("id", filter=Q(n_submitted__gte=project.overlap)),
    )
    annotations = Annotation.objects.filter(project=project, is_gold=False).count()
    target = items["total"] * project.overlap
    return {
        "items": items["total"],
        "complete": items["complete"],
        "annotations": annotations,
        "target_annotations": target,
        "percent": round(100.0 * annotations / target, 1) if target else 0.0,
        "gold_items": Item.objects.filter(project=project, is_gold=True).count(),
    }


def _item_count_key(project_id: int) -> str:
    return f"annotation:item-count:{project_id}"


def project_item_count_forget(*, project_id: int) -> None:
    """Drop the cached item count (after an import changed it)."""
    cache.delete(_item_count_key(project_id))


def project_item_count(*, project: Project) -> int:
    """How many items the project has; cached briefly, since counting a million rows on
    every ``next`` call would cost more than the assignment itself."""
    return cache.get_or_set(
        _item_count_key(project.pk),
        lambda: Item.objects.filter(project=project).count(),
        timeout=30,
    )


def annotator_progress(*, project: Project, annotator) -> dict[str, Any]:
    """An annotator's own counts: in total, in this session (items taken in the last 8 h)
    and still open; one query over the annotator's assignments."""
    session_start = timezone.now() - timedelta(hours=8)
    submitted = Q(status=Assignment.Status.SUBMITTED)
    counts = Assignment.objects.filter(project=project, annotator=annotator).aggregate(
        done=Count("id", filter=submitted),
        session=Count("id", filter=submitted & Q(locked_at__gte=session_start)),
        skipped=Count("id", filter=Q(status=Assignment.Status.SKIPPED)),
    )
    total_items = project_item_count(project=project)
    done, skipped = counts["done"], counts["skipped"]
    return {
        "done": done,
        "session": counts["session"],
        "skipped": skipped,
        "available": max(0, total_items - done - skipped),
        "percent": round(100.0 * (done + skipped) / total_items, 1) if total_items else 0.0,
    }


def disagreement_queue(*, project: Project, limit: int = 50) -> QuerySet[ItemConsensus]:
    """Items to adjudicate, lowest agreement first (at least two answers, not yet decided)."""
    return (
        ItemConsensus.objects.filter(project=project, n_annotations__gte=2, item__is_gold=False)
        .exclude(method=ItemConsensus.Method.ADJUDICATED)
        .filter(agreement__lt=1.0)
        .select_related("item")
        .order_by("agreement", "confidence", "item_id")[:limit]
    )


def item_review(*, item: Item) -> dict[str, Any]:
    """Everything a reviewer needs for one item: every answer side by side."""
    annotations = list(
        Annotation.objects.filter(item=item).select_related("annotator").order_by("created_at")
    )
    return {
        "item": item,
        "annotations": annotations,
        "consensus": ItemConsensus.objects.filter(item=item).first(),
        "adjudication": Adjudication.objects.filter(item=item).select_related("reviewer").first(),
    }


def project_dashboard(*, project: Project) -> dict[str, Any]:
    """Progress, agreement over time and the annotator table for the project page."""
    history = list(
        ProjectStats.objects.filter(project=project)
        .order_by("-computed_at")
        .values("computed_at", "n_annotations", "n_complete", "metrics")[:200]
    )
    history.reverse()
    annotators = list(
        AnnotatorStats.objects.filter(project=project)
        .select_related("annotator")
        .order_by("-spammer_flag", "agreement_with_consensus")
    )
    return {
        "progress": project_progress(project=project),
        "latest": history[-1] if history else None,
        "history": history,
        "annotators": annotators,
    }


def snapshot_list(*, project: Project, user) -> QuerySet[DatasetSnapshot]:
    """A project's dataset snapshots that the user may see, newest first."""
    return access.queryset_restrict(
        queryset=DatasetSnapshot.objects.filter(project=project).select_related("created_by"),
        user=user,
    ).order_by("-created_at")


def project_item(*, project: Project, item_id: int, user) -> Item | None:
    """One item of a project, if the user may see it (else None)."""
    return (
        access.queryset_restrict(queryset=Item.objects.filter(project=project), user=user)
        .filter(pk=item_id)
        .first()
    )


def answer_summary(*, project: Project, item_id: int, exclude_annotator) -> list[dict[str, Any]]:
    """How the *other* annotators answered an item's primary question, as counts per label
    (for the feedback non-blind projects show after an annotator's own answer)."""
    from .schema import label_classes

    item = Item.objects.filter(project=project, pk=item_id).only("responses").first()
    if item is None:
        return []
    names = label_classes(project.question_schema, n_responses=len(item.responses))
    counts = (
        Annotation.objects.filter(item_id=item_id, label__isnull=False)
        .exclude(annotator=exclude_annotator)
        .values("label")
        .annotate(n=Count("id"))
        .order_by("label")
    )
    return [
        {
            "label": names[row["label"]] if row["label"] < len(names) else str(row["label"]),
            "count": row["n"],
        }
        for row in counts
    ]


def annotator_quality(*, project: Project, annotator) -> AnnotatorStats | None:
    """The annotator's own quality figures from the latest recomputation (or None)."""
    return AnnotatorStats.objects.filter(project=project, annotator=annotator).first()


def import_job_list(*, project: Project, user) -> QuerySet:
    """The project's background imports the user may see, newest first."""
    from .models import ImportJob

    return access.queryset_restrict(
        queryset=ImportJob.objects.filter(project=project), user=user
    ).order_by("-created_at")


def import_job_wait_reason(*, job) -> str:
    """Why a queued import has not started ("" once it runs): the task broker cannot be
    reached (the job waits in the outbox), or every worker is busy."""
    from governance.outbox import outbox_wait_reason

    from .models import ImportJob

    if job.status != ImportJob.Status.QUEUED:
        return ""
    reason = outbox_wait_reason(subject=job) or "Waiting for a free worker."
    return f"{job.message} {reason}" if job.message else reason


# ----------------------------------------------------------------------------------------
# For other apps (models_registry reads annotation only through these)
# ----------------------------------------------------------------------------------------


def snapshot_readable(*, snapshot_id: int, user) -> DatasetSnapshot | None:
    """A snapshot whose rows ``user`` may read — the project's export permission, the same
    as downloading it — or None."""
    snapshot = DatasetSnapshot.objects.select_related("project").filter(pk=snapshot_id).first()
    if snapshot is None or not access.user_can(user=user, action="export", obj=snapshot.project):
        return None
    return snapshot


def snapshot_list_readable(*, user) -> QuerySet[DatasetSnapshot]:
    """Snapshots (TRL or Parquet, so usable as preference pairs) the user may read."""
    projects = access.queryset_restrict(queryset=Project.objects.all(), user=user, action="export")
    return (
        DatasetSnapshot.objects.filter(
            project__in=projects.values("pk"),
            format__in=[DatasetSnapshot.Format.TRL, DatasetSnapshot.Format.PARQUET],
        )
        .select_related("project")
        .order_by("-created_at")
    )


def snapshot_rows(*, snapshot: DatasetSnapshot) -> list[dict[str, Any]]:
    """The rows of a TRL (JSONL) or Parquet snapshot, after checking the file's SHA-256
    against the one recorded at export (a changed file is refused)."""
    import hashlib
    import io
    import json

    with snapshot.file.open("rb") as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != snapshot.sha256:
        raise ValueError(f"snapshot {snapshot.pk}: file does not match its recorded SHA-256")
    if snapshot.format == DatasetSnapshot.Format.TRL:
        return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    if snapshot.format == DatasetSnapshot.Format.PARQUET:
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data)).to_pylist()
    raise ValueError(f"snapshot {snapshot.pk}: {snapshot.format} rows are not preference pairs")


#: The project's agreement figures (``ProjectStats.metrics`` keys) and how pages name them.
AGREEMENT_METRICS = (
    ("alpha_nominal", "Krippendorff’s α (nominal)"),
    ("alpha_ordinal", "Krippendorff’s α (ordinal)"),
    ("alpha_interval", "Krippendorff’s α (interval)"),
    ("fleiss_kappa", "Fleiss’ κ"),
    ("cohen_kappa_mean", "Cohen’s κ (mean pairwise)"),
    ("raw_agreement", "Raw agreement"),
)


def snapshot_lineage(*, snapshot: DatasetSnapshot) -> dict[str, Any]:
    """Where a snapshot came from: project, filters, size, hash, and the project's
    agreement when it was taken (the latest recomputation before it)."""
    stats = (
        ProjectStats.objects.filter(
            project_id=snapshot.project_id, computed_at__lte=snapshot.created_at
        )
        .order_by("-computed_at")
        .values("computed_at", "n_items", "n_complete", "n_annotations", "metrics")
        .first()
    )
    return {
        "snapshot": snapshot.pk,
        "project": snapshot.project_id,
        "project_name": snapshot.project.name,
        "format": snapshot.format,
        "filters": snapshot.filters,
        "rows": snapshot.row_count,
        "sha256": snapshot.sha256,
        "created_at": snapshot.created_at,
        "agreement": stats,
    }


def project_texts(*, project: Project, limit: int = 20000) -> list[str]:
    """Prompts and response texts of a project's items (e.g. to train a tokenizer)."""
    texts: list[str] = []
    for prompt, responses in Item.objects.filter(project=project).values_list(
        "prompt", "responses"
    )[:limit]:
        texts.append(prompt)
        texts.extend(r.get("text", "") for r in responses if isinstance(r, dict))
    return texts


#: The pairwise consensus labels (Annotation.label codes): A preferred, tie, B preferred.
PAIRWISE_A, PAIRWISE_TIE, PAIRWISE_B = 0, 1, 2


def item_ref(*, item: Item) -> str:
    """How other apps name an item: ``<project id>:<external id>`` (a prediction's
    ``item_ref``, so that it can meet the item's consensus)."""
    return f"{item.project_id}:{item.external_id}"


def _refs_by_project(refs: list[str]) -> dict[int, set[str]]:
    """``{project id: {external id, …}}`` of well-formed ``<project id>:<external id>`` refs."""
    wanted: dict[int, set[str]] = {}
    for ref in refs:
        project_id, sep, external_id = ref.partition(":")
        if sep and project_id.isdigit() and external_id:
            wanted.setdefault(int(project_id), set()).add(external_id)
    return wanted


def item_texts_by_ref(*, refs: list[str], chunk: int = 2000) -> dict[str, dict[str, str]]:
    """The texts of the items named ``<project id>:<external id>``:
    ``{ref: {"prompt", "response_a", "response_b"}}`` (the first two responses; refs
    naming no item are left out).  Monitoring reads these for error zones and drift."""
    out: dict[str, dict[str, str]] = {}
    for project_id, external_ids in _refs_by_project(refs).items():
        ids = sorted(external_ids)
        for i in range(0, len(ids), chunk):
            rows = Item.objects.filter(
                project_id=project_id, external_id__in=ids[i : i + chunk]
            ).values_list("external_id", "prompt", "responses")
            for external_id, prompt, responses in rows:
                texts = [r.get("text", "") if isinstance(r, dict) else str(r) for r in responses]
                texts += ["", ""]
                out[f"{project_id}:{external_id}"] = {
                    "prompt": prompt or "",
                    "response_a": texts[0] or "",
                    "response_b": texts[1] or "",
                }
    return out


def consensus_by_item_ref(*, refs: list[str]) -> dict[str, dict[str, Any]]:
    """The current consensus of the items named ``<project id>:<external id>``:
    ``{ref: {"project_id", "label", "agreement"}}``; refs naming no item or no consensus
    are left out."""
    out: dict[str, dict[str, Any]] = {}
    for project_id, external_ids in _refs_by_project(refs).items():
        rows = ItemConsensus.objects.filter(
            project_id=project_id, item__external_id__in=external_ids
        ).values_list("item__external_id", "label", "agreement")
        for external_id, label, agreement in rows:
            out[f"{project_id}:{external_id}"] = {
                "project_id": project_id,
                "label": label,
                "agreement": agreement,
            }
    return out


def vote_arrays(*, project_id: int) -> dict[str, Any]:
    """Every labelled vote of a project as numpy arrays, oldest first, for monitoring's
    pre-aggregation: ``item``, ``annotator``, ``label``, ``lead_time_ms``, ``created``
    (POSIX seconds), ``gold``, and the item's current consensus ``consensus`` (−1: none)
    with the number of votes behind it ``consensus_votes``."""
    import numpy as np

    rows = list(
        Annotation.objects.filter(project_id=project_id, label__isnull=False)
        .order_by("created_at", "id")
        .values_list("item_id", "annotator_id", "label", "lead_time_ms", "created_at", "is_gold")
    )
    consensus = {
        item_id: (label, n)
        for item_id, label, n in ItemConsensus.objects.filter(project_id=project_id).values_list(
            "item_id", "label", "n_annotations"
        )
    }
    item = np.array([r[0] for r in rows], dtype=np.int64)
    found = [consensus.get(i, (-1, 0)) for i in item.tolist()]
    return {
        "item": item,
        "annotator": np.array([r[1] for r in rows], dtype=np.int64),
        "label": np.array([r[2] for r in rows], dtype=np.int64),
        "lead_time_ms": np.array([r[3] for r in rows], dtype=float),
        "created": np.array([r[4].timestamp() for r in rows], dtype=float),
        "gold": np.array([r[5] for r in rows], dtype=bool),
        "consensus": np.array([c[0] for c in found], dtype=np.int64),
        "consensus_votes": np.array([c[1] for c in found], dtype=np.int64),
    }


def project_consensus_times() -> dict[int, Any]:
    """When each project's consensus was last recomputed: ``{project id: time}``."""
    from django.db.models import Max

    return dict(
        ProjectStats.objects.values("project_id")
        .annotate(latest=Max("computed_at"))
        .values_list("project_id", "latest")
    )


def project_label_names(*, project_id: int) -> list[str]:
    """Human names of a project's label codes (pairwise: A, tie, B)."""
    from .schema import label_classes

    project = Project.objects.filter(pk=project_id).only("question_schema").first()
    return label_classes(project.question_schema) if project else []


def project_names(*, project_ids) -> dict[int, str]:
    """``{project id: name}`` of the given projects."""
    return dict(Project.objects.filter(pk__in=list(project_ids)).values_list("pk", "name"))


def items_after(*, project: Project, after_id: int, limit: int) -> list[Item]:
    """Up to ``limit`` non-gold items of the project with an id above ``after_id``, by id
    (for another app that walks new items, e.g. the RLHF loop's scoring)."""
    return list(
        Item.objects.filter(project=project, is_gold=False, pk__gt=after_id)
        .only("pk", "project_id", "external_id", "prompt", "responses")
        .order_by("pk")[:limit]
    )


def consensus_final_labels(*, project: Project, item_ids: list[int]) -> dict[int, int]:
    """The consensus label of each of these items whose consensus is final — adjudicated,
    or answered by the project's N annotators: ``{item_id: label}``."""
    final = Q(n_annotations__gte=project.overlap) | Q(method=ItemConsensus.Method.ADJUDICATED)
    return dict(
        ItemConsensus.objects.filter(project=project, item_id__in=item_ids)
        .filter(final)
        .values_list("item_id", "label")
    )


def labelled_external_ids(*, project: Project) -> list[str]:
    """External ids of the project's non-gold items that have a consensus, by id."""
    return list(
        ItemConsensus.objects.filter(project=project, item__is_gold=False)
        .order_by("item_id")
        .values_list("item__external_id", flat=True)
    )


def preference_rows(*, project: Project, external_ids: list[str]) -> list[dict[str, Any]]:
    """TRL preference rows (prompt, chosen, rejected, …) of these items, as an export
    would write them (ties and items without consensus left out)."""
    from .exports import FILTER_DEFAULTS, _preference_row

    wanted = set(external_ids)
    rows = []
    consensus = ItemConsensus.objects.filter(
        project=project, item__external_id__in=wanted
    ).select_related("item")
    for cons in consensus.order_by("item_id"):
        row = _preference_row(project, cons.item, cons, FILTER_DEFAULTS)
        if row is not None:
            rows.append(row)
    return rows
