"""Annotation writes: projects and membership, imports, assignment, submission, skips,
adjudication, consensus recomputation and dataset exports.

Rules that hold everywhere here:

- every state change is audited through ``governance.services.audit_event_record`` in its
  own transaction — except a new annotation, which is itself an append-only record with
  its author and time and stays off the audit chain (the hot write path);
- imports are all-or-nothing: any invalid row rejects the whole file, with line numbers,
  and nothing is written; re-importing rows whose ``external_id`` already exists in the
  project skips them, so a retried import never duplicates;
- a retried submission with the same idempotency key returns the original annotation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import queue
import random
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from guardian.shortcuts import assign_perm, get_user_perms, remove_perm

from governance import access, security_audit
from governance.outbox import outbox_sent_before, outbox_task_enqueue
from governance.services import audit_event_record
from rlhf_platform.db import bulk_upsert
from rlhf_platform.validation import texts_validate

from . import importers, schema
from .errors import (
    AssignmentConflict,
    IdempotencyConflict,
    ItemImportError,
    ProjectClosed,
    RowError,
)
from .importers.redaction import Redactor, redact_row_texts
from .models import Adjudication, Annotation, Assignment, ImportJob, Item, ItemConsensus, Project
from .selectors import project_item_count_forget

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------
# Projects and membership
# ----------------------------------------------------------------------------------------

PROJECT_FIELDS = (
    "name",
    "guidelines",
    "question_schema",
    "overlap",
    "gold_ratio",
    "blind",
    "lock_ttl_seconds",
    "skip_policy",
    "status",
    # Data protection: PII redaction on import and the retention policy.
    "pii_detectors",
    "retention_days",
    "archive_retention_days",
    "show_suggestions",
)

# Which object permissions each project role grants.  ``report`` reads the agreement and
# annotator-quality figures; ``export`` the datasets, which hold every answer and the gold
# answers; a viewer reads the project and its reports and changes nothing.
MEMBER_PERMISSIONS = {
    "annotator": ["view_project", "annotate_project"],
    "reviewer": ["view_project", "review_project", "report_project"],
    "researcher": [
        "view_project",
        "change_project",
        "review_project",
        "export_project",
        "report_project",
    ],
    "viewer": ["view_project", "report_project"],
}


def _project_snapshot(project: Project) -> dict[str, Any]:
    return {name: getattr(project, name) for name in PROJECT_FIELDS}


def _project_validate(project: Project) -> None:
    texts_validate(name=project.name, guidelines=project.guidelines)
    project.question_schema = schema.question_schema_validate(project.question_schema)
    if project.pii_detectors is None:
        raise ValidationError({"pii_detectors": ["must be a list (empty for none)"]})
    project.full_clean(exclude=["created_by", "pseudonym_key"])


@transaction.atomic
def project_create(
    *, created_by, name: str, question_schema: dict | None = None, **options: Any
) -> Project:
    """Create a project; its creator becomes a researcher member of it."""
    unknown = set(options) - set(PROJECT_FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: ["unknown project setting"]})
    project = Project(
        name=name,
        question_schema=question_schema if question_schema is not None else schema.DEFAULT_SCHEMA,
        created_by=created_by,
        **options,
    )
    _project_validate(project)
    project.save()
    audit_event_record(action="project.create", obj=project, after=_project_snapshot(project))
    if created_by is not None:
        project_member_add(project=project, user=created_by, role="researcher")
    return project


@transaction.atomic
def project_update(*, project: Project, **changes: Any) -> Project:
    """Change project settings (audited with before and after)."""
    unknown = set(changes) - set(PROJECT_FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: ["unknown project setting"]})
    project = Project.objects.select_for_update().get(pk=project.pk)
    before = _project_snapshot(project)
    for name, value in changes.items():
        setattr(project, name, value)
    _project_validate(project)
    # The archive-retention clock starts when the project is archived.
    if project.status == Project.Status.ARCHIVED and before["status"] != project.status:
        project.archived_at = timezone.now()
    elif project.status != Project.Status.ARCHIVED:
        project.archived_at = None
    project.save()
    after = _project_snapshot(project)
    changed = {k for k in after if after[k] != before[k]}
    if changed:
        audit_event_record(
            action="project.update",
            obj=project,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return project


def _member_permissions(role: str) -> list[str]:
    if role not in MEMBER_PERMISSIONS:
        raise ValidationError({"role": [f"must be one of {', '.join(MEMBER_PERMISSIONS)}"]})
    return MEMBER_PERMISSIONS[role]


@transaction.atomic
def project_member_add(*, project: Project, user, role: str) -> None:
    """Grant a user a role in one project (object permissions; audited)."""
    with security_audit.silenced():  # one member_add event, not one per permission row
        for codename in _member_permissions(role):
            assign_perm(f"annotation.{codename}", user, project)
    access.permissions_cache_clear(user=user)
    audit_event_record(
        action="project.member_add", obj=project, after={"user": user.get_username(), "role": role}
    )


@transaction.atomic
def project_member_remove(*, project: Project, user, role: str) -> None:
    """Withdraw a project role from a user, keeping what their other roles there need
    (audited).

    Roles share permissions (``view_project``, ``report_project``) and memberships are stored
    only as permissions, so the user's other roles are read back from them: a role is still
    held when the user has all of its permissions and they are not all part of the removed
    role (a role inside it, as viewer is inside reviewer, cannot be told apart from it and
    goes with it).
    """
    removed = set(_member_permissions(role))
    held = set(get_user_perms(user, project))
    still_needed = set()
    for other, permissions in MEMBER_PERMISSIONS.items():
        if other != role and held >= set(permissions) and not removed >= set(permissions):
            still_needed.update(permissions)
    with security_audit.silenced():  # one member_remove event, not one per permission row
        for codename in sorted(removed - still_needed):
            remove_perm(f"annotation.{codename}", user, project)
    access.permissions_cache_clear(user=user)
    audit_event_record(
        action="project.member_remove",
        obj=project,
        before={"user": user.get_username(), "role": role},
    )


# ----------------------------------------------------------------------------------------
# Items and imports
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    rows: int
    created: int
    skipped_existing: int
    # What PII redaction replaced, per detector (counts only: the text is never kept).
    redactions: dict[str, int] = dataclasses.field(default_factory=dict)


MAX_REPORTED_ERRORS = 1000


def _gold_answer(
    project_schema: dict, gold: dict | None, responses: list[dict]
) -> tuple[dict | None, str | None]:
    """Normalise an import row's gold answer to a full answer of the primary question."""
    if not gold:
        return None, None
    primary = schema.primary_question(project_schema)
    if primary is None:
        return None, "gold: the project has no pairwise, ranking or rating question"
    if primary["name"] in gold:
        value = gold[primary["name"]]
    elif primary["type"] == "pairwise" and "choice" in gold:
        value = {k: v for k, v in gold.items() if k in ("choice", "strength")}
    elif primary["type"] == "ranking" and "ranking" in gold:
        value = gold["ranking"]
    elif primary["type"] == "rating" and "rating" in gold:
        value = gold["rating"]
    else:
        return None, f"gold: expected an answer for question {primary['name']!r}"
    try:
        schema._validate_one(primary, value, responses, "gold")
    except ValidationError as exc:
        field, reasons = next(iter(exc.message_dict.items()))
        return None, f"{field}: {reasons[0]}"
    return {primary["name"]: value}, None


