"""Monitoring writes for the human side: pre-aggregating each project's votes into
preference points (how the preferences themselves move) and annotator points, and
judging every annotator's drift (agreement with consensus, time per vote) with control
charts against the annotator's own baseline.

Votes are read through ``annotation.selectors.vote_arrays`` (monitoring touches no
annotation table).  A project is re-aggregated whole after its consensus is recomputed
(``preference_points_refresh_due``, every few minutes by beat): the agreement of old votes
with the consensus changes when the consensus does, so buckets cannot be appended to.
The aggregation is vectorised (one pass of numpy over the project's votes), like the
consensus recomputation it follows.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

import krippendorff
import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotation import selectors as annotation_selectors
from governance.services import audit_event_record

from . import spc
from .models import AnnotatorDrift, AnnotatorPoint, PreferencePoint, Window

logger = logging.getLogger(__name__)

_HOUR, _DAY = 3600, 86400
# 1970-01-05 was a Monday: weeks start on Mondays, as the calibration points' do.
_MONDAY = 4 * _DAY


def bucket_starts(created: np.ndarray, *, window: str) -> np.ndarray:
    """The start (POSIX seconds, UTC) of the ``window`` bucket of each time."""
    if window == Window.HOUR:
        return np.floor(created / _HOUR) * _HOUR
    if window == Window.DAY:
        return np.floor(created / _DAY) * _DAY
    return np.floor((created - _MONDAY) / (7 * _DAY)) * (7 * _DAY) + _MONDAY


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), tz=UTC)


def alpha_nominal(*, item: np.ndarray, label: np.ndarray, n_classes: int) -> float | None:
    """Krippendorff's α (nominal) of the votes, over items with at least two (None when
    undefined: too few items, or one value everywhere)."""
    _, idx = np.unique(item, return_inverse=True)
    counts = np.zeros((idx.max() + 1 if len(idx) else 0, n_classes))
    np.add.at(counts, (idx, label), 1)
    counts = counts[counts.sum(axis=1) >= 2]
    if len(counts) < 2:
        return None
    try:
        with np.errstate(invalid="ignore", divide="ignore"):
            value = krippendorff.alpha(value_counts=counts, level_of_measurement="nominal")
    except (ValueError, ZeroDivisionError):
        return None
    return float(value) if math.isfinite(value) else None


def _preference_rows(votes: dict, *, project_id: int, now: datetime) -> list[PreferencePoint]:
    keep = ~votes["gold"]
    item, label = votes["item"][keep], votes["label"][keep]
    created, consensus = votes["created"][keep], votes["consensus"][keep]
    settled = votes["consensus_votes"][keep] >= 2
    if not len(item):
        return []
    n_classes = max(
        int(label.max()) + 1, len(annotation_selectors.project_label_names(project_id=project_id))
    )
    # An item belongs to the bucket of its last vote (when it was completed).
    order = np.argsort(item, kind="stable")
    last = np.zeros(len(item))
    _uniq, first_idx = np.unique(item[order], return_index=True)
    completed = np.maximum.reduceat(created[order], first_idx)
    last[order] = np.repeat(completed, np.diff(np.append(first_idx, len(item))))
    agrees = settled & (label == consensus)
    rows = []
    for window in Window.values:
        # Group by bucket once (sorting), so the work stays proportional to the votes
        # however many buckets there are (hours over months: thousands).
        buckets, vote_bucket = np.unique(bucket_starts(created, window=window), return_inverse=True)
        nb = len(buckets)
        counts = np.zeros((nb, n_classes), dtype=np.int64)
        np.add.at(counts, (vote_bucket, label), 1)
        n_judged = np.bincount(vote_bucket, weights=settled, minlength=nb).astype(int)
        n_agree = np.bincount(vote_bucket, weights=agrees, minlength=nb).astype(int)
        done = np.searchsorted(buckets, bucket_starts(last, window=window))
        order = np.argsort(done, kind="stable")
        bounds = np.searchsorted(done[order], np.arange(nb + 1))
        for b, start in enumerate(buckets):
            completed_votes = order[bounds[b] : bounds[b + 1]]
            rows.append(
                PreferencePoint(
                    project_id=project_id,
                    window=window,
                    start=_when(start),
                    n_votes=int(counts[b].sum()),
                    counts=counts[b].tolist(),
                    n_consensus_votes=int(n_judged[b]),
                    agreement=float(n_agree[b] / n_judged[b]) if n_judged[b] else None,
                    n_items=len(np.unique(item[completed_votes])),
                    alpha=alpha_nominal(
                        item=item[completed_votes],
                        label=label[completed_votes],
                        n_classes=n_classes,
                    ),
                    computed_at=now,
                )
            )
    return rows


#: Annotator points are kept per day and week: drift is judged per day, and hourly points
#: (annotators × hours) would multiply the rows for no verdict.
ANNOTATOR_WINDOWS = (Window.DAY, Window.WEEK)


def _annotator_rows(votes: dict, *, project_id: int, now: datetime) -> list[AnnotatorPoint]:
    if not len(votes["item"]):
        return []
    settled = votes["consensus_votes"] >= 2
    agree = settled & (votes["label"] == votes["consensus"])
    log_time = np.log(np.maximum(votes["lead_time_ms"], 1.0))
    annotators, annotator_idx = np.unique(votes["annotator"], return_inverse=True)
    rows = []
    for window in ANNOTATOR_WINDOWS:
        buckets, bucket_idx = np.unique(
            bucket_starts(votes["created"], window=window), return_inverse=True
        )
        # One integer key per (annotator, bucket): a 1-D unique is far cheaper than rows'.
        keys, idx = np.unique(annotator_idx * len(buckets) + bucket_idx, return_inverse=True)
        groups = zip(annotators[keys // len(buckets)], buckets[keys % len(buckets)], strict=True)
        groups = list(groups)
        n = np.bincount(idx, minlength=len(groups))
        mean = np.bincount(idx, weights=log_time, minlength=len(groups)) / n
        sq = np.bincount(idx, weights=(log_time - mean[idx]) ** 2, minlength=len(groups))
        sd = np.sqrt(sq / np.maximum(n - 1, 1))
        n_settled = np.bincount(idx, weights=settled, minlength=len(groups))
        n_agree = np.bincount(idx, weights=agree, minlength=len(groups))
        for g, (annotator, start) in enumerate(groups):
            rows.append(
                AnnotatorPoint(
                    project_id=project_id, annotator_id=int(annotator), window=window,
                    start=_when(start), n_votes=int(n[g]), n_consensus_votes=int(n_settled[g]),
                    n_agree=int(n_agree[g]), log_lead_time_mean=float(mean[g]),
                    log_lead_time_sd=float(sd[g]), computed_at=now,
                )
            )  # fmt: skip
    return rows


@transaction.atomic
def preference_points_refresh(*, project_id: int, now: datetime | None = None) -> dict[str, int]:
    """Re-aggregate one project's votes into preference and annotator points (every
    window), then judge its annotators' drift.  Returns how many rows were written."""
    now = now or timezone.now()
    votes = annotation_selectors.vote_arrays(project_id=project_id)
    preference = _preference_rows(votes, project_id=project_id, now=now)
    annotators = _annotator_rows(votes, project_id=project_id, now=now)
    PreferencePoint.objects.filter(project_id=project_id).delete()
    AnnotatorPoint.objects.filter(project_id=project_id).delete()
    PreferencePoint.objects.bulk_create(preference, batch_size=2000)
    AnnotatorPoint.objects.bulk_create(annotators, batch_size=2000)
    drifts = annotator_drift_update(project_id=project_id)
    return {"preference_points": len(preference), "annotator_points": len(annotators),
            "annotators_drifting": sum(d.drifting for d in drifts)}  # fmt: skip


