"""Monitoring writes: collecting outcomes, pre-aggregating calibration metric points,
updating the streaming detectors, drift reports, and the alert life cycle.

Everything a worker does for one version happens in :func:`outcomes_collect`, in one
transaction: new outcomes, their metric points, the detectors' state and the rules'
alerts commit together, so a worker killed half-way leaves nothing half-done.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from annotation import selectors as annotation_selectors
from governance.outbox import outbox_task_enqueue
from governance.roles import ADMIN
from governance.services import audit_event_record
from models_registry import selectors as registry_selectors
from models_registry.calibration import calibration_metrics
from models_registry.models import ModelVersion, Prediction

from . import detectors, drift, features, selectors
from .models import (
    Alert,
    AlertRule,
    Comparator,
    DetectorState,
    DriftReport,
    MetricPoint,
    Notification,
    Outcome,
    OutcomeCursor,
    Window,
)

logger = logging.getLogger(__name__)

#: Predictions looked at per query, and queries per run: one run of
#: :func:`outcomes_collect` looks at most at ``COLLECT_BATCH * COLLECT_BATCHES_PER_RUN``
#: predictions (at least 2 batches: one is kept for the older ones).
COLLECT_BATCH = 5000
COLLECT_BATCHES_PER_RUN = 10


# -- outcomes -------------------------------------------------------------------------------


def bucket_start(*, at: datetime, window: str) -> datetime:
    """The start (UTC) of the ``window`` bucket holding ``at``; weeks start on Monday."""
    at = at.astimezone(UTC)
    start = at.replace(minute=0, second=0, microsecond=0)
    if window == Window.HOUR:
        return start
    start = start.replace(hour=0)
    if window == Window.DAY:
        return start
    return start - timedelta(days=start.weekday())


def bucket_end(*, start: datetime, window: str) -> datetime:
    """The end (exclusive) of the bucket that starts at ``start``."""
    return (
        start
        + {
            Window.HOUR: timedelta(hours=1),
            Window.DAY: timedelta(days=1),
            Window.WEEK: timedelta(weeks=1),
        }[Window(window)]
    )


def outcomes_collect_soon(*, version: ModelVersion, **_) -> None:
    """Receiver of the registry's ``predictions_stored``: collect that version's outcomes
    now rather than at beat's next minute (one pending task per version)."""
    outbox_task_enqueue(
        task="monitoring.outcomes_collect_version",
        kwargs={"version_id": version.pk},
        dedupe_key=f"outcomes-collect-{version.pk}",
    )


@transaction.atomic
def outcomes_collect(*, version: ModelVersion, now: datetime | None = None) -> list[Outcome]:
    """Match the version's unmatched predictions with the human consensus, then update
    the metric points, detectors and alert rules the new outcomes touch.

    Predictions whose item is never labelled (or ends in a tie, or names no item) stay
    unmatched for good, so a run cannot just take the first unmatched ones: once a batch
    of those sat at the head, labelled predictions behind them were never reached.  A run
    instead pages through the unmatched predictions by id (:func:`_pending_batches`), a
    bounded number of batches, from a cursor kept per version (:class:`OutcomeCursor`).

    Scanning only the predictions whose item has a consensus was the other way, but the
    consensus is annotation's (items, read through its selectors) and the predictions the
    registry's (read through its selectors), joined on a free-text ``item_ref``: filtering
    in SQL would join the two apps' tables behind their selectors, and filtering in Python
    would load every labelled ref of every project each run.
    """
    # One collector per version at a time (beat's and an event's task may overlap): two
    # would both match the same predictions, and both move the cursor.
    ModelVersion.objects.select_for_update().filter(pk=version.pk).first()
    cursor, _ = OutcomeCursor.objects.get_or_create(version=version)
    before = (cursor.scanned_to, cursor.revisit_after)
    outcomes = []
    for batch in _pending_batches(version=version, cursor=cursor):
        outcomes += _outcomes_match(version=version, predictions=batch)
    if (cursor.scanned_to, cursor.revisit_after) != before:
        cursor.save()
    if not outcomes:
        return []
    metric_points_update(version=version, times=[o.predicted_at for o in outcomes])
    detectors_update(version=version, outcomes=outcomes)
    alert_rules_evaluate(version=version, now=now)
    return outcomes