def _shuffled(row: importers.ParsedRow) -> tuple[list[dict], dict, dict | None]:
    """Present a TRL pair in a stable random order, so "chosen" is not always response A.

    The original preference is kept in metadata as ``source_preference`` (never shown to
    annotators) and a gold choice is swapped with the responses, both in terms of the
    stored order.
    """
    responses, metadata, gold = row.responses, dict(row.metadata), row.gold
    # The parity of the SHA-256 as an integer: the low bit of its last byte.
    flip = hashlib.sha256(row.external_id.encode()).digest()[-1] & 1
    if metadata.get("source_preference") == "A" and len(responses) == 2 and flip:
        responses = [responses[1], responses[0]]
        metadata["source_preference"] = "B"
        if gold and gold.get("choice") in ("A", "B"):
            gold = {**gold, "choice": "B" if gold["choice"] == "A" else "A"}
    return responses, metadata, gold


def _import_batches(
    rows_iter,
    project: Project,
    now,
    batch_size: int,
    errors: list[RowError],
    redactor: Redactor,
) -> Iterator[tuple[int, list[dict[str, Any]], bool]]:
    """Validate and shape parsed rows: yields ``(rows_seen, good_rows, truncated)`` per batch.

    Pure Python (no database), so it can run in a thread beside the inserts.  Appends to
    ``errors``; once there is an error no further rows are shaped, only checked.  Texts
    pass through the project's PII ``redactor`` before anything is stored.
    """
    project_schema = project.question_schema
    project_id = project.pk
    rows = 0
    for batch in importers.iter_batches(rows_iter, batch_size):
        good: list[dict[str, Any]] = []
        truncated = False
        for row in batch:
            rows += 1
            if row.error is None:
                responses, metadata, gold = _shuffled(row)
                gold_answer, gold_error = _gold_answer(project_schema, gold, responses)
                if gold_error is None:
                    if not errors:
                        prompt = row.prompt
                        if redactor:
                            prompt, responses, metadata = redact_row_texts(
                                redactor, prompt, responses, metadata
                            )
                        good.append(
                            {
                                "project_id": project_id,
                                "external_id": row.external_id,
                                "prompt": prompt,
                                "responses": responses,
                                "metadata": metadata,
                                "priority": row.priority,
                                "is_gold": gold_answer is not None,
                                "gold_answer": gold_answer,
                                "n_assigned": 0,
                                "n_submitted": 0,
                                "assignable": True,
                                "created_at": now,
                            }
                        )
                    continue
                row.error = gold_error
            errors.append(RowError(row.line, row.error))
            if len(errors) >= MAX_REPORTED_ERRORS:
                truncated = True
                break
        yield rows, good, truncated
        if truncated:
            return


