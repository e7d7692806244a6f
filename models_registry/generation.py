"""Generation jobs: k responses per kept prompt of a set through a provider, on the
``generation`` queue, then pairs of them as items of an annotation project (services and
selectors).

Idempotency: a response is the row (job, prompt, sample index), written with an upsert, so
a rerun (a retry, the reaper's requeue of a dead worker's job, a redelivered task) asks
only for the samples that are missing or failed and never stores one twice; items carry
the external id ``gen<job>-p<prompt>-s<i>-s<j>`` and annotation's import skips ids it
holds, so pairing again creates nothing twice.

The HTTP work runs in :func:`models_registry.openai_compat.chat_stream` (a helper thread,
asyncio); this module writes its results in batches and polls for a cancel.  Annotation is
used only through its services and selectors.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from annotation import selectors as annotation_selectors
from annotation import services as annotation_services
from governance import access
from governance.outbox import outbox_task_enqueue
from governance.services import audit_event_record
from rlhf_platform.errors import Conflict
from rlhf_platform.spreadsheet import csv_writer
from rlhf_platform.validation import text_problem

from .generation_models import GeneratedResponse, GenerationJob, PromptSet, Provider
from .openai_compat import ChatRequest, ChatResult, StreamSummary, chat_stream
from .prompts import prompt_set_kept, settings_validate
from .providers import provider_endpoint

logger = logging.getLogger(__name__)

# name: (default, type, lowest, highest); a None default means "not sent".
SAMPLING_SETTINGS: dict[str, tuple[Any, type, float, float]] = {
    "temperature": (1.0, float, 0.0, 2.0),
    "top_p": (1.0, float, 0.0, 1.0),
    "max_tokens": (512, int, 1, 32768),
    "seed": (None, int, 0, 2**31 - 1),
}
K_MAX = 10
FLUSH_SECONDS = 0.5
FLUSH_ROWS = 500
ITEM_BATCH = 2000
# A running job whose heartbeat is older than this may be started again (its worker died).
STALE_SECONDS = 120
# Runs a job may have (its first, retries and the reaper's requeues) before the reaper,
# finding its worker dead again, fails it instead of queueing it once more.
GENERATION_JOB_MAX_RUNS = 3
RESULT_FIELDS = (
    "ok",
    "text",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    "attempts",
    "error",
)


def sampling_validate(sampling: dict[str, Any] | None) -> dict[str, Any]:
    """Sampling settings with defaults; a ValidationError names each bad one."""
    return settings_validate(values=sampling, spec=SAMPLING_SETTINGS, field="sampling")


def _pairs_validate(pairs: Any, k: int) -> list[list[int]]:
    if not isinstance(pairs, list) or not pairs:
        raise ValidationError({"pairs": ["list the pairs of sample indices, e.g. [[0, 1]]"]})
    clean: set[tuple[int, int]] = set()
    for index, pair in enumerate(pairs):
        if (
            not isinstance(pair, list | tuple)
            or len(pair) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
            or not all(0 <= v < k for v in pair)
            or pair[0] == pair[1]
        ):
            raise ValidationError(
                {f"pairs[{index}]": [f"must be two different sample indices from 0 to {k - 1}"]}
            )
        clean.add((min(pair), max(pair)))
    return [list(p) for p in sorted(clean)]


def generation_job_create(
    *,
    user,
    prompt_set: PromptSet,
    provider: Provider,
    k: int = 2,
    sampling: dict[str, Any] | None = None,
    concurrency: int = 8,
    max_retries: int = 4,
    token_cap: int | None = None,
    project_id: int | None = None,
    pairing: str = "",
    pairs: list | None = None,
    system_prompt: str = "",
) -> GenerationJob:
    """Queue a generation job on the ``generation`` queue (audited).

    With a project (which the user may change), responses are paired into its items:
    ``all`` pairs of a prompt's responses (the default) or the ``chosen`` pairs of sample
    indices.
    """
    errors: dict[str, list[str]] = {}
    if prompt_set.status != PromptSet.Status.READY:
        errors["prompt_set"] = [f"is {prompt_set.status}, not ready"]
    n_prompts = prompt_set_kept(prompt_set=prompt_set).count()
    if not n_prompts:
        errors["prompt_set"] = ["has no kept prompt (review it first)"]
    for name, value, low, high in (
        ("k", k, 1, K_MAX),
        ("concurrency", concurrency, 1, 256),
        ("max_retries", max_retries, 0, 10),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            errors[name] = [f"must be an integer from {low} to {high}"]
    if token_cap is not None and (
        isinstance(token_cap, bool)
        or not isinstance(token_cap, int)
        or not 1 <= token_cap <= 10**12
    ):
        errors["token_cap"] = ["must be a positive integer (or empty for no cap)"]
    if not isinstance(system_prompt, str) or len(system_prompt) > 20000:
        errors["system_prompt"] = ["at most 20000 characters"]
    elif problem := text_problem(system_prompt):
        errors["system_prompt"] = [problem]
    if errors:
        raise ValidationError(errors)
    clean_sampling = sampling_validate(sampling)
    project = None
    pairing = pairing or (GenerationJob.Pairing.ALL if project_id else GenerationJob.Pairing.NONE)
    if pairing not in GenerationJob.Pairing.values:
        raise ValidationError(
            {"pairing": [f"must be one of {', '.join(GenerationJob.Pairing.values)}"]}
        )
    clean_pairs: list[list[int]] = []
    if project_id is not None:
        project = (
            annotation_selectors.project_list(user=user, action="change")
            .filter(pk=project_id)
            .first()
        )
        if project is None:
            raise ValidationError({"project": ["no such project, or you may not add items to it"]})
        if pairing == GenerationJob.Pairing.NONE:
            raise ValidationError({"pairing": ["choose 'all' or 'chosen' to make items"]})
        if k < 2:
            raise ValidationError({"k": ["pairing needs at least 2 responses per prompt"]})
        if pairing == GenerationJob.Pairing.CHOSEN:
            clean_pairs = _pairs_validate(pairs, k)
    elif pairing != GenerationJob.Pairing.NONE:
        raise ValidationError({"project": ["choose the project that receives the items"]})
    with transaction.atomic():
        job = GenerationJob.objects.create(
            prompt_set=prompt_set,
            provider=provider,
            item_project=project,
            pairing=pairing,
            pairs=clean_pairs,
            k=k,
            sampling=clean_sampling,
            system_prompt=system_prompt,
            concurrency=concurrency,
            max_retries=max_retries,
            token_cap=token_cap,
            total=n_prompts * k,
            created_by=user,
        )
        audit_event_record(
            action="generation.queue",
            obj=job,
            after={
                "prompt_set": prompt_set.pk,
                "provider": provider.name,
                "k": k,
                "prompts": n_prompts,
                "sampling": clean_sampling,
                "concurrency": concurrency,
                "token_cap": token_cap,
                "project": project_id,
                "pairing": pairing,
            },
        )
        _enqueue(job)
    return job


def _enqueue(job: GenerationJob) -> None:
    outbox_task_enqueue(
        task="models_registry.generation_job_run",
        args=[job.pk],
        subject=job,
        dedupe_key=f"generation-job-{job.pk}-run-{job.runs}",
    )


@transaction.atomic
def generation_job_cancel(*, job: GenerationJob) -> GenerationJob:
    """Cancel: a queued job at once; a running one stops sending (those in flight finish)."""
    job = GenerationJob.objects.select_for_update().get(pk=job.pk)
    if job.finished:
        raise Conflict(f"status: the job has already {job.status}")
    before = job.status
    if job.status == GenerationJob.Status.QUEUED:
        job.status, job.finished_at = GenerationJob.Status.CANCELLED, timezone.now()
        job.message = "Cancelled before it started."
    job.cancel_requested = True
    job.save(update_fields=["status", "finished_at", "message", "cancel_requested"])
    audit_event_record(
        action="generation.cancel", obj=job, before={"status": before}, after={"status": job.status}
    )
    return job


@transaction.atomic
def generation_job_retry(*, job: GenerationJob, token_cap: int | None = None) -> GenerationJob:
    """Run a finished job again (or a running one whose worker stopped): only missing and
    failed responses are asked for, and pairing creates only missing items (audited).
    ``token_cap`` raises the cap (a job stopped at its cap)."""
    job = GenerationJob.objects.select_for_update().get(pk=job.pk)
    stale = timezone.now() - timedelta(seconds=STALE_SECONDS)
    if not job.finished and not (
        job.status == GenerationJob.Status.RUNNING
        and (job.heartbeat_at is None or job.heartbeat_at < stale)
    ):
        raise Conflict(f"status: the job is {job.status}; retry a finished job")
    if token_cap is not None:
        if isinstance(token_cap, bool) or not isinstance(token_cap, int) or token_cap < 1:
            raise ValidationError({"token_cap": ["must be a positive integer"]})
        job.token_cap = token_cap
    before = job.status
    job.status, job.cancel_requested, job.finished_at = GenerationJob.Status.QUEUED, False, None
    job.total = prompt_set_kept(prompt_set=job.prompt_set).count() * job.k
    job.save(update_fields=["status", "cancel_requested", "finished_at", "token_cap", "total"])
    audit_event_record(
        action="generation.retry",
        obj=job,
        before={"status": before},
        after={"status": job.status, "token_cap": job.token_cap},
    )
    _enqueue(job)
    return job


def generation_jobs_reap() -> dict[str, int]:
    """Requeue, fail or cancel running jobs whose worker died (scheduled by beat, on the
    ``default`` queue, so it works while no generation worker is alive).

    A running job is abandoned when its worker instance has sent no heartbeat for
    ``WORKER_HEARTBEAT_MAX_AGE`` seconds and the job no progress for as long (as
    ``annotation.services.import_jobs_reap`` decides), or when the job itself wrote no
    progress for ``STALE_SECONDS`` (a worker of no known instance).  A rerun asks only for
    the missing and failed responses, so an abandoned job is queued again, up to
    ``GENERATION_JOB_MAX_RUNS`` runs; then it fails.  One whose cancel was asked is
    cancelled.  Each is audited (``generation.reaped``).  Returns counts by outcome.
    """
    from governance.selectors import worker_heartbeat_cutoff, worker_heartbeats_alive

    now = timezone.now()
    alive_since = worker_heartbeat_cutoff(now=now)
    alive = worker_heartbeats_alive(now=now).values("instance")
    running = GenerationJob.objects.filter(status=GenerationJob.Status.RUNNING)
    vanished = (
        running.exclude(worker="").exclude(worker__in=alive).filter(heartbeat_at__lt=alive_since)
    )
    stale = running.filter(
        Q(heartbeat_at__lt=now - timedelta(seconds=STALE_SECONDS)) | Q(heartbeat_at=None)
    )
    counts = {"requeued": 0, "failed": 0, "cancelled": 0}
    for job_id in sorted(
        set(vanished.values_list("pk", flat=True)) | set(stale.values_list("pk", flat=True))
    ):
        with transaction.atomic():
            # Locked and read again: a job that finished (or was retried) meanwhile stays.
            job = (
                GenerationJob.objects.select_for_update()
                .filter(pk=job_id, status=GenerationJob.Status.RUNNING)
                .first()
            )
            if job is None:
                continue
            gone = job.worker or "an unknown worker"
            stopped = f"The worker running this job ({gone}) stopped"
            kept = f"{job.succeeded} of {job.total} responses kept"
            if job.cancel_requested:
                job.status, job.finished_at = GenerationJob.Status.CANCELLED, now
                job.message = f"Cancelled: the worker running it ({gone}) stopped; {kept}."
            elif job.runs < GENERATION_JOB_MAX_RUNS:
                job.status, job.heartbeat_at = GenerationJob.Status.QUEUED, None
                job.message = f"{stopped}; {kept}. Queued again for the rest."
            else:
                job.status, job.finished_at = GenerationJob.Status.FAILED, now
                job.message = (
                    f"{stopped}, after {job.runs} runs; {kept}. Retry it to ask for the rest."
                )
            job.save(update_fields=["status", "finished_at", "heartbeat_at", "message"])
            if job.status == GenerationJob.Status.QUEUED:
                _enqueue(job)
                counts["requeued"] += 1
            else:
                counts[job.status] += 1
            audit_event_record(
                action="generation.reaped",
                obj=job,
                before={"status": GenerationJob.Status.RUNNING},
                after={"status": job.status, "worker": gone, "runs": job.runs},
            )
    return counts


def _claim(job_id: int, worker: str) -> GenerationJob | None:
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != GenerationJob.Status.QUEUED:
            return None
        now = timezone.now()
        job.status, job.started_at, job.heartbeat_at = GenerationJob.Status.RUNNING, now, now
        job.worker, job.runs, job.message = worker[:255], job.runs + 1, ""
        job.save(
            update_fields=["status", "started_at", "heartbeat_at", "worker", "runs", "message"]
        )
        audit_event_record(
            action="generation.start", obj=job, after={"worker": job.worker, "run": job.runs}
        )
    return job


def _requests(job: GenerationJob) -> Iterator[ChatRequest]:
    """The chat requests still to make: kept prompts × sample indices without a response.

    The rows are read here, in the caller's thread; the returned generator is pure Python,
    because the HTTP loop that consumes it runs in another thread (no database there).
    """
    done = set(job.responses.filter(ok=True).values_list("prompt_id", "sample_index"))
    kept = list(prompt_set_kept(prompt_set=job.prompt_set).values_list("pk", "text"))
    sampling, k = dict(job.sampling), job.k
    prefix = [{"role": "system", "content": job.system_prompt}] if job.system_prompt else []
    seed = sampling.get("seed")

    def build() -> Iterator[ChatRequest]:
        for prompt_id, text in kept:
            for index in range(k):
                if (prompt_id, index) in done:
                    continue
                # A seed per sample, so a prompt's k samples differ yet can be reproduced.
                yield ChatRequest(
                    key=(prompt_id, index),
                    messages=[*prefix, {"role": "user", "content": text}],
                    temperature=sampling.get("temperature"),
                    top_p=sampling.get("top_p"),
                    max_tokens=sampling.get("max_tokens"),
                    seed=None if seed is None else seed + index,
                )

    return build()


def _flush(job: GenerationJob, batch: list[ChatResult], summary: StreamSummary) -> bool:
    """Write a batch of results and the job's progress; answers whether a cancel is asked."""
    from rlhf_platform.db import bulk_upsert

    now = timezone.now()
    if batch:
        rows = [
            {
                "job_id": job.pk,
                "prompt_id": r.key[0],
                "sample_index": r.key[1],
                **{f: getattr(r, f) for f in RESULT_FIELDS},
                "updated_at": now,
            }
            for r in batch
        ]
        bulk_upsert(
            model=GeneratedResponse,
            rows=rows,
            conflict_fields=["job_id", "prompt_id", "sample_index"],
            update_fields=[*RESULT_FIELDS, "updated_at"],
        )
    counts = job.responses.aggregate(
        n_ok=Count("pk", filter=Q(ok=True)), n_bad=Count("pk", filter=Q(ok=False))
    )
    GenerationJob.objects.filter(pk=job.pk).update(
        succeeded=counts["n_ok"],
        failed=counts["n_bad"],
        tokens_used=summary.tokens,
        requests_sent=job.requests_sent + summary.sent,
        retries=job.retries + summary.retries,
        heartbeat_at=now,
    )
    return GenerationJob.objects.filter(pk=job.pk, cancel_requested=True).exists()