def _pending_batches(*, version: ModelVersion, cursor: OutcomeCursor) -> Iterator[list[Prediction]]:
    """This run's batches of the version's unmatched predictions (naming an item), at most
    ``COLLECT_BATCHES_PER_RUN`` queries, moving ``cursor`` along (the caller saves it).

    First the new ones (ids above ``cursor.scanned_to``), in all batches but one, so that
    a prediction just stored meets its item's consensus at once (the event-queued run).
    Then, with the batches left, the older unmatched ones round robin: from
    ``cursor.revisit_after`` up to where the new ones began, then around from the start
    up to where this run began, never further.  An item labelled after its prediction was
    first looked at is matched once the rotation comes round, within about
    (unmatched older predictions) / (batches left per run × ``COLLECT_BATCH``) runs; so is
    a prediction committed after a higher id had already been scanned.
    """
    left = COLLECT_BATCHES_PER_RUN
    top = cursor.scanned_to
    while left > 1:
        batch = _pending_batch(version=version, after=cursor.scanned_to)
        left -= 1
        if batch:
            cursor.scanned_to = batch[-1].pk
            yield batch
        if len(batch) < COLLECT_BATCH:
            break
    began, upto, wrapped = cursor.revisit_after, top, False
    while left > 0 and top > 0:
        batch = _pending_batch(version=version, after=cursor.revisit_after, upto=upto)
        left -= 1
        if len(batch) == COLLECT_BATCH:
            cursor.revisit_after = batch[-1].pk  # more may follow: the next batch or run
        elif not wrapped and began > 0:
            cursor.revisit_after, upto, wrapped = 0, began, True  # the end: from the start
        else:
            cursor.revisit_after = began  # every older one looked at once in this run
            left = 0
        if batch:
            yield batch


def _pending_batch(
    *, version: ModelVersion, after: int, upto: int | None = None
) -> list[Prediction]:
    """Up to ``COLLECT_BATCH`` of the version's predictions that name an item and have no
    outcome, with ids in (``after``, ``upto``], by id."""
    queryset = registry_selectors.prediction_list(version=version, with_item_ref=True).filter(
        pk__gt=after
    )
    if upto is not None:
        queryset = queryset.filter(pk__lte=upto)
    # NOT EXISTS on the outcome's unique prediction index: each batch costs what it reads,
    # not a pass over all the version's outcomes (NOT IN hashed them for every batch).
    matched = Outcome.objects.filter(prediction_id=OuterRef("pk"))
    queryset = queryset.filter(~Exists(matched))
    return list(queryset.only("pk", "item_ref", "p_a", "margin", "created_at")[:COLLECT_BATCH])


def _outcomes_match(*, version: ModelVersion, predictions: list[Prediction]) -> list[Outcome]:
    """Create the outcomes of those ``predictions`` whose item has a consensus (not a tie)."""
    consensus = annotation_selectors.consensus_by_item_ref(refs=[p.item_ref for p in predictions])
    rows = []
    for prediction in predictions:
        human = consensus.get(prediction.item_ref)
        if human is None or human["label"] == annotation_selectors.PAIRWISE_TIE:
            continue  # not labelled yet (tried again later), or a tie: no outcome
        rows.append(
            Outcome(
                prediction_id=prediction.pk,
                version=version,
                project_id=human["project_id"],
                p_a=prediction.p_a,
                margin=prediction.margin,
                label=1 if human["label"] == annotation_selectors.PAIRWISE_A else 0,
                predicted_at=prediction.created_at,
            )
        )
    return Outcome.objects.bulk_create(rows) if rows else []


def metric_points_update(*, version: ModelVersion, times: Iterable[datetime]) -> list[MetricPoint]:
    """Recompute the metric points of every bucket (of each window) holding one of
    ``times``, from all of that bucket's outcomes."""
    points = []
    times = list(times)
    for window in Window.values:
        for start in sorted({bucket_start(at=t, window=window) for t in times}):
            end = bucket_end(start=start, window=window)
            pairs = selectors.outcome_arrays(version=version, start=start, end=end)
            if pairs is None:
                continue
            m = calibration_metrics(*pairs)
            point, _ = MetricPoint.objects.update_or_create(
                version=version,
                window=window,
                start=start,
                defaults={
                    "n": m["n"],
                    **{k: m[k] for k in ("accuracy", "ece", "ece_equal_mass", "mce", "brier")},
                    "nll": m["nll"],
                    "reliability": m["reliability"],
                },
            )
            points.append(point)
    return points