_DONE = object()


def _in_thread(iterator: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Run ``iterator`` in a helper thread, up to ``depth`` items ahead of the consumer.

    Lets parsing (pure Python) overlap the database round trips of the inserts, which
    release the GIL while they wait.  Exceptions are re-raised in the consumer; closing
    the consumer stops the producer.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for value in iterator:
                while not stop.is_set():
                    try:
                        buffer.put((value, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer
            buffer.put((_DONE, exc))

    thread = threading.Thread(target=produce, name="items-import-parser", daemon=True)
    thread.start()
    try:
        while True:
            value, exc = buffer.get()
            if value is _DONE:
                if exc is not None:
                    raise exc
                return
            yield value
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                buffer.get_nowait()
        thread.join()


def items_import(
    *, project: Project, file: IO[bytes] | IO[str], fmt: str = "auto", batch_size: int = 20000
) -> ImportResult:
    """Stream a file of items into a project, all-or-nothing (see the module docstring).

    Rows are parsed and inserted batch by batch inside one transaction, so memory stays
    flat for any file size; the first invalid row stops inserting, parsing goes on to
    report up to 1,000 invalid rows, and the transaction is rolled back.  Parsing runs in
    a helper thread a couple of batches ahead of the inserts.
    """
    errors: list[RowError] = []
    rows = 0
    truncated = False
    inserted = 0
    now = timezone.now()
    # Arguments are checked here, in the caller's thread (a bad format raises ValueError).
    parsed = importers.parse_rows(file, fmt, max_responses=importers.MAX_RESPONSES)
    redactor = Redactor(project.pii_detectors or (), phone_region=settings.PII_PHONE_REGION)
    exact_counts = connection.vendor == "postgresql"
    with transaction.atomic():
        count_before = 0 if exact_counts else Item.objects.filter(project=project).count()
        for seen, good, batch_truncated in _in_thread(
            _import_batches(parsed, project, now, batch_size, errors, redactor), depth=1
        ):
            rows, truncated = seen, truncated or batch_truncated
            if good and not errors:
                inserted += bulk_upsert(
                    model=Item, rows=good, conflict_fields=["project_id", "external_id"]
                )
        if errors:
            raise_import_error = ItemImportError(errors, truncated=truncated)
            transaction.set_rollback(True)
        else:
            raise_import_error = None
            # PostgreSQL reports exactly how many rows the merge inserted.
            created = (
                inserted
                if exact_counts
                else Item.objects.filter(project=project).count() - count_before
            )
            # Counted over every row read, the skipped ones too: the file held that much.
            redactions = dict(sorted(redactor.counts.items()))
            audit_event_record(
                action="items.import",
                obj=project,
                after={
                    "format": fmt,
                    "rows": rows,
                    "created": created,
                    "skipped_existing": rows - created,
                    "redactions": redactions,
                },
            )
    if raise_import_error is not None:
        raise raise_import_error
    project_item_count_forget(project_id=project.pk)
    return ImportResult(
        rows=rows, created=created, skipped_existing=rows - created, redactions=redactions
    )


def items_create_bulk(*, project: Project, rows: list[dict[str, Any]]) -> ImportResult:
    """Create items from a list of native rows (the API's bulk create); same rules as imports."""
    if not isinstance(rows, list) or not rows:
        raise ValidationError({"items": ["must be a non-empty list of items"]})
    buffer = io.StringIO("\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n")
    return items_import(project=project, file=buffer, fmt="jsonl")


@transaction.atomic
def items_routing_set(
    *, project: Project, routes: dict[int, tuple[float, bool]], reason: str
) -> int:
    """Set items' assignment ``priority`` and whether they are ``assignable`` to
    annotators: ``routes`` maps item ids of the project to ``(priority, assignable)``.

    Annotation does not know why (another app's routing, e.g. the RLHF loop's active
    learning); ``reason`` names it in the audit event.  One audit event per call, with
    counts, not one per item.  Returns how many items changed.
    """
    if not routes:
        return 0
    items = list(
        Item.objects.filter(project=project, pk__in=list(routes)).only(
            "pk", "priority", "assignable"
        )
    )
    for item in items:
        item.priority, item.assignable = routes[item.pk]
        item.priority = float(item.priority)
    Item.objects.bulk_update(items, ["priority", "assignable"], batch_size=500)
    held = sum(1 for item in items if not item.assignable)
    audit_event_record(
        action="items.routing_set",
        obj=project,
        after={"items": len(items), "held": held, "reason": reason[:200]},
    )
    return len(items)


# ----------------------------------------------------------------------------------------
# Assignment
# ----------------------------------------------------------------------------------------


def _item_slot_release(item_id: int) -> None:
    """An assignment that will not be submitted gives its item's slot back."""
    Item.objects.filter(pk=item_id, n_assigned__gt=0).update(n_assigned=F("n_assigned") - 1)


def assignment_reclaim_expired(*, project: Project | None = None) -> int:
    """Turn expired locks into ``expired`` assignments and free their items' slots."""
    now = timezone.now()
    with transaction.atomic():
        expired = Assignment.objects.filter(status=Assignment.Status.LOCKED, expires_at__lte=now)
        if project is not None:
            expired = expired.filter(project=project)
        rows = list(expired.select_for_update(skip_locked=True).values_list("pk", "item_id")[:1000])
        if not rows:
            return 0
        Assignment.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            status=Assignment.Status.EXPIRED
        )
        for _, item_id in rows:
            _item_slot_release(item_id)
        return len(rows)


def _open_item(project: Project, annotator, *, gold: bool) -> Item | None:
    taken = Assignment.objects.filter(item=OuterRef("pk"), annotator=annotator).exclude(
        status=Assignment.Status.EXPIRED
    )
    # `is_gold__in` rather than `is_gold=`: Django writes the latter as `NOT is_gold`, which
    # SQLite cannot match to the item_assignment_order index (it then sorts every item).
    candidates = Item.objects.filter(
        project=project, is_gold__in=[gold], assignable__in=[True]
    ).filter(~Exists(taken))
    if not gold:
        # Gold items are quality checks every annotator may see; real items stop at N.
        candidates = candidates.filter(n_assigned__lt=project.overlap)
    # SKIP LOCKED: concurrent annotators never wait on (or double-book) the same row; the
    # n_assigned condition is re-checked on the locked row (PostgreSQL EvalPlanQual).
    return (
        candidates.order_by("-priority", "-n_assigned", "id")
        .select_for_update(skip_locked=True, of=("self",))
        .first()
    )


def _live_assignment(project: Project, annotator) -> Assignment | None:
    """The annotator's unexpired lock in the project, if any."""
    return (
        Assignment.objects.filter(
            project=project,
            annotator=annotator,
            status=Assignment.Status.LOCKED,
            expires_at__gt=timezone.now(),
        )
        .select_related("item")
        .first()
    )


def _annotator_serialise(project: Project, annotator) -> None:
    """Make one annotator's assignment requests in a project wait for each other until the
    current transaction ends.

    Two ``next`` calls of one annotator (a double click, two tabs, a client retry) would
    otherwise both find no live lock and, SKIP LOCKED passing each by the other's row,
    lock two items.  PostgreSQL: a transaction-scoped advisory lock keyed on both ids, so
    other annotators never wait.  SQLite: nothing to do, every transaction is IMMEDIATE and
    already holds the database's write lock.
    """
    if connection.vendor != "postgresql":
        return
    name = f"annotation.assignment:{project.pk}:{annotator.pk}".encode()
    key = int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _assignment_lock(project: Project, annotator, *, want_gold: bool) -> Assignment | None:
    """Lock one open item for the annotator (or return the lock a concurrent request of
    theirs just took), in one short transaction."""
    now = timezone.now()
    for _attempt in range(3):
        try:
            with transaction.atomic():
                _annotator_serialise(project, annotator)
                # Re-checked under the lock: the request we waited for may have locked one.
                live = _live_assignment(project, annotator)
                if live is not None:
                    return live
                item = _open_item(project, annotator, gold=True) if want_gold else None
                if item is None:
                    item = _open_item(project, annotator, gold=False)
                if item is None:
                    return None
                assignment = Assignment(
                    project=project,
                    item=item,
                    annotator=annotator,
                    status=Assignment.Status.LOCKED,
                    locked_at=now,
                    expires_at=now + timedelta(seconds=project.lock_ttl_seconds),
                    skip_reason="",
                )
                # One statement: a new row, or this annotator's own expired row (the only
                # kind the candidate query lets through) taken over again.
                Assignment.objects.bulk_create(
                    [assignment],
                    update_conflicts=True,
                    unique_fields=["item", "annotator"],
                    update_fields=["project", "status", "locked_at", "expires_at", "skip_reason"],
                )
                Item.objects.filter(pk=item.pk).update(n_assigned=F("n_assigned") + 1)
                item.n_assigned += 1
                return assignment
        except IntegrityError:
            # A concurrent request of the same annotator won a race: use its lock.
            live = (
                Assignment.objects.filter(
                    project=project, annotator=annotator, status=Assignment.Status.LOCKED
                )
                .select_related("item")
                .first()
            )
            if live is not None:
                return live
    return None


def _project_open_check(project: Project) -> None:
    """Refuse work in an archived project (read fresh: the caller's copy may be stale)."""
    if Project.objects.filter(pk=project.pk, status=Project.Status.ARCHIVED).exists():
        raise ProjectClosed("project: the project is archived; it takes no more answers")


def assignment_next(
    *, project: Project, annotator, rng: random.Random | None = None
) -> Assignment | None:
    """Lock the next item for an annotator, or return their live lock; None when done.

    The item has fewer than N submitted-or-locked annotations, is not one this annotator
    answered, skipped or holds, and comes first by priority, then by nearness to
    completion.  Gold items are mixed in at the project's ratio.  Correct under
    concurrency: PostgreSQL row locks with SKIP LOCKED, and one annotator's concurrent
    calls serialised so they share one lock; on SQLite every transaction is IMMEDIATE, so
    assignment runs one writer at a time.  Expired locks still count towards N until they
    are reclaimed — here, when no open item is left, and every minute by beat — so the
    limit is never exceeded, only briefly over-counted.  An archived project raises
    ProjectClosed (409); a draft or paused one has nothing to hand out (None).
    """
    _project_open_check(project)
    if project.status != Project.Status.ACTIVE:
        return None
    live = _live_assignment(project, annotator)
    if live is not None:
        return live
    want_gold = project.gold_ratio > 0 and (rng or random).random() < project.gold_ratio
    assignment = _assignment_lock(project, annotator, want_gold=want_gold)
    if assignment is None and assignment_reclaim_expired(project=project):
        assignment = _assignment_lock(project, annotator, want_gold=want_gold)
    return assignment


# ----------------------------------------------------------------------------------------
# Submission, skip, adjudication
# ----------------------------------------------------------------------------------------


def _existing_annotation(annotator, key: str, item_id: int) -> Annotation | None:
    existing = Annotation.objects.filter(annotator=annotator, idempotency_key=key).first()
    if existing is not None and existing.item_id != item_id:
        raise IdempotencyConflict("idempotency_key: already used for another item")
    return existing


def annotation_submit(
    *, project: Project, item_id: int, annotator, answer: Any, idempotency_key: str
) -> tuple[Annotation, bool]:
    """Record an annotator's answer; returns ``(annotation, created)``.

    Needs the annotator's live assignment for the item (else AssignmentConflict, 409) in
    a project that is not archived (else ProjectClosed, 409).  A retry with the same
    idempotency key returns the original annotation, even when the retry races the
    original (the assignment row lock serialises them), and even once the project is
    archived.
    """
    if not idempotency_key or len(idempotency_key) > 100:
        raise ValidationError({"idempotency_key": ["is required, at most 100 characters"]})
    texts_validate(idempotency_key=idempotency_key)
    now = timezone.now()
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("item")
            .filter(project=project, item_id=item_id, annotator=annotator)
            .first()
        )
        # Checked under the assignment's row lock: a concurrent retry with the same key
        # waits for the original to commit, then finds it here.
        existing = _existing_annotation(annotator, idempotency_key, item_id)
        if existing is not None:
            return existing, False
        _project_open_check(project)
        if assignment is None or assignment.status != Assignment.Status.LOCKED:
            state = "no assignment" if assignment is None else f"assignment is {assignment.status}"
            raise AssignmentConflict(f"item: you hold no live assignment for this item ({state})")
        if assignment.expires_at <= now:
            raise AssignmentConflict("item: your lock on this item expired; ask for the next item")
        item = assignment.item
        clean, label, strength = schema.answer_validate(
            schema=project.question_schema, answer=answer, responses=item.responses
        )
        # Rationales (and comments marked sensitive) are stored encrypted.
        public, private = schema.answer_split(schema=project.question_schema, answer=clean)
        annotation = Annotation.objects.create(
            project=project,
            item_id=item_id,
            annotator=annotator,
            assignment=assignment,
            answer=public,
            answer_private=json.dumps(private, ensure_ascii=False) if private else "",
            label=label,
            strength=strength,
            lead_time_ms=max(0, int((now - assignment.locked_at).total_seconds() * 1000)),
            idempotency_key=idempotency_key,
            is_gold=item.is_gold,
        )
        Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.SUBMITTED)
        Item.objects.filter(pk=item_id).update(n_submitted=F("n_submitted") + 1)
        # Read after the update, which holds the item's row lock: exactly one submission
        # sees the count reach N, however many race on this item.
        if Item.objects.filter(pk=item_id, n_submitted=project.overlap).exists():
            _project_completion_check(project=project)
        consensus_schedule(project=project)
    return annotation, True