def preference_points_refresh_due(*, now: datetime | None = None) -> list[int]:
    """Beat: refresh every project whose consensus was recomputed after its points were
    last aggregated (or that has none yet).  Returns the projects refreshed."""
    consensus = annotation_selectors.project_consensus_times()
    aggregated = dict(
        PreferencePoint.objects.filter(window=Window.DAY)
        .values("project_id")
        .annotate(latest=Max("computed_at"))
        .values_list("project_id", "latest")
    )
    due = [p for p, at in sorted(consensus.items()) if p not in aggregated or aggregated[p] < at]
    for project_id in due:
        preference_points_refresh(project_id=project_id, now=now)
    return due


# -- annotator drift ------------------------------------------------------------------------


def annotator_drift_settings() -> dict:
    """The annotator-drift settings (see the README's monitoring section)."""
    return {
        "window": settings.MONITORING_ANNOTATOR_WINDOW,
        "baseline": settings.MONITORING_ANNOTATOR_BASELINE,
        "min_votes": settings.MONITORING_ANNOTATOR_MIN_VOTES,
        "rules": spc.rules_parse(settings.MONITORING_ANNOTATOR_RULES),
    }


def annotator_chart(
    *, points: list[AnnotatorPoint], metric: str, baseline: int, rules, min_votes: int
) -> tuple[list[AnnotatorPoint], spc.ControlChart]:
    """An annotator's control chart of ``metric`` over its points (oldest first) with at
    least ``min_votes`` votes (for agreement: votes on settled items): a p-chart of the
    agreement with consensus, or an x̄-chart of the log time per vote."""
    if metric == AnnotatorDrift.Metric.AGREEMENT:
        used = [p for p in points if p.n_consensus_votes >= min_votes]
        chart = spc.proportion_chart(
            [p.n_agree for p in used], [p.n_consensus_votes for p in used],
            baseline=baseline, rules=rules,
        )  # fmt: skip
    else:
        used = [p for p in points if p.n_votes >= min_votes]
        chart = spc.mean_chart(
            [p.log_lead_time_mean for p in used], [p.log_lead_time_sd for p in used],
            [p.n_votes for p in used], baseline=baseline, rules=rules,
        )  # fmt: skip
    return used, chart