def detectors_update(*, version: ModelVersion, outcomes: list[Outcome]) -> list[DetectorState]:
    """Feed the outcomes, in prediction order, to the version's detectors; persist them."""
    ordered = sorted(outcomes, key=lambda o: (o.predicted_at, o.prediction_id))
    streams = {
        "error": [int(o.error) for o in ordered],
        "confidence": [max(o.p_a, 1 - o.p_a) for o in ordered],
    }
    states = []
    for stream, kinds in detectors.STREAMS.items():
        for kind in kinds:
            state = (
                DetectorState.objects.select_for_update()
                .filter(version=version, stream=stream, kind=kind)
                .first()
            )
            detector = (
                detectors.detector_load(state.state) if state else detectors.detector_new(kind)
            )
            fired = detectors.detector_feed(detector, streams[stream])
            if state is None:
                state = DetectorState(version=version, stream=stream, kind=kind)
            state.state = detectors.detector_dump(detector)
            state.n_seen += len(ordered)
            if fired:
                state.n_drifts += len(fired)
                state.last_drift_at = ordered[fired[-1]].predicted_at
                logger.info("drift: version %s %s/%s fired", version.pk, stream, kind)
            state.save()
            states.append(state)
    return states


# -- drift ------------------------------------------------------------------------------------


@transaction.atomic
def drift_report_request(
    *,
    version: ModelVersion,
    method: str,
    reference: tuple[datetime, datetime],
    current: tuple[datetime, datetime],
    user=None,
) -> DriftReport:
    """Record a drift comparison and queue it for the monitoring workers."""
    report = DriftReport.objects.create(
        version=version,
        method=method,
        reference_start=reference[0],
        reference_end=reference[1],
        current_start=current[0],
        current_end=current[1],
        requested_by=user,
    )
    audit_event_record(
        action="monitoring.drift_report_request",
        obj=report,
        after={"version": version.pk, "method": method},
    )
    outbox_task_enqueue(
        task="monitoring.drift_report_run", kwargs={"report_id": report.pk}, subject=report
    )
    return report


def drift_report_run(*, report_id: int) -> DriftReport | None:
    """Run a queued drift report (a repeated delivery of the task does nothing)."""
    with transaction.atomic():
        report = DriftReport.objects.select_for_update().filter(pk=report_id).first()
        if report is None or report.status != DriftReport.Status.QUEUED:
            return report
        report.status = DriftReport.Status.RUNNING
        report.save(update_fields=["status"])
    try:
        reference, current, columns, notes = features.drift_frames(
            version=report.version,
            reference=(report.reference_start, report.reference_end),
            current=(report.current_start, report.current_end),
        )
        if reference.empty or current.empty:
            raise ValueError("no outcomes in the reference or the current window")
        html = ""
        if report.method == DriftReport.Method.EVIDENTLY:
            result, report.evidently_json, html = drift.drift_evidently(
                reference, current, **columns
            )
        else:
            result = drift.drift_fast(reference, current, **columns)
        result["n_reference"], result["n_current"] = len(reference), len(current)
        result["notes"] = notes
    except Exception as exc:  # a failed report says why; the worker carries on
        logger.exception("drift report %s failed", report_id)
        report.status, report.error = DriftReport.Status.FAILED, str(exc)[:2000]
        report.finished_at = timezone.now()
        report.save(update_fields=["status", "error", "finished_at"])
        return report
    with transaction.atomic():
        report.result, report.dataset_drift = result, result["dataset_drift"]
        if html:
            report.html.save(f"drift-{report.pk}.html", ContentFile(html.encode()), save=False)
        report.status, report.finished_at = DriftReport.Status.DONE, timezone.now()
        report.save()
    return report


def drift_reports_schedule(*, now: datetime | None = None) -> list[DriftReport]:
    """Beat: for every version with outcomes in the last day, compare that day with the
    week before it (Evidently, for people and rules)."""
    now = now or timezone.now()
    day, week = now - timedelta(days=1), now - timedelta(days=8)
    reports = []
    for version in selectors.versions_with_outcomes(since=day):
        reports.append(
            drift_report_request(
                version=version,
                method=DriftReport.Method.EVIDENTLY,
                reference=(week, day),
                current=(day, now),
            )
        )
    return reports


# -- alerts -----------------------------------------------------------------------------------


_COMPARE = {
    Comparator.GT: np.greater,
    Comparator.GTE: np.greater_equal,
    Comparator.LT: np.less,
    Comparator.LTE: np.less_equal,
}


def alert_rules_evaluate(*, version: ModelVersion, now: datetime | None = None) -> list[Alert]:
    """Judge every active rule whose alias names ``version``: fire (once, and not again
    within the cooldown of the last firing) or resolve.  Returns the alerts changed."""
    now = now or timezone.now()
    changed = []
    for rule in selectors.alert_rules_for_version(version=version):
        value = selectors.alert_rule_value(rule=rule, version=version)
        open_alert = (
            Alert.objects.select_for_update().filter(rule=rule, state__in=Alert.OPEN).first()
        )
        breached = value is not None and bool(_COMPARE[rule.comparator](value[0], rule.threshold))
        if breached and open_alert is None:
            last = Alert.objects.filter(rule=rule).order_by("-fired_at").first()
            if last is not None and now < last.fired_at + rule.cooldown:
                continue  # within the cooldown: stay quiet
            changed.append(_alert_fire(rule=rule, version=version, value=value, now=now))
        elif not breached and open_alert is not None and value is not None:
            changed.append(_alert_resolve(alert=open_alert, now=now))
    return changed


