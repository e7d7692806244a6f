"""The RLHF loop: auto-labelling, active learning, error memory and retraining.

One pass (:func:`loop_run_execute`) over a project's new items:

1. new items are scored in batches by the project's model alias (the prediction service,
   ``scoring.pairs_score``, or a scorer registered for the version); each score is stored
   as a ``Prediction`` and an ``ItemSuggestion`` — never as an annotation, so it never
   counts as a vote in consensus, agreement or annotator quality;
2. items whose confidence max(P, 1 − P) reaches the threshold are labelled by the model
   and held from annotators, except a share (``human_feedback_ratio``) chosen at random
   with the settings' seed, which goes to humans as a check; the other items go to humans
   with an assignment priority equal to their uncertainty, so annotation's assignment
   engine serves the least certain first (it only orders by ``Item.priority``);
3. between batches the pass re-reads the kill switch and stops when it is on;
4. the error memory is brought up to date: every routed item whose human consensus is
   final and disagrees with the model's suggestion is recorded (:func:`loop_errors_record`),
   and the model–human agreement on the check items is measured.

Services (writes) and selectors (reads) of the loop live here, as keyword-only functions.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, QuerySet
from django.utils import timezone

from annotation import selectors as annotation_selectors
from annotation import services as annotation_services
from annotation.models import Item, Project
from governance import access
from governance.outbox import outbox_task_enqueue
from governance.services import audit_event_record
from rlhf_platform.errors import Conflict

from .models import ModelVersion, RegisteredModel, TrainingJob
from .models_loop import (
    ItemSuggestion,
    LoopRun,
    LoopSettings,
    ModelError,
    RetrainingRequest,
)

#: Pairwise label codes (annotation's): A preferred, tie, B preferred.
LABEL_A, LABEL_TIE, LABEL_B = 0, 1, 2
LABEL_NAMES = {LABEL_A: "A", LABEL_TIE: "tie", LABEL_B: "B"}

# ----------------------------------------------------------------------------------------
# Scorers
# ----------------------------------------------------------------------------------------

#: scorer(pairs) -> [{"reward_a", "reward_b", "margin", "p_a"}, ...], per version id.
Scorer = Callable[[list[dict[str, str]]], list[dict[str, float]]]
_scorers: dict[int, Scorer] = {}


def loop_scorer_register(*, version: ModelVersion, scorer: Scorer | None) -> None:
    """Score a version with ``scorer`` instead of loading its artifact (a model served
    elsewhere, or a deterministic rule); ``None`` removes it.  Per process."""
    if scorer is None:
        _scorers.pop(version.pk, None)
    else:
        _scorers[version.pk] = scorer


def pairs_score_for_loop(*, version: ModelVersion, pairs: list[dict[str, str]]) -> list[dict]:
    """The version's scores of the pairs: its registered scorer, else the prediction
    service."""
    scorer = _scorers.get(version.pk)
    if scorer is not None:
        return scorer(pairs)
    from .scoring import pairs_score

    return pairs_score(version=version, pairs=pairs)


# ----------------------------------------------------------------------------------------
# Uncertainty and routing (pure)
# ----------------------------------------------------------------------------------------


def confidence_of(p_a: float) -> float:
    """How sure the model is of its pick: max(P, 1 − P), in [0.5, 1]."""
    return max(p_a, 1.0 - p_a)


def uncertainty_of(*, measure: str, p_a: float, p_other: float | None = None) -> float:
    """Higher is less certain.  margin: 1 − |2P − 1| (0..1); entropy: H(P) in bits
    (0..1); disagreement: |P − P'| between two versions, plus the margin term / 10 to
    order ties."""
    p = min(max(p_a, 1e-12), 1 - 1e-12)
    margin = 1.0 - abs(2.0 * p_a - 1.0)
    if measure == LoopSettings.Uncertainty.ENTROPY:
        return float(-(p * math.log2(p) + (1 - p) * math.log2(1 - p)))
    if measure == LoopSettings.Uncertainty.DISAGREEMENT and p_other is not None:
        return float(abs(p_a - p_other) + margin / 10.0)
    return float(margin)


def checks_choose(*, rng: random.Random, confident: list[int], want: int) -> set[int]:
    """``want`` of the confident item ids, drawn with ``rng`` (seeded: reproducible)."""
    want = max(0, min(want, len(confident)))
    return set(rng.sample(confident, want)) if want else set()


# ----------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------

SETTINGS_FIELDS = (
    "enabled", "registered_model", "alias", "second_alias", "confidence_threshold",
    "human_feedback_ratio", "uncertainty", "schedule_minutes", "batch_size", "kill_switch",
    "seed",
)  # fmt: skip


def _settings_snapshot(loop: LoopSettings) -> dict[str, Any]:
    out = {name: getattr(loop, name) for name in SETTINGS_FIELDS if name != "registered_model"}
    out["registered_model"] = loop.registered_model.name if loop.registered_model else None
    return out


def loop_settings_get(*, project: Project) -> LoopSettings:
    """The project's loop settings (defaults, unsaved, when never set)."""
    return LoopSettings.objects.select_related("registered_model").filter(
        project=project
    ).first() or LoopSettings(project=project)


