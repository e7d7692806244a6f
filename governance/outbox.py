"""The transactional outbox: queue Celery tasks that survive a broker outage.

Every app queues background work through :func:`outbox_task_enqueue`, by task *name*, in
the same database transaction as the change that needs the work::

    with transaction.atomic():
        job = ImportJob.objects.create(...)
        outbox_task_enqueue(task="annotation.import_job_run", kwargs={"job_id": job.pk},
                            subject=job)

The call writes an :class:`~governance.models.OutboxMessage` row, so the work is recorded
if and only if the change commits — no task for a rolled-back row, and no committed row
whose task was lost because Redis was down at that moment.  After the commit the web
process tries to send the transaction's rows at once, together, in one relay pass on one
broker connection (fast path, :class:`_CommitBatch`); whatever could not be sent, and every
delayed row, is sent by :func:`outbox_relay`, which each worker runs every
``OUTBOX_RELAY_INTERVAL`` seconds in a thread of its own (``rlhf_platform.celery``), so
the relay never depends on the broker to schedule itself.  While the broker is down the
rows stay pending with their last error; :func:`outbox_wait_reason` tells a job's page
why it still waits.

Rules for tasks queued this way (the models registry and monitoring too):

- a row may be sent more than once (a relay that dies between sending and marking the
  row sent), and Redis may redeliver a message: tasks must be idempotent — claim their
  row (``status`` from queued to running under a row lock) or be naturally repeatable;
- ``delay`` replaces Celery's ``countdown``: a countdown task sits unacknowledged in a
  worker's memory, and is lost with the worker; a delayed outbox row waits in the database;
- ``dedupe_key`` keeps at most one unsent row per key (a debounce: a burst of submissions
  queues one consensus recomputation);
- the message's Celery task id is the row's ``message_id``, so logs tie the two together.

Sent rows are kept ``OUTBOX_KEEP_SENT`` for inspection, then pruned by beat.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Model
from django.utils import timezone

from .models import OutboxMessage

logger = logging.getLogger(__name__)

OUTBOX_KEEP_SENT = timedelta(days=7)
RELAY_BATCH = 200
# A failed send is logged at most this often per process (an outage is one warning).
_WARN_EVERY = 30.0
_last_warning = {"at": float("-inf")}
_warning_lock = threading.Lock()


def _subject_ref(subject: Model | None) -> tuple[str, str]:
    if subject is None:
        return "", ""
    return subject._meta.label_lower, str(subject.pk)


def outbox_task_enqueue(
    *,
    task: str,
    args: Iterable[Any] = (),
    kwargs: dict[str, Any] | None = None,
    delay: float = 0,
    dedupe_key: str = "",
    subject: Model | None = None,
    queue: str = "",
) -> OutboxMessage | None:
    """Record a task to send after the caller's transaction commits.

    Returns the row, or None when ``dedupe_key`` already has an unsent row (nothing is
    added: the pending one will do).  Arguments must be JSON values.  ``queue`` overrides
    the task's routing (``CELERY_TASK_ROUTES``), e.g. for a GPU pool's own queue.
    """
    subject_type, subject_id = _subject_ref(subject)
    now = timezone.now()
    message = OutboxMessage(
        task=task,
        args=list(args),
        kwargs=dict(kwargs or {}),
        dedupe_key=dedupe_key,
        queue=queue,
        subject_type=subject_type,
        subject_id=subject_id,
        available_at=now + timedelta(seconds=delay),
    )
    if dedupe_key:
        # The read first: on the hot path the pending row usually exists, and a plain read
        # costs less than an insert that conflicts (and, on PostgreSQL, waits for the
        # transaction that inserted the row).
        pending = OutboxMessage.objects.filter(dedupe_key=dedupe_key, sent_at__isnull=True)
        if pending.exists():
            return None
        OutboxMessage.objects.bulk_create([message], ignore_conflicts=True)
        # A concurrent caller may have inserted the key first (the conflict was ignored).
        message = OutboxMessage.objects.filter(message_id=message.message_id).first()
        if message is None:
            return None
    else:
        message.save()
    if delay <= 0:
        batch = _commit_batch(transaction.get_connection())
        batch.message_ids.append(message.message_id)
        # robust: a broker or relay failure never fails the request whose change committed.
        transaction.on_commit(batch.send, robust=True)
    return message


class _CommitBatch:
    """The rows one transaction queued, sent together after it commits (the fast path).

    Every row still registers its own ``on_commit`` callback, so Django decides, row by
    row, whether the row's send runs: a rolled-back transaction or savepoint discards the
    callbacks registered inside it, exactly as it discards the rows.  All of a
    transaction's callbacks are this batch's :meth:`send`, though: the first to run sends
    every row gathered so far in one relay pass, on one broker connection, and the others
    find nothing left to do.  A row is therefore sent by its own callback or by an earlier
    one of the same transaction, after the outermost commit in both cases.
    """

    def __init__(self) -> None:
        self.message_ids: list[Any] = []

    def send(self) -> None:
        """Send the batch's rows now; whatever fails waits for the periodic relay."""
        message_ids, self.message_ids = self.message_ids, []
        # Rows of a rolled-back savepoint may still be listed: the relay reads the rows
        # from the database, so it does not find them.
        for start in range(0, len(message_ids), RELAY_BATCH):
            try:
                result = outbox_relay(message_ids=message_ids[start : start + RELAY_BATCH])
            except Exception as exc:  # never fail a request whose change committed
                _warn_send_failed(exc)
                return
            if result.error:  # the broker is down: no use trying the next chunk now
                return


