"""Monitoring reads for the control charts, the model evolution and the user-preference
timeline: every figure comes from pre-aggregated rows (metric points, preference and
annotator points), never from a scan of predictions or votes, so the pages and the API
answer fast whatever the number of predictions stored.

The registry is read through ``models_registry.selectors``, projects through
``annotation.selectors``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings

from annotation import selectors as annotation_selectors
from governance import access
from models_registry import selectors as registry_selectors
from models_registry.models import ModelVersion, RegisteredModel

from . import spc
from .models import AlertRule, AnnotatorDrift, AnnotatorPoint, MetricPoint, PreferencePoint
from .preferences import annotator_chart, annotator_drift_settings
from .selectors import metric_series

#: The metric-point fields a control chart may follow.
CHART_METRICS = ("accuracy", "ece", "brier")
#: How many points a chart or a trajectory shows at most (the latest ones).
POINTS_LIMIT = 500


def _chart_body(
    chart: spc.ControlChart, *, starts: list[datetime], counts: list[int], **about
) -> dict[str, Any]:
    """A judged chart as the API's ``ControlChart`` body."""
    return {
        **about,
        "baseline": chart.baseline,
        "rules": list(chart.rules),
        "center": chart.center,
        "out_of_control": chart.out_of_control,
        "points": [
            {"start": start, "value": value, "n": n, "ucl": ucl, "lcl": lcl, "z": z,
             "signals": signals}
            for start, value, n, ucl, lcl, z, signals in zip(
                starts, chart.values, counts, chart.ucl, chart.lcl, chart.z, chart.signals,
                strict=True,
            )
        ],
    }  # fmt: skip


def accuracy_control_chart(
    *, version: ModelVersion, window: str, metric: str = "accuracy", baseline: int | None = None,
    rules=(1,),
) -> dict[str, Any]:  # fmt: skip
    """The control chart of a version's ``metric`` (model–human agreement: accuracy, by
    default) per ``window``: centre ± 3σ from its first ``baseline`` points."""
    baseline = baseline or settings.MONITORING_SPC_BASELINE
    points = metric_series(version=version, window=window, limit=POINTS_LIMIT)
    chart = spc.individuals_chart(
        [getattr(p, metric) for p in points], baseline=baseline, rules=rules
    )
    return _chart_body(
        chart, starts=[p.start for p in points], counts=[p.n for p in points],
        subject=version.ref, metric=metric, window=window,
    )  # fmt: skip


def agreement_control_chart(
    *, project_id: int, window: str, baseline: int | None = None, rules=(1,)
) -> dict[str, Any]:
    """The control chart of a project's annotator agreement (Krippendorff's α, nominal,
    of the items completed in each bucket); buckets without α are left out."""
    baseline = baseline or settings.MONITORING_SPC_BASELINE
    points = [
        p
        for p in PreferencePoint.objects.filter(project_id=project_id, window=window).order_by(
            "-start"
        )[:POINTS_LIMIT]
        if p.alpha is not None
    ][::-1]
    chart = spc.individuals_chart([p.alpha for p in points], baseline=baseline, rules=rules)
    names = annotation_selectors.project_names(project_ids=[project_id])
    return _chart_body(
        chart, starts=[p.start for p in points], counts=[p.n_items for p in points],
        subject=names.get(project_id, str(project_id)), metric="alpha", window=window,
    )  # fmt: skip


def annotator_control_chart(*, project_id: int, annotator_id: int, metric: str) -> dict[str, Any]:
    """One annotator's drift chart, as judged by ``preferences.annotator_drift_update``
    (agreement: a p-chart; speed: an x̄-chart of the log time per vote, ms shown)."""
    import math

    config = annotator_drift_settings()
    points = list(
        AnnotatorPoint.objects.filter(
            project_id=project_id, annotator_id=annotator_id, window=config["window"]
        ).order_by("start")
    )
    used, chart = annotator_chart(
        points=points, metric=metric, baseline=config["baseline"], rules=config["rules"],
        min_votes=config["min_votes"],
    )  # fmt: skip
    body = _chart_body(
        chart, starts=[p.start for p in used],
        counts=[p.n_consensus_votes if metric == "agreement" else p.n_votes for p in used],
        subject=str(annotator_id), metric=metric, window=config["window"],
    )  # fmt: skip
    if metric == AnnotatorDrift.Metric.SPEED:  # back from log-ms to ms for people
        unlog = lambda v: None if v is None else math.exp(v)  # noqa: E731
        body["center"] = unlog(body["center"])
        for point in body["points"]:
            point["value"], point["ucl"], point["lcl"] = (
                unlog(point[k]) for k in ("value", "ucl", "lcl")
            )
    return body