def _alert_fire(*, rule: AlertRule, version: ModelVersion, value, now: datetime) -> Alert:
    alert = Alert.objects.create(
        rule=rule, version=version, value=value[0], point_start=value[1], fired_at=now
    )
    audit_event_record(
        action="monitoring.alert_fire",
        obj=alert,
        after={"rule": rule.pk, "version": version.pk, "value": value[0]},
    )
    message = (
        f"[{rule.severity}] {rule.name}: {rule.metric} = {value[0]:.4g} "
        f"({rule.get_comparator_display()} {rule.threshold:g}) on {version.ref}"
    )
    _alert_notify(alert=alert, message=message)
    if rule.retrain:
        from .retraining import alert_retraining_queue

        alert_retraining_queue(alert=alert)
    return alert


def _alert_notify(*, alert: Alert, message: str) -> None:
    """In-app notifications for the rule's author and the admins; e-mail to the rule's
    addresses (after commit, so a rolled-back alert sends nothing)."""
    users = get_user_model().objects.filter(is_active=True, groups__name=ADMIN)
    recipients = {u.pk: u for u in users}
    if alert.rule.created_by_id and alert.rule.created_by.is_active:
        recipients[alert.rule.created_by_id] = alert.rule.created_by
    Notification.objects.bulk_create(
        [Notification(user=u, alert=alert, message=message[:500]) for u in recipients.values()]
    )
    if alert.rule.email_to:
        addresses = list(alert.rule.email_to)
        transaction.on_commit(
            lambda: send_mail(
                subject=f"Attune alert: {alert.rule.name}",
                message=message,
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=addresses,
                fail_silently=True,
            )
        )


def _alert_resolve(*, alert: Alert, now: datetime) -> Alert:
    before = alert.state
    alert.state, alert.resolved_at = Alert.State.RESOLVED, now
    alert.save(update_fields=["state", "resolved_at"])
    audit_event_record(
        action="monitoring.alert_resolve",
        obj=alert,
        before={"state": before},
        after={"state": alert.state},
    )
    return alert


@transaction.atomic
def alert_acknowledge(*, alert: Alert, user) -> Alert:
    """Someone has seen a firing alert; it stays open until its condition clears."""
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.state != Alert.State.FIRING:
        from rlhf_platform.errors import Conflict

        raise Conflict(f"state: the alert is {alert.state}, not firing")
    alert.state, alert.acknowledged_at, alert.acknowledged_by = (
        Alert.State.ACKNOWLEDGED,
        timezone.now(),
        user,
    )
    alert.save(update_fields=["state", "acknowledged_at", "acknowledged_by"])
    audit_event_record(
        action="monitoring.alert_acknowledge",
        obj=alert,
        before={"state": "firing"},
        after={"state": alert.state},
    )
    return alert


@transaction.atomic
def alert_rule_create(*, user, **fields) -> AlertRule:
    """A new alert rule (validated by the model's field rules)."""
    rule = AlertRule(created_by=user, **fields)
    rule.full_clean()
    if rule.retrain_config:  # refused now rather than when the rule fires
        from models_registry.services import training_config_validate

        rule.retrain_config = training_config_validate(
            kind=rule.registered_model.kind, config=rule.retrain_config
        )
    rule.save()
    audit_event_record(
        action="monitoring.alert_rule_create",
        obj=rule,
        after={
            "name": rule.name,
            "metric": rule.metric,
            "comparator": rule.comparator,
            "threshold": rule.threshold,
        },
    )
    return rule


@transaction.atomic
def alert_rule_update(*, rule: AlertRule, **fields) -> AlertRule:
    """Change a rule's settings (audited with what they were)."""
    before = {k: str(getattr(rule, k)) for k in fields}
    for key, value in fields.items():
        setattr(rule, key, value)
    rule.full_clean()
    rule.save()
    audit_event_record(
        action="monitoring.alert_rule_update",
        obj=rule,
        before=before,
        after={k: str(getattr(rule, k)) for k in fields},
    )
    return rule


@transaction.atomic
def alert_rule_delete(*, rule: AlertRule) -> None:
    audit_event_record(action="monitoring.alert_rule_delete", obj=rule, before={"name": rule.name})
    rule.delete()