def _finish(job_id: int, status: str, message: str) -> GenerationJob:
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job_id)
        before = job.status
        job.status, job.message, job.finished_at = status, message[:5000], timezone.now()
        job.save(update_fields=["status", "message", "finished_at"])
        audit_event_record(
            action=f"generation.{status}",
            obj=job,
            before={"status": before},
            after={
                "status": status,
                "succeeded": job.succeeded,
                "failed": job.failed,
                "tokens_used": job.tokens_used,
                "items_created": job.items_created,
            },
        )
    return job


def generation_job_run(*, job_id: int, worker: str = "") -> GenerationJob | None:
    """Run a queued job (the worker's side).  A job that is not queued is left alone, so a
    redelivered task never runs twice at once; any failure ends the job as failed."""
    job = _claim(job_id, worker)
    if job is None:
        return GenerationJob.objects.filter(pk=job_id).first()
    try:
        return _generate(job)
    except Exception as exc:
        logger.exception("generation job %s failed", job.pk)
        return _finish(job.pk, GenerationJob.Status.FAILED, f"{type(exc).__name__}: {exc}")


def _generate(job: GenerationJob) -> GenerationJob:
    provider = job.provider
    summary = StreamSummary(tokens=job.tokens_used)  # the cap counts earlier runs too
    stop = threading.Event()
    batch: list[ChatResult] = []
    last_flush = time.monotonic()
    cancelled = False
    for result in chat_stream(
        endpoint=provider_endpoint(provider=provider),
        requests=_requests(job),
        concurrency=min(job.concurrency, provider.max_concurrency),
        max_retries=job.max_retries,
        backoff_base=settings.GENERATION_BACKOFF_BASE,
        token_cap=job.token_cap,
        tokens_used=job.tokens_used,
        stop=stop,
        summary=summary,
    ):
        if result is not None:
            batch.append(result)
        if len(batch) >= FLUSH_ROWS or time.monotonic() - last_flush >= FLUSH_SECONDS:
            if _flush(job, batch, summary):
                cancelled = True
                stop.set()
            batch, last_flush = [], time.monotonic()
    _flush(job, batch, summary)
    job.refresh_from_db()
    if cancelled or job.cancel_requested:
        return _finish(
            job.pk,
            GenerationJob.Status.CANCELLED,
            f"Cancelled: {job.succeeded} responses kept, {job.failed} errors.",
        )
    if job.item_project_id:
        created = generation_items_create(job=job)
        GenerationJob.objects.filter(pk=job.pk).update(items_created=job.items_created + created)
    if summary.stopped == "token cap":
        return _finish(
            job.pk,
            GenerationJob.Status.STOPPED,
            f"Stopped at the token cap ({job.token_cap:,} tokens; {job.tokens_used:,} used): "
            f"{job.succeeded} of {job.total} responses. Retry with a higher cap to go on.",
        )
    if job.succeeded == 0 and job.failed:
        return _finish(
            job.pk,
            GenerationJob.Status.FAILED,
            f"Every request failed ({job.failed} errors); see the results.",
        )
    return _finish(
        job.pk, GenerationJob.Status.SUCCEEDED, f"{job.succeeded} responses, {job.failed} errors."
    )