def spc_rule_value(*, rule: AlertRule, version: ModelVersion) -> tuple[float, datetime] | None:
    """An SPC alert metric: 1.0 when the latest point of the version's accuracy chart (in
    the rule's window) is out of control, else 0.0 — None while the latest point has
    fewer than ``min_outcomes`` outcomes or the baseline is not complete."""
    rules = spc.ALL_RULES if rule.metric == "accuracy_we" else (1,)
    points = metric_series(version=version, window=rule.window, limit=POINTS_LIMIT)
    baseline = settings.MONITORING_SPC_BASELINE
    if len(points) <= baseline or points[-1].n < rule.min_outcomes:
        return None
    chart = spc.individuals_chart([p.accuracy for p in points], baseline=baseline, rules=rules)
    if chart.center is None:
        return None
    return (1.0 if chart.out_of_control else 0.0), points[-1].start


# -- model evolution ------------------------------------------------------------------------


def _weighted(points: list[MetricPoint], field: str) -> float | None:
    total = sum(p.n for p in points)
    return sum(getattr(p, field) * p.n for p in points) / total if total else None


def model_evolution(*, registered_model: RegisteredModel, window: str) -> dict[str, Any]:
    """A registered model's versions side by side: what each was trained on (snapshot,
    items, agreement at the time), its held-out accuracy and calibration, and in
    production its outcomes' accuracy, ECE and Brier (n-weighted over the ``window``
    points), latest reliability bins and trajectory over time."""
    versions = list(registry_selectors.version_list(registered_model=registered_model))[::-1]
    rows = []
    for version in versions:
        points = metric_series(version=version, window=window, limit=POINTS_LIMIT)
        snapshot = registry_selectors.version_lineage(version=version)["snapshot"]
        agreement = (snapshot.get("agreement") or {}).get("metrics") or {}
        after = (version.calibration or {}).get("after") or {}
        latest = points[-1] if points else None
        rows.append(
            {
                "version": version.pk,
                "ref": version.ref,
                "number": version.number,
                "created_at": version.created_at,
                "aliases": sorted(a.name for a in version.aliases.all()),
                "training": {
                    "snapshot": snapshot["snapshot"],
                    "project": snapshot["project"],
                    "project_name": snapshot["project_name"],
                    "rows": snapshot["rows"],
                    "items": (snapshot.get("agreement") or {}).get("n_items"),
                    "alpha": agreement.get("alpha_nominal"),
                    "heldout_accuracy": (version.metrics or {}).get("heldout_accuracy"),
                    "ece": after.get("ece"),
                    "temperature": (version.calibration or {}).get("temperature"),
                },
                "production": {
                    "outcomes": sum(p.n for p in points),
                    "accuracy": _weighted(points, "accuracy"),
                    "ece": _weighted(points, "ece"),
                    "brier": _weighted(points, "brier"),
                    "reliability": latest.reliability if latest else None,
                },
                "trajectory": [
                    {"start": p.start, "n": p.n, "accuracy": p.accuracy, "ece": p.ece,
                     "brier": p.brier}
                    for p in points
                ],
            }
        )  # fmt: skip
    return {"model": registered_model.name, "window": window, "versions": rows}


# -- user-preference timeline ---------------------------------------------------------------


def preference_timeline(*, project_id: int, window: str) -> dict[str, Any]:
    """How a project's human preferences move: per bucket the share of each choice (A,
    tie, B for pairwise projects), the votes' agreement with consensus and α."""
    names = annotation_selectors.project_label_names(project_id=project_id)
    points = list(
        PreferencePoint.objects.filter(project_id=project_id, window=window).order_by("-start")[
            :POINTS_LIMIT
        ]
    )[::-1]
    width = max([len(names), *(len(p.counts) for p in points)], default=0)
    labels = [names[i] if i < len(names) else str(i) for i in range(width)]
    return {
        "project": project_id,
        "project_name": annotation_selectors.project_names(project_ids=[project_id]).get(
            project_id, ""
        ),
        "window": window,
        "labels": labels,
        "points": [
            {
                "start": p.start,
                "n_votes": p.n_votes,
                "shares": [
                    (p.counts[i] if i < len(p.counts) else 0) / p.n_votes if p.n_votes else 0.0
                    for i in range(width)
                ],
                "agreement": p.agreement,
                "alpha": p.alpha,
                "n_items": p.n_items,
            }
            for p in points
        ],
    }


def projects_monitored(*, user) -> list[tuple[int, str]]:
    """Projects with preference points whose agreement ``user`` may read, as (id, name),
    by name."""
    ids = (
        access.queryset_restrict(queryset=PreferencePoint.objects.all(), user=user)
        .values_list("project_id", flat=True)
        .order_by()
        .distinct()
    )
    names = annotation_selectors.project_names(project_ids=ids)
    return sorted(names.items(), key=lambda kv: (kv[1], kv[0]))


def annotator_drift_list(*, project_id: int):
    """The project's annotator-drift verdicts, drifting first."""
    return AnnotatorDrift.objects.filter(project_id=project_id).select_related("annotator")