def annotator_drift_update(*, project_id: int) -> list[AnnotatorDrift]:
    """Judge each annotator of the project on both metrics and store the verdicts; an
    annotator who starts drifting is audited (and logged)."""
    config = annotator_drift_settings()
    points: dict[int, list[AnnotatorPoint]] = {}
    for point in AnnotatorPoint.objects.filter(
        project_id=project_id, window=config["window"]
    ).order_by("annotator_id", "start"):
        points.setdefault(point.annotator_id, []).append(point)
    existing = {
        (d.annotator_id, d.metric): d
        for d in AnnotatorDrift.objects.select_for_update().filter(project_id=project_id)
    }
    out = []
    for annotator_id, series in points.items():
        for metric in AnnotatorDrift.Metric.values:
            used, chart = annotator_chart(
                points=series, metric=metric, baseline=config["baseline"],
                rules=config["rules"], min_votes=config["min_votes"],
            )  # fmt: skip
            flagged = [i for i, s in enumerate(chart.signals) if s]
            since = None
            if chart.out_of_control:
                i = len(chart.signals) - 1
                while i > 0 and chart.signals[i - 1]:
                    i -= 1
                since = used[i].start
            row = existing.get((annotator_id, metric)) or AnnotatorDrift(
                project_id=project_id, annotator_id=annotator_id, metric=metric
            )
            was = row.drifting
            latest_z = chart.z[-1] if chart.z else None
            row.window, row.n_points = config["window"], len(used)
            center, latest = chart.center, chart.values[-1] if used else None
            if metric == AnnotatorDrift.Metric.SPEED:  # shown in ms (a geometric mean)
                center, latest = (None if v is None else math.exp(v) for v in (center, latest))
            row.center, row.latest = center, latest
            row.drifting, row.signals = chart.out_of_control, len(flagged)
            row.direction = (
                ("up" if latest_z > 0 else "down") if chart.out_of_control and latest_z else ""
            )
            row.last_signal_at = used[flagged[-1]].start if flagged else None
            row.since = since
            row.save()
            if row.drifting and not was:
                logger.info(
                    "annotator drift: project %s annotator %s %s", project_id, annotator_id, metric
                )
                audit_event_record(
                    action="monitoring.annotator_drift",
                    obj=row,
                    before={"drifting": False},
                    after={"drifting": True, "metric": metric, "direction": row.direction},
                )
            out.append(row)
    return out