def _pair_indices(job: GenerationJob, present: list[int]) -> list[tuple[int, int]]:
    if job.pairing == GenerationJob.Pairing.CHOSEN:
        have = set(present)
        return [(i, j) for i, j in job.pairs if i in have and j in have]
    return list(itertools.combinations(sorted(present), 2))


def generation_items_create(*, job: GenerationJob) -> int:
    """Pair the job's responses into items of its project (through annotation's import);
    returns how many items are new.  Items that exist (same external id) are skipped."""
    if job.item_project_id is None or job.pairing == GenerationJob.Pairing.NONE:
        return 0
    project = job.item_project
    by_prompt: dict[int, dict[int, GeneratedResponse]] = {}
    responses = (
        job.responses.filter(ok=True).select_related("prompt").order_by("prompt_id", "sample_index")
    )
    for response in responses.iterator():
        if response.text.strip():
            by_prompt.setdefault(response.prompt_id, {})[response.sample_index] = response
    rows: list[dict[str, Any]] = []
    created = 0
    model = job.provider.model_name
    for prompt_id, samples in by_prompt.items():
        for i, j in _pair_indices(job, list(samples)):
            a, b = samples[i], samples[j]
            rows.append(
                {
                    "external_id": f"gen{job.pk}-p{prompt_id}-s{i}-s{j}",
                    "prompt": a.prompt.text,
                    "responses": [
                        {
                            "text": r.text,
                            "model": model,
                            "metadata": {
                                "generation_job": job.pk,
                                "sample_index": r.sample_index,
                                "response_id": r.pk,
                                "finish_reason": r.finish_reason,
                            },
                        }
                        for r in (a, b)
                    ],
                    "metadata": {
                        "source": "generation",
                        "generation_job": job.pk,
                        "prompt_set": job.prompt_set_id,
                        "prompt_id": prompt_id,
                        "samples": [i, j],
                    },
                }
            )
            if len(rows) >= ITEM_BATCH:
                created += annotation_services.items_create_bulk(project=project, rows=rows).created
                rows = []
                # Progress, for the reaper: a long pairing is not a dead worker.
                GenerationJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    if rows:
        created += annotation_services.items_create_bulk(project=project, rows=rows).created
    return created