def _project_completion_check(*, project: Project) -> None:
    """Record ``project.complete`` when the last item of a project reaches its N answers
    (a webhook event).  Under the project's row lock, so of two items completing at once
    the second to commit sees both done: the event is recorded once, and again only if
    new items are imported and completed later."""
    locked = Project.objects.select_for_update().get(pk=project.pk)
    if Item.objects.filter(project=locked, n_submitted__lt=locked.overlap).exists():
        return
    audit_event_record(
        action="project.complete",
        obj=locked,
        after={"items": Item.objects.filter(project=locked).count(), "overlap": locked.overlap},
    )


@transaction.atomic
def assignment_skip(*, project: Project, item_id: int, annotator, reason: str = "") -> Assignment:
    """Give an item back: this annotator will not be offered it again."""
    if project.skip_policy == Project.SkipPolicy.NEVER:
        raise ValidationError({"item": ["this project does not allow skipping"]})
    if project.skip_policy == Project.SkipPolicy.REASON and not reason.strip():
        raise ValidationError({"reason": ["this project asks for a reason when skipping"]})
    texts_validate(reason=reason)
    assignment = (
        Assignment.objects.select_for_update()
        .filter(project=project, item_id=item_id, annotator=annotator)
        .first()
    )
    if assignment is None or assignment.status != Assignment.Status.LOCKED:
        raise AssignmentConflict("item: you hold no live assignment for this item")
    Assignment.objects.filter(pk=assignment.pk).update(
        status=Assignment.Status.SKIPPED, skip_reason=reason[:500]
    )
    _item_slot_release(item_id)
    assignment.status = Assignment.Status.SKIPPED
    return assignment


