"""Monitoring reads: outcome arrays and frames, metric series, rule values, notifications."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from django.db.models import QuerySet

from models_registry import selectors as registry_selectors
from models_registry.models import ModelVersion

from .models import SPC_RULE_METRICS, AlertRule, MetricPoint, Notification, Outcome

#: The columns drift reports compare (from outcomes).
DRIFT_NUMERICAL = ["p_a", "margin", "confidence"]
DRIFT_CATEGORICAL = ["label", "error"]


def outcome_arrays(
    *, version: ModelVersion, start: datetime, end: datetime, project_id: int | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """(P(a ≻ b), human label) of a version's outcomes predicted in [start, end)."""
    queryset = Outcome.objects.filter(
        version=version, predicted_at__gte=start, predicted_at__lt=end
    )
    if project_id is not None:
        queryset = queryset.filter(project_id=project_id)
    rows = np.array(list(queryset.values_list("p_a", "label")), dtype=float)
    if len(rows) == 0:
        return None
    return rows[:, 0], rows[:, 1]


def outcome_frame(*, version: ModelVersion, start: datetime, end: datetime) -> pd.DataFrame:
    """A version's outcomes in [start, end) as the drift reports' columns."""
    rows = Outcome.objects.filter(
        version=version, predicted_at__gte=start, predicted_at__lt=end
    ).values_list("p_a", "margin", "label")
    return outcome_columns(pd.DataFrame(list(rows), columns=["p_a", "margin", "label"]))


def outcome_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The drift columns of outcome rows (``p_a``, ``margin``, ``label``): a new frame."""
    frame = frame[["p_a", "margin", "label"]].astype(float)
    frame["confidence"] = np.maximum(frame["p_a"], 1 - frame["p_a"])
    frame["error"] = ((frame["p_a"] > 0.5) != (frame["label"] == 1)).map({True: "yes", False: "no"})
    frame["label"] = frame["label"].map({1.0: "a", 0.0: "b"})
    return frame[[*DRIFT_NUMERICAL, *DRIFT_CATEGORICAL]]


def versions_with_outcomes(*, since: datetime) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(
        pk__in=Outcome.objects.filter(predicted_at__gte=since).values("version_id")
    ).order_by("pk")


def metric_series(*, version: ModelVersion, window: str, limit: int = 500) -> list[MetricPoint]:
    """The latest ``limit`` metric points of a version in one window, oldest first."""
    points = MetricPoint.objects.filter(version=version, window=window).order_by("-start")[:limit]
    return list(reversed(points))


def alert_rules_for_version(*, version: ModelVersion) -> list[AlertRule]:
    """Active rules whose alias names ``version`` now."""
    rules = AlertRule.objects.filter(
        is_active=True, registered_model_id=version.registered_model_id
    ).select_related("registered_model", "created_by")
    return [
        rule
        for rule in rules
        if (
            found := registry_selectors.alias_version(
                registered_model=rule.registered_model, alias=rule.alias
            )
        )
        is not None
        and found.pk == version.pk
    ]


def alert_rule_value(*, rule: AlertRule, version: ModelVersion) -> tuple[float, datetime] | None:
    """(metric value, bucket start) of the version's latest ``rule.window`` bucket, or
    None when it has fewer than ``min_outcomes`` outcomes.  A project-scoped rule measures
    that project's outcomes of the bucket (computed here: points are per version)."""
    from models_registry.calibration import calibration_metrics

    from .services import bucket_end

    if rule.metric in SPC_RULE_METRICS:
        from .charts import spc_rule_value

        return spc_rule_value(rule=rule, version=version)
    point = (
        MetricPoint.objects.filter(version=version, window=rule.window).order_by("-start").first()
    )
    if point is None:
        return None
    if rule.scope_project_id is None:
        metrics = {m: getattr(point, m) for m in MetricPoint.METRICS}
    else:
        end = bucket_end(start=point.start, window=rule.window)
        pairs = outcome_arrays(
            version=version, start=point.start, end=end, project_id=rule.scope_project_id
        )
        if pairs is None:
            return None
        metrics = calibration_metrics(*pairs)
    if metrics["n"] < rule.min_outcomes:
        return None
    return float(metrics[rule.metric]), point.start


def notification_list(
    *, user, unread_only: bool = False, limit: int = 50
) -> QuerySet[Notification]:
    """The user's own notifications, newest first."""
    queryset = Notification.objects.filter(user=user).select_related("alert", "alert__rule")
    if unread_only:
        queryset = queryset.filter(read_at__isnull=True)
    return queryset[:limit]


# -- dashboard ----------------------------------------------------------------------------


def versions_monitored() -> QuerySet[ModelVersion]:
    """Versions that have metric points (the dashboard's choices), newest first."""
    return (
        ModelVersion.objects.filter(
            pk__in=MetricPoint.objects.values("version_id").order_by().distinct()
        )
        .select_related("registered_model")
        .order_by("registered_model__name", "-number")
    )


def version_for_alias(*, model_name: str, alias: str) -> ModelVersion | None:
    """The version that ``model_name:alias`` names now (through the registry)."""
    return registry_selectors.version_resolve(ref=f"{model_name}:{alias}")


def calibration_series(*, version: ModelVersion, window: str, limit: int = 500) -> dict:
    """The dashboard's chart data, from the pre-aggregated points only: ECE, accuracy and
    Brier over time, and the latest bucket's reliability bins."""
    points = metric_series(version=version, window=window, limit=limit)
    latest = points[-1] if points else None
    return {
        "version": version.pk,
        "window": window,
        "points": [
            {
                "start": p.start.isoformat(),
                "n": p.n,
                "ece": p.ece,
                "ece_equal_mass": p.ece_equal_mass,
                "accuracy": p.accuracy,
                "brier": p.brier,
            }
            for p in points
        ],
        "reliability": (
            {"start": latest.start.isoformat(), "n": latest.n, **latest.reliability}
            if latest is not None
            else None
        ),
    }


def alerts_open(*, version: ModelVersion) -> QuerySet:
    """A version's alerts that are firing or acknowledged, newest first."""
    from .models import Alert

    return (
        Alert.objects.filter(version=version, state__in=Alert.OPEN)
        .select_related("rule")
        .order_by("-fired_at", "-id")
    )


def error_zones_latest(*, version: ModelVersion):
    """The version's latest finished error-zone search (with its zones), or None."""
    from .models import ErrorZoneRun

    return (
        ErrorZoneRun.objects.filter(version=version, status=ErrorZoneRun.Status.DONE)
        .order_by("-created_at", "-id")
        .prefetch_related("zones")
        .first()
    )


def error_zones_data(*, version: ModelVersion) -> dict:
    """The dashboard's error-zone data: the latest finished search's zones with their top
    terms, size, error rate and trend (stored rows only, no scans)."""
    run = error_zones_latest(version=version)
    if run is None:
        return {"version": version.pk, "run": None, "zones": []}
    return {
        "version": version.pk,
        "run": {
            "id": run.pk, "method": run.method, "window": run.window,
            "start": run.start.isoformat(), "end": run.end.isoformat(),
            "n_outcomes": run.n_outcomes, "n_errors": run.n_errors,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        },
        "zones": [
            {"index": z.index, "size": z.size, "n_outcomes": z.n_outcomes,
             "error_rate": z.error_rate, "top_terms": z.top_terms, "examples": z.examples,
             "trend": z.trend}
            for z in run.zones.all()
        ],
    }  # fmt: skip