@transaction.atomic
def loop_settings_update(*, project: Project, user, **changes: Any) -> LoopSettings:
    """Change a project's loop settings (audited with before and after).

    ``registered_model`` is given by name; the kill switch is one of the settings.
    """
    unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
    if unknown:
        raise ValidationError({unknown[0]: ["unknown loop setting"]})
    loop = LoopSettings.objects.select_for_update().filter(project=project).first()
    created = loop is None
    if loop is None:
        loop = LoopSettings(project=project)
    before = _settings_snapshot(loop)
    if "registered_model" in changes:
        name = changes.pop("registered_model")
        if name in (None, ""):
            loop.registered_model = None
        else:
            model = RegisteredModel.objects.filter(name=str(name)).first()
            if model is None or not access.user_can(user=user, action="view", obj=model):
                raise ValidationError({"registered_model": ["no such model"]})
            if model.kind != "reward":
                raise ValidationError({"registered_model": ["must be a reward model"]})
            loop.registered_model = model
    for name, value in changes.items():
        setattr(loop, name, value)
    loop.updated_by = user
    try:
        loop.full_clean(exclude=["project", "updated_by", "registered_model"])
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from exc
    if loop.enabled and loop.registered_model is None:
        raise ValidationError({"registered_model": ["an enabled loop needs a model"]})
    if loop.uncertainty == LoopSettings.Uncertainty.DISAGREEMENT and not loop.second_alias:
        raise ValidationError({"second_alias": ["the disagreement measure needs a second alias"]})
    loop.save()
    after = _settings_snapshot(loop)
    changed = sorted(k for k in after if created or after[k] != before[k])
    if changed:
        audit_event_record(
            action="loop.settings_update",
            obj=loop,
            before=None if created else {k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return loop


def loop_version(*, loop: LoopSettings, alias: str | None = None) -> ModelVersion | None:
    """The version the loop's alias (or ``alias``) points at, if any."""
    if loop.registered_model is None:
        return None
    found = loop.registered_model.aliases.filter(name=alias or loop.alias).first()
    if found is None:
        return None
    return ModelVersion.objects.select_related("registered_model", "base_model").get(
        pk=found.version_id
    )


# ----------------------------------------------------------------------------------------
# Error memory
# ----------------------------------------------------------------------------------------


def loop_errors_record(*, project: Project, run: LoopRun | None = None) -> dict[str, Any]:
    """Record every routed item whose final human consensus disagrees with the model's
    suggestion (ties are no error: the model never answers tie), and measure the
    model–human agreement on the check items that have a final consensus.

    Returns ``{"errors_found", "checks_compared", "check_agreement"}``.
    """
    pending = ItemSuggestion.objects.filter(
        project=project, route__in=[ItemSuggestion.Route.CHECK, ItemSuggestion.Route.HUMAN]
    )
    errors_found = 0
    last = 0
    while True:
        batch = list(
            pending.filter(pk__gt=last)
            .exclude(pk__in=ModelError.objects.values("suggestion_id"))
            .order_by("pk")[:2000]
        )
        if not batch:
            break
        last = batch[-1].pk
        labels = annotation_selectors.consensus_final_labels(
            project=project, item_ids=[s.item_id for s in batch]
        )
        new = [
            ModelError(
                project=project,
                item_id=s.item_id,
                suggestion=s,
                version_id=s.version_id,
                run=run,
                model_label=s.label,
                human_label=labels[s.item_id],
                confidence=s.confidence,
                route=s.route,
            )
            for s in batch
            if s.item_id in labels and labels[s.item_id] not in (s.label, LABEL_TIE)
        ]
        ModelError.objects.bulk_create(new, ignore_conflicts=True)
        errors_found += len(new)
    checks = list(
        ItemSuggestion.objects.filter(
            project=project, route=ItemSuggestion.Route.CHECK
        ).values_list("item_id", "label")
    )
    labels = annotation_selectors.consensus_final_labels(
        project=project, item_ids=[item_id for item_id, _ in checks]
    )
    compared = [(label, labels[item_id]) for item_id, label in checks if item_id in labels]
    agreement = (
        sum(1 for model, human in compared if model == human) / len(compared) if compared else None
    )
    return {
        "errors_found": errors_found,
        "checks_compared": len(compared),
        "check_agreement": agreement,
    }


# ----------------------------------------------------------------------------------------
# Loop runs
# ----------------------------------------------------------------------------------------


class LoopStopped(Exception):
    """The kill switch is on."""


def _pairs(items: list[Item]) -> list[dict[str, str]]:
    return [
        {
            "prompt": item.prompt,
            "response_a": item.responses[0]["text"],
            "response_b": item.responses[1]["text"],
            "item_ref": annotation_selectors.item_ref(item=item),
        }
        for item in items
    ]


def _killed(project: Project) -> bool:
    return LoopSettings.objects.filter(project=project, kill_switch=True).exists()


def loop_run_start(
    *, project: Project, trigger: str, user=None, overrides: dict[str, Any] | None = None
) -> LoopRun:
    """Record a new pass (audited) with the settings it runs with — ``overrides`` are
    settings for this pass only (the command's flags; ``model`` is an alias of the loop's
    model or a ``name:alias`` reference).  Refused while the kill switch is on, the loop
    has no model, or another pass of the project runs."""
    loop = loop_settings_get(project=project)
    overrides = dict(overrides or {})
    if loop.kill_switch:
        raise Conflict("kill_switch: the project's loop is stopped by its kill switch")
    model = overrides.pop("model", None)
    if model and ":" in model:  # name:alias or name@N, for this pass only
        from .selectors import version_resolve

        version = version_resolve(ref=model)
        overrides["registered_model"] = version.registered_model.name if version else None
    else:
        version = loop_version(loop=loop, alias=model)
        if model:
            overrides["alias"] = model
    if version is not None and version.kind != "reward":
        raise ValidationError({"model": [f"{version.ref} is not a reward model"]})
    if version is None:
        raise ValidationError(
            {"model": ["the loop's model alias points at no version (set the loop's model)"]}
        )
    effective = {**_settings_snapshot(loop), **overrides, "version": version.ref}
    for name, low, high in (("confidence_threshold", 0.5, 1.0), ("human_feedback_ratio", 0, 1)):
        value = effective[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise ValidationError({name: [f"must be a number between {low} and {high}"]})
    with transaction.atomic():
        # One pass at a time per project: the settings row is the lock.
        LoopSettings.objects.select_for_update().filter(project=project).first()
        running = LoopRun.objects.filter(project=project, status=LoopRun.Status.RUNNING)
        # A pass older than the task's hard time limit died with its process.
        running.filter(
            started_at__lt=timezone.now() - timedelta(seconds=django_settings.LOOP_TASK_TIME_LIMIT)
        ).update(
            status=LoopRun.Status.FAILED, finished_at=timezone.now(),
            message="The process running this pass stopped.",
        )  # fmt: skip
        if running.exists():
            raise Conflict("status: a loop pass of this project is already running")
        run = LoopRun.objects.create(
            project=project, version=version, trigger=trigger, settings=effective,
            started_by=user,
        )  # fmt: skip
        audit_event_record(action="loop.run_start", obj=run, after=effective)
    return run


def loop_run_execute(*, run: LoopRun) -> LoopRun:
    """Run a recorded pass to its end (see the module docstring); any failure ends it as
    failed, and the kill switch ends it as stopped between two batches."""
    project = run.project
    conf = run.settings
    version = run.version
    second = None
    if conf["uncertainty"] == LoopSettings.Uncertainty.DISAGREEMENT:
        second = loop_version(loop=loop_settings_get(project=project), alias=conf["second_alias"])
    rng = random.Random(conf["seed"])
    threshold, ratio = float(conf["confidence_threshold"]), float(conf["human_feedback_ratio"])
    status, message = LoopRun.Status.SUCCEEDED, ""
    counts = {"items_scored": 0, "auto_labelled": 0, "checks": 0, "sent_to_humans": 0}
    confident_seen = 0
    scoring_seconds = 0.0
    try:
        cursor = (
            ItemSuggestion.objects.filter(project=project).aggregate(m=Max("item_id"))["m"] or 0
        )
        while True:
            if _killed(project):
                raise LoopStopped
            items = annotation_selectors.items_after(
                project=project, after_id=cursor, limit=int(conf["batch_size"])
            )
            if not items:
                break
            cursor = items[-1].pk
            items = [i for i in items if isinstance(i.responses, list) and len(i.responses) == 2]
            if not items:
                continue
            pairs = _pairs(items)
            started = time.perf_counter()
            scores = pairs_score_for_loop(version=version, pairs=pairs)
            others = pairs_score_for_loop(version=second, pairs=pairs) if second else None
            scoring_seconds += time.perf_counter() - started
            confident = [
                item.pk
                for item, score in zip(items, scores, strict=True)
                if confidence_of(score["p_a"]) >= threshold
            ]
            # Exactly round(ratio × confident items) checks over the pass, drawn per batch.
            confident_seen += len(confident)
            checks = checks_choose(
                rng=rng, confident=confident,
                want=round(ratio * confident_seen) - counts["checks"],
            )  # fmt: skip
            _batch_record(run, items, pairs, scores, others, set(confident), checks, conf)
            counts["items_scored"] += len(items)
            counts["checks"] += len(checks)
            counts["auto_labelled"] += len(confident) - len(checks)
            counts["sent_to_humans"] += len(items) - len(confident) + len(checks)
            LoopRun.objects.filter(pk=run.pk).update(**counts, scoring_seconds=scoring_seconds)
        # After scoring, so items already labelled by humans are compared at once.
        counts.update(loop_errors_record(project=project, run=run))
    except LoopStopped:
        status, message = LoopRun.Status.STOPPED, "Stopped by the kill switch."
    except Exception as exc:  # a failed pass is recorded, never left "running"
        status, message = LoopRun.Status.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
    with transaction.atomic():
        LoopRun.objects.filter(pk=run.pk).update(
            **counts, scoring_seconds=scoring_seconds, status=status, message=message,
            finished_at=timezone.now(),
        )  # fmt: skip
        run.refresh_from_db()
        audit_event_record(
            action=f"loop.run_{status}",
            obj=run,
            after={**counts, "status": status, "message": message[:500]},
        )
    return run


def _batch_record(run, items, pairs, scores, others, confident, checks, conf) -> None:
    """Store one scored batch: predictions, suggestions and the items' routing."""
    from .services import predictions_store

    version = run.version
    routes: dict[int, tuple[float, bool]] = {}
    with transaction.atomic():
        predictions = predictions_store(
            version=version, pairs=pairs, scores=scores, user=run.started_by, source="loop"
        )
        suggestions = []
        for index, (item, score, prediction) in enumerate(
            zip(items, scores, predictions, strict=True)
        ):
            p_a = score["p_a"]
            uncertainty = uncertainty_of(
                measure=conf["uncertainty"], p_a=p_a,
                p_other=others[index]["p_a"] if others else None,
            )  # fmt: skip
            if item.pk in checks:
                route = ItemSuggestion.Route.CHECK
            elif item.pk in confident:
                route = ItemSuggestion.Route.AUTO
            else:
                route = ItemSuggestion.Route.HUMAN
            suggestions.append(
                ItemSuggestion(
                    project_id=item.project_id,
                    item_id=item.pk,
                    run=run,
                    version=version,
                    prediction=prediction,
                    p_a=p_a,
                    label=LABEL_A if p_a >= 0.5 else LABEL_B,
                    confidence=confidence_of(p_a),
                    uncertainty=uncertainty,
                    route=route,
                )
            )
            # The least certain first; auto-labelled items are held from annotators.
            routes[item.pk] = (uncertainty, route != ItemSuggestion.Route.AUTO)
        ItemSuggestion.objects.bulk_create(suggestions, batch_size=500)
        annotation_services.items_routing_set(
            project=run.project, routes=routes, reason=f"loop run {run.pk}"
        )


def loop_run(
    *, project: Project, trigger: str, user=None, overrides: dict[str, Any] | None = None
) -> LoopRun:
    """Start and run one pass in this process (the command, the task)."""
    return loop_run_execute(
        run=loop_run_start(project=project, trigger=trigger, user=user, overrides=overrides)
    )


def loop_run_request(*, project: Project, user) -> None:
    """Queue a pass on a worker (the UI's and the API's "run now"); refused while the kill
    switch is on or the loop has no model."""
    loop = loop_settings_get(project=project)
    if loop.kill_switch:
        raise Conflict("kill_switch: the project's loop is stopped by its kill switch")
    if loop_version(loop=loop) is None:
        raise ValidationError({"model": ["the loop's model alias points at no version"]})
    outbox_task_enqueue(
        task="models_registry.loop_run",
        kwargs={"project_id": project.pk, "trigger": LoopRun.Trigger.MANUAL,
                "user_id": user.pk if user else None},
        dedupe_key=f"models_registry.loop_run:{project.pk}",
    )  # fmt: skip


def loop_schedule_due(*, now=None) -> int:
    """Queue a pass for every enabled, scheduled loop whose last pass started at least
    ``schedule_minutes`` ago (beat, every minute); returns how many were queued."""
    now = now or timezone.now()
    queued = 0
    loops = LoopSettings.objects.filter(enabled=True, kill_switch=False, schedule_minutes__gt=0)
    for loop in loops:
        last = (
            LoopRun.objects.filter(project_id=loop.project_id)
            .order_by("-started_at")
            .values_list("started_at", flat=True)
            .first()
        )
        if last is not None and (now - last).total_seconds() < loop.schedule_minutes * 60:
            continue
        with transaction.atomic():
            outbox_task_enqueue(
                task="models_registry.loop_run",
                kwargs={"project_id": loop.project_id, "trigger": LoopRun.Trigger.SCHEDULE},
                dedupe_key=f"models_registry.loop_run:{loop.project_id}",
            )
        queued += 1
    for request in RetrainingRequest.objects.filter(
        comparison={}, training_job__status=TrainingJob.Status.SUCCEEDED
    ):
        retraining_compare(request=request)
    return queued


# ----------------------------------------------------------------------------------------
# Retraining on the error memory
# ----------------------------------------------------------------------------------------


def _heldout(external_id: str, fraction: float, seed: int) -> bool:
    digest = hashlib.sha256(f"{seed}:{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def retraining_request_create(
    *,
    project: Project,
    user,
    oversample: int = 5,
    heldout_fraction: float = 0.2,
    config: dict[str, Any] | None = None,
    start_training: bool = True,
) -> RetrainingRequest:
    """One action: a TRL snapshot of the project's labelled items with the error memory's
    items written ``oversample`` times and a seeded share held out, then (by default) a
    training job from the parent version's base model and settings.  Audited; the new
    version is compared with its parent on the held-out items once it is registered
    (:func:`retraining_compare`)."""
    from annotation.exports import MAX_REPEAT, dataset_export

    from .services import training_job_create

    if isinstance(oversample, bool) or not isinstance(oversample, int):
        raise ValidationError({"oversample": ["must be an integer"]})
    if not 1 <= oversample <= MAX_REPEAT:
        raise ValidationError({"oversample": [f"must be between 1 and {MAX_REPEAT}"]})
    if isinstance(heldout_fraction, bool) or not isinstance(heldout_fraction, int | float):
        raise ValidationError({"heldout_fraction": ["must be a number"]})
    if not 0.05 <= heldout_fraction <= 0.5:
        raise ValidationError({"heldout_fraction": ["must be between 0.05 and 0.5"]})
    loop = loop_settings_get(project=project)
    parent = loop_version(loop=loop)
    if parent is None:
        raise ValidationError({"model": ["the loop's model alias points at no version"]})
    errors = set(
        ModelError.objects.filter(project=project).values_list("item__external_id", flat=True)
    )
    labelled = annotation_selectors.labelled_external_ids(project=project)
    # Error items are never held out: they are what the new version must learn.
    heldout = [e for e in labelled if e not in errors and _heldout(e, heldout_fraction, loop.seed)]
    repeat = dict.fromkeys(errors, oversample)
    repeat.update(dict.fromkeys(heldout, 0))
    snapshot = dataset_export(project=project, fmt="trl", user=user, filters={"repeat": repeat})
    with transaction.atomic():
        request = RetrainingRequest.objects.create(
            project=project, parent=parent, snapshot=snapshot, oversample=oversample,
            n_errors=len(errors), heldout=heldout, created_by=user,
        )  # fmt: skip
        audit_event_record(
            action="loop.retraining_create",
            obj=request,
            after={"parent": parent.ref, "snapshot": snapshot.pk, "oversample": oversample,
                   "errors": len(errors), "heldout": len(heldout)},
        )  # fmt: skip
        if start_training:
            job = training_job_create(
                user=user, kind="reward", registered_model_name=parent.registered_model.name,
                base_model=parent.base_model, snapshot_id=snapshot.pk,
                config={**parent.training_config, **(config or {})},
            )  # fmt: skip
            RetrainingRequest.objects.filter(pk=request.pk).update(training_job=job)
            request.training_job = job
    return request


def _accuracy(version: ModelVersion, rows: list[dict]) -> float | None:
    if not rows:
        return None
    pairs = [{"prompt": r["prompt"], "response_a": r["chosen"], "response_b": r["rejected"]}
             for r in rows]  # fmt: skip
    scores = pairs_score_for_loop(version=version, pairs=pairs)
    return sum(1 for s in scores if s["margin"] > 0) / len(scores)


def retraining_compare(*, request: RetrainingRequest) -> RetrainingRequest:
    """Score the parent and the retrained version on the same held-out items and keep the
    comparison (audited); the new version must be registered."""
    job = request.training_job
    version = ModelVersion.objects.filter(training_job=job).first() if job else None
    if version is None:
        raise Conflict("training_job: the retrained version is not registered yet")
    rows = annotation_selectors.preference_rows(
        project=request.project, external_ids=request.heldout
    )
    comparison = {
        "heldout_pairs": len(rows),
        "parent": {"ref": request.parent.ref, "accuracy": _accuracy(request.parent, rows)},
        "retrained": {"ref": version.ref, "accuracy": _accuracy(version, rows)},
    }
    with transaction.atomic():
        RetrainingRequest.objects.filter(pk=request.pk).update(comparison=comparison)
        request.comparison = comparison
        audit_event_record(action="loop.retraining_compare", obj=request, after=comparison)
    return request


# ----------------------------------------------------------------------------------------
# Selectors
# ----------------------------------------------------------------------------------------


def loop_run_list(*, project: Project, limit: int = 500) -> QuerySet[LoopRun]:
    """A project's passes, newest first."""
    return LoopRun.objects.filter(project=project).select_related("version__registered_model")[
        :limit
    ]


def loop_chart_data(*, project: Project, limit: int = 500) -> dict[str, list]:
    """The passes over time, oldest first, as series for the loop page's chart."""
    runs = list(
        LoopRun.objects.filter(project=project)
        .order_by("-started_at", "-id")
        .values(
            "id",
            "started_at",
            "status",
            "items_scored",
            "auto_labelled",
            "sent_to_humans",
            "checks",
            "check_agreement",
            "errors_found",
        )[:limit]
    )
    runs.reverse()
    keys = ("id", "status", "items_scored", "auto_labelled", "sent_to_humans", "checks",
            "check_agreement", "errors_found")  # fmt: skip
    data: dict[str, list] = {key: [r[key] for r in runs] for key in keys}
    data["started_at"] = [r["started_at"].isoformat() for r in runs]
    return data


def loop_error_list(*, project: Project) -> QuerySet[ModelError]:
    """The project's error memory, most confident mistakes first."""
    return ModelError.objects.filter(project=project).select_related(
        "item", "version__registered_model"
    )


def loop_summary(*, project: Project) -> dict[str, Any]:
    """How the project's items are routed, and the size of the error memory."""
    routes = dict(
        ItemSuggestion.objects.filter(project=project)
        .values_list("route")
        .annotate(n=Count("id"))
        .values_list("route", "n")
    )
    return {
        "auto": routes.get("auto", 0),
        "check": routes.get("check", 0),
        "human": routes.get("human", 0),
        "errors": ModelError.objects.filter(project=project).count(),
        "retrainings": RetrainingRequest.objects.filter(project=project).count(),
    }


def item_suggestion_for_annotators(item: Item) -> dict[str, Any] | None:
    """annotation's suggestion provider: the model's pick for an item, except on check
    items (a check must be blind, or it would measure the model against itself)."""
    suggestion = (
        ItemSuggestion.objects.filter(item=item)
        .exclude(route=ItemSuggestion.Route.CHECK)
        .select_related("version__registered_model")
        .first()
    )
    if suggestion is None:
        return None
    return {
        "label": suggestion.label,
        "text": f"response {LABEL_NAMES[suggestion.label]} is better",
        "confidence": suggestion.confidence,
        "source": suggestion.version.ref,
    }


def project_loop_access(*, user, project_id: int, action: str) -> Project | None:
    """The project, if ``user`` may ``action`` its loop (report: read; change: write)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not access.user_can(user=user, action=action, obj=project):
        return None
    return project