@transaction.atomic
def adjudication_record(
    *, project: Project, item_id: int, reviewer, answer: Any, reason: str
) -> Adjudication:
    """A reviewer's decision on an item; it overrides the computed consensus (audited)."""
    if not reason or not reason.strip():
        raise ValidationError({"reason": ["an adjudication needs a reason"]})
    texts_validate(reason=reason)
    item = Item.objects.filter(project=project, pk=item_id).first()
    if item is None:
        raise ValidationError({"item": ["not an item of this project"]})
    clean, label, _ = schema.answer_validate(
        schema=project.question_schema, answer=answer, responses=item.responses
    )
    if label is None:
        raise ValidationError({"answer": ["the project has no question to adjudicate"]})
    previous = Adjudication.objects.select_for_update().filter(item=item).first()
    # The reason is the reviewer's rationale: encrypted at rest, so never in the audit chain.
    before = {"label": previous.label, "answer": previous.answer} if previous else None
    adjudication, _ = Adjudication.objects.update_or_create(
        item=item,
        defaults={
            "project": project,
            "reviewer": reviewer,
            "answer": clean,
            "label": label,
            "reason": reason,
        },
    )
    consensus = ItemConsensus.objects.filter(item=item).first()
    if consensus is not None:
        before = before or {"consensus_label": consensus.label, "method": consensus.method}
        ItemConsensus.objects.filter(item=item).update(
            label=label,
            confidence=1.0,
            method=ItemConsensus.Method.ADJUDICATED,
            computed_at=timezone.now(),
        )
    audit_event_record(
        action="item.adjudicate",
        obj=item,
        before=before,
        after={"label": label, "answer": clean},
    )
    return adjudication