# ----------------------------------------------------------------------------------------
# Reads
# ----------------------------------------------------------------------------------------


def generation_job_list(*, user) -> QuerySet[GenerationJob]:
    """Generation jobs the user may read, newest first."""
    return access.queryset_restrict(
        queryset=GenerationJob.objects.select_related("prompt_set", "provider", "created_by"),
        user=user,
    )


def generation_job_summary(*, job: GenerationJob) -> dict[str, Any]:
    """Progress and figures of a job (what its page polls): no secret in it."""
    stats = job.responses.filter(ok=True).aggregate(
        prompt_tokens=Sum("prompt_tokens"), completion_tokens=Sum("completion_tokens")
    )
    return {
        "id": job.pk,
        "status": job.status,
        "percent": job.percent,
        "total": job.total,
        "succeeded": job.succeeded,
        "failed": job.failed,
        "requests_sent": job.requests_sent,
        "retries": job.retries,
        "tokens_used": job.tokens_used,
        "token_cap": job.token_cap,
        "items_created": job.items_created,
        "message": job.message,
        "finished": job.finished,
        "prompt_tokens": stats["prompt_tokens"] or 0,
        "completion_tokens": stats["completion_tokens"] or 0,
    }


EXPORT_COLUMNS = ("prompt_id", "topic", "prompt", "sample_index", *RESULT_FIELDS)