def _commit_batch(connection: BaseDatabaseWrapper) -> _CommitBatch:
    """The batch of the connection's open transaction, or a new one.

    The batch is found among the transaction's pending ``on_commit`` callbacks rather than
    kept in a thread-local, so it can never outlive its transaction: Django empties that
    list when the transaction commits or rolls back and filters it when a savepoint rolls
    back, and a batch none of whose callbacks is left there is dropped with them.  (A
    thread-local batch whose one flush callback a rollback discarded would swallow every
    later row of the thread.)  The list belongs to the connection, which Django keeps per
    thread, so gthread workers' requests never share a batch.  Outside a transaction the
    callback runs at once, so each row is its own batch.  Which batch a row joins decides
    only how rows are grouped, never whether a row is sent: the row's own callback sends
    its batch.  (``run_on_commit`` holds Django's ``(savepoint ids, callback, robust)``
    entries; a test's ``captureOnCommitCallbacks`` runs them without removing them, and a
    batch so sent simply gathers the rows queued after.)
    """
    if connection.in_atomic_block:
        # The newest callback first: in a bulk loop it is the previous row's.
        for _savepoints, callback, _robust in reversed(connection.run_on_commit):
            if isinstance(getattr(callback, "__self__", None), _CommitBatch):
                return callback.__self__
    return _CommitBatch()


def _warn_send_failed(exc: BaseException) -> None:
    with _warning_lock:
        now = time.monotonic()
        if now - _last_warning["at"] < _WARN_EVERY:
            return
        _last_warning["at"] = now
    logger.warning("task broker unavailable, tasks stay in the outbox: %s", exc)


@dataclasses.dataclass(frozen=True)
class RelayResult:
    """What one relay pass did."""

    sent: int
    pending: int
    error: str = ""


def _broker_send(rows: list[OutboxMessage]) -> tuple[list[int], str]:
    """Publish rows in order on one fresh broker connection; stops at the first failure."""
    from rlhf_platform.celery import app

    sent: list[int] = []
    try:
        with app.connection_for_write() as conn:
            # Fail fast: the rows stay pending and the next pass tries again.
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)
            for row in rows:
                app.send_task(
                    row.task,
                    args=row.args,
                    kwargs=row.kwargs,
                    task_id=str(row.message_id),
                    queue=row.queue or None,
                    connection=conn,
                    retry=False,
                )
                sent.append(row.pk)
    except Exception as exc:
        return sent, f"{type(exc).__name__}: {exc}"[:1000]
    return sent, ""


def outbox_relay(
    *, message_ids: Iterable[Any] | None = None, limit: int = RELAY_BATCH
) -> RelayResult:
    """Send due outbox rows to the broker and mark them sent (oldest first).

    Rows are taken ``FOR UPDATE SKIP LOCKED``, so relays in several workers share the
    work without sending a row twice; a row whose send fails keeps its place, with the
    error, for the next pass.  ``message_ids`` limits the pass to given rows.
    """
    now = timezone.now()
    due = OutboxMessage.objects.filter(sent_at__isnull=True, available_at__lte=now)
    if message_ids is not None:
        due = due.filter(message_id__in=list(message_ids))
    # A read first: most passes find nothing, and on SQLite a write transaction would
    # take the database's write lock every second.
    if not due.exists():
        return RelayResult(sent=0, pending=0)
    with transaction.atomic():
        rows = list(due.select_for_update(skip_locked=True).order_by("id")[:limit])
        if not rows:
            return RelayResult(sent=0, pending=0)
        sent, error = _broker_send(rows)
        if sent:
            OutboxMessage.objects.filter(pk__in=sent).update(
                sent_at=now, attempts=F("attempts") + 1, last_attempt_at=now, last_error=""
            )
        failed = [row.pk for row in rows if row.pk not in set(sent)]
        if failed:
            OutboxMessage.objects.filter(pk__in=failed).update(
                attempts=F("attempts") + 1, last_attempt_at=now, last_error=error
            )
    if error:
        _warn_send_failed(RuntimeError(error))
    return RelayResult(sent=len(sent), pending=len(failed), error=error)


def outbox_wait_reason(*, subject: Model) -> str:
    """Why a subject's task has not reached a worker yet ("" when nothing is pending)."""
    subject_type, subject_id = _subject_ref(subject)
    row = (
        OutboxMessage.objects.filter(
            subject_type=subject_type, subject_id=subject_id, sent_at__isnull=True
        )
        .order_by("-id")
        .values("attempts", "last_error", "available_at")
        .first()
    )
    if row is None:
        return ""
    if row["last_error"]:
        return (
            "Waiting for the task broker, which cannot be reached "
            f"({row['attempts']} attempts; last error: {row['last_error']}). "
            "It is sent as soon as the broker is back."
        )
    return "Waiting to be sent to a worker."


def outbox_sent_before(*, subject: Model, before) -> bool:
    """Whether the subject's latest task went to the broker before ``before`` (and nothing
    newer waits): a subject still unclaimed long after that lost its message."""
    subject_type, subject_id = _subject_ref(subject)
    latest = (
        OutboxMessage.objects.filter(subject_type=subject_type, subject_id=subject_id)
        .order_by("-id")
        .values("sent_at")
        .first()
    )
    return bool(latest and latest["sent_at"] and latest["sent_at"] < before)


def outbox_prune(*, older_than: timedelta = OUTBOX_KEEP_SENT) -> int:
    """Delete rows sent longer ago than ``older_than``; returns how many."""
    cutoff = timezone.now() - older_than
    deleted, _ = OutboxMessage.objects.filter(sent_at__lt=cutoff).delete()
    return deleted