# ----------------------------------------------------------------------------------------
# Consensus scheduling
# ----------------------------------------------------------------------------------------


def consensus_schedule(*, project: Project) -> None:
    """Queue one consensus recomputation for the project after a short quiet period.

    Debounced through the outbox: while a recomputation waits to be sent, further calls
    add nothing, so a burst of submissions costs one run.  Written in the caller's
    transaction, so a rolled-back submission queues nothing, and a committed one is
    recomputed even if the broker was down when it committed.
    """
    outbox_task_enqueue(
        task="annotation.consensus_recompute",
        args=[project.pk],
        delay=settings.CONSENSUS_DEBOUNCE_SECONDS,
        dedupe_key=f"annotation.consensus_recompute:{project.pk}",
    )


def consensus_recompute_request(*, project: Project) -> None:
    """Queue a consensus recomputation now (the dashboard's and the API's button)."""
    outbox_task_enqueue(task="annotation.consensus_recompute", args=[project.pk], subject=project)


# ----------------------------------------------------------------------------------------
# Background imports
# ----------------------------------------------------------------------------------------


def import_job_create(*, project: Project, user, file, fmt: str = "auto") -> ImportJob:
    """Store an upload and queue its import on a worker; returns the queued job.

    The upload is streamed to storage in chunks (never read whole into memory).  Storage
    must be shared by the web servers and the workers (MEDIA_ROOT on one machine).  The
    task goes through the outbox, so a job created while the broker is down waits (its
    page says why) and starts when the broker is back.
    """
    if fmt.replace("-", "_").lower() not in importers.FORMATS:
        raise ValidationError({"format": [f"must be one of {', '.join(importers.FORMATS)}"]})
    original_name = (getattr(file, "name", "") or "")[:255]
    texts_validate(file=original_name)
    with transaction.atomic():
        job = ImportJob(project=project, created_by=user, format=fmt)
        job.original_name = original_name
        upload = file if isinstance(file, File) else File(file)
        job.file.save(f"{project.pk}-{uuid.uuid4().hex}.upload", upload, save=False)
        job.save()
        audit_event_record(
            action="items.import_queued",
            obj=job,
            after={"project": project.pk, "format": fmt, "file": job.original_name},
        )
        _import_job_enqueue(job)
    return job