def generation_results(*, job: GenerationJob) -> Iterator[dict[str, Any]]:
    """One dict per response of the job (``EXPORT_COLUMNS``), in prompt and sample order."""
    rows = job.responses.select_related("prompt").order_by(
        "prompt__position", "prompt_id", "sample_index"
    )
    for r in rows.iterator(chunk_size=1000):
        yield {
            "prompt_id": r.prompt_id, "topic": r.prompt.topic, "prompt": r.prompt.text,
            "sample_index": r.sample_index, **{f: getattr(r, f) for f in RESULT_FIELDS},
        }  # fmt: skip


def _job_header(job: GenerationJob) -> dict[str, Any]:
    """What a download says about its job: settings and provider, never the API key."""
    return {
        "id": job.pk,
        "status": job.status,
        "prompt_set": job.prompt_set_id,
        "provider": {
            "name": job.provider.name,
            "base_url": job.provider.base_url,
            "model": job.provider.model_name,
        },
        "k": job.k,
        "sampling": job.sampling,
        "system_prompt": job.system_prompt,
        "token_cap": job.token_cap,
        "tokens_used": job.tokens_used,
        "project": job.item_project_id,
        "pairing": job.pairing,
        "pairs": job.pairs,
    }


def generation_results_json(*, job: GenerationJob) -> Iterator[str]:
    """The job's results as one JSON document, streamed: ``{"job": {...}, "responses":
    [...]}``."""
    yield '{"job": ' + json.dumps(_job_header(job), ensure_ascii=False) + ', "responses": ['
    for index, row in enumerate(generation_results(job=job)):
        yield ("," if index else "") + "\n" + json.dumps(row, ensure_ascii=False)
    yield "\n]}\n"


class _Line:
    """A file-like that keeps what one ``csv`` row wrote."""

    def __init__(self):
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text


def generation_results_csv(*, job: GenerationJob) -> Iterator[str]:
    """The job's results as CSV (one row per response), streamed, spreadsheet-safe."""
    line = _Line()
    writer = csv_writer(line)
    writer.writerow(EXPORT_COLUMNS)
    yield line.text
    for row in generation_results(job=job):
        line.text = ""
        writer.writerow([int(row[c]) if c == "ok" else row[c] for c in EXPORT_COLUMNS])
        yield line.text