def _import_job_enqueue(job: ImportJob) -> None:
    outbox_task_enqueue(task="annotation.import_job_run", kwargs={"job_id": job.pk}, subject=job)


def import_job_run(*, job_id: int, worker: str = "") -> ImportJob | None:
    """Run a queued import job (the worker's side).

    The job is claimed (queued → running, with the ``worker`` instance that runs it) under
    a row lock, and a job already claimed is left alone: a message delivered twice never
    imports twice.  If the worker dies mid-import, the import's transaction rolls back and
    the reaper (:func:`import_jobs_reap`) queues the job again.
    """
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != ImportJob.Status.QUEUED:
            return job
        job.status, job.started_at, job.worker = ImportJob.Status.RUNNING, timezone.now(), worker
        job.attempts += 1
        job.save(update_fields=["status", "started_at", "worker", "attempts"])
    try:
        with job.file.open("rb") as handle:
            result = items_import(project=job.project, file=handle, fmt=job.format)
    except ItemImportError as exc:
        job.status, job.message = ImportJob.Status.FAILED, str(exc)
        job.errors = [{"line": e.line, "reason": e.reason} for e in exc.errors]
    except Exception as exc:  # any other failure ends the job visibly, never "running"
        logger.exception("import job %s failed", job.pk)
        job.status, job.message = ImportJob.Status.FAILED, f"{type(exc).__name__}: {exc}"
    else:
        job.status, job.message = ImportJob.Status.SUCCEEDED, ""
        job.rows, job.created, job.skipped_existing, job.redactions = (
            result.rows,
            result.created,
            result.skipped_existing,
            result.redactions,
        )
    job.finished_at = timezone.now()
    job.file.delete(save=False)
    with transaction.atomic():
        job.save()
        # Counts only: a failure's reasons may quote the rows' text.
        audit_event_record(
            action=f"items.import_{'finished' if job.status == 'succeeded' else 'failed'}",
            obj=job,
            after={
                "project": job.project_id,
                "status": job.status,
                "rows": job.rows,
                "created": job.created,
                "errors": len(job.errors or []),
            },
        )
    return job


# A running job older than this has outlived its task's hard time limit: its worker died.
IMPORT_JOB_ABANDONED_AFTER = timedelta(hours=2, minutes=10)
# How often a job whose worker vanished is queued again before it is failed.
IMPORT_JOB_MAX_ATTEMPTS = 3
# A queued job whose task was sent this long ago without any worker claiming it is sent
# again: its message was lost (a Redis restarted without persistence).  Harmless if it
# was only waiting behind other work: a second delivery finds the job claimed.
IMPORT_JOB_RESEND_AFTER = timedelta(minutes=15)


def _import_job_fail(job: ImportJob, message: str) -> None:
    """Fail a job and delete its upload (after commit: a rollback keeps both)."""
    name, storage = job.file.name, job.file.storage
    job.status, job.message, job.finished_at = ImportJob.Status.FAILED, message, timezone.now()
    job.file = ""
    job.save(update_fields=["status", "message", "finished_at", "file"])
    if name:
        transaction.on_commit(lambda: storage.delete(name))


def import_jobs_reap() -> dict[str, int]:
    """Find import jobs whose worker is gone; requeue or fail them (scheduled by beat).

    A running job whose worker instance has sent no heartbeat for
    ``WORKER_HEARTBEAT_MAX_AGE`` seconds was killed mid-import; imports are
    all-or-nothing, so its transaction rolled back and it is safe to run again: it is
    queued again (through the outbox), up to ``IMPORT_JOB_MAX_ATTEMPTS`` runs, then
    failed and its upload deleted.  Jobs of no known worker fall back to the task's hard
    time limit.  A queued job whose task went out ``IMPORT_JOB_RESEND_AFTER`` ago and was
    never claimed is sent again.  Returns counts by outcome.
    """
    from governance.selectors import worker_heartbeat_cutoff, worker_heartbeats_alive

    now = timezone.now()
    alive_since = worker_heartbeat_cutoff(now=now)
    alive = worker_heartbeats_alive(now=now).values("instance")
    running = ImportJob.objects.filter(status=ImportJob.Status.RUNNING)
    vanished = (
        running.exclude(worker="").exclude(worker__in=alive).filter(started_at__lt=alive_since)
    )
    overdue = running.filter(worker="", started_at__lt=now - IMPORT_JOB_ABANDONED_AFTER)
    counts = {"requeued": 0, "failed": 0, "resent": 0}
    for job in ImportJob.objects.filter(status=ImportJob.Status.QUEUED):
        if not outbox_sent_before(subject=job, before=now - IMPORT_JOB_RESEND_AFTER):
            continue
        with transaction.atomic():
            _import_job_enqueue(job)
        counts["resent"] += 1
    for job_id in list(vanished.values_list("pk", flat=True)) + list(
        overdue.values_list("pk", flat=True)
    ):
        with transaction.atomic():
            job = (
                ImportJob.objects.select_for_update()
                .filter(pk=job_id, status=ImportJob.Status.RUNNING)
                .first()
            )
            if job is None:  # finished meanwhile
                continue
            gone = job.worker or "an unknown worker"
            if job.worker and job.attempts < IMPORT_JOB_MAX_ATTEMPTS and job.file:
                job.status, job.worker, job.started_at = ImportJob.Status.QUEUED, "", None
                job.message = (
                    f"The worker running this import ({gone}) stopped; nothing was imported. "
                    "Queued again."
                )
                job.save(update_fields=["status", "worker", "started_at", "message"])
                _import_job_enqueue(job)
                counts["requeued"] += 1
            else:
                _import_job_fail(
                    job,
                    f"The worker running this import ({gone}) stopped; nothing was imported. "
                    "Upload the file again.",
                )
                counts["failed"] += 1
            audit_event_record(
                action="items.import_reaped",
                obj=job,
                after={"status": job.status, "worker": gone, "attempts": job.attempts},
            )
    return counts
