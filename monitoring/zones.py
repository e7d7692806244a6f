"""Error zones: where the model and the humans disagree, grouped by what the items say.

The disagreements (outcomes whose model-preferred response is not the humans') of a
version are clustered on their texts — TF-IDF vectors or MiniLM sentence embeddings —
with scikit-learn's k-means, k chosen by the silhouette score.  A zone is a region of the
text space: its centre and the distance of its farthest disagreement.  Every outcome
(right or wrong) inside that distance of its nearest centre counts towards the zone, so
each zone has an error rate, and a trend of it per time bucket.  Top terms are the
words whose mean TF-IDF weight in the zone's disagreements most exceeds their weight
over all outcomes.

``zones_find`` is the computation (arrays in, dictionaries out); the service functions
below record runs and zones, queue them on the ``monitoring`` queue and run them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance.outbox import outbox_task_enqueue
from governance.services import audit_event_record
from models_registry.models import ModelVersion

from . import features, selectors
from .models import ErrorZone, ErrorZoneRun, Window

logger = logging.getLogger(__name__)

K_MAX = 8
MIN_ERRORS = 3  # fewer disagreements than this make no zones
TOP_TERMS = 8
EXAMPLES = 5
SILHOUETTE_SAMPLE = 2000


def _kmeans(features_: Any, k: int):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=4, random_state=0).fit(features_)


def _choose_k(errors: Any, k_max: int) -> int:
    """The smallest k in 2..k_max whose silhouette (on a sample) is within 10 % of the
    best one — fewer, broader zones read better than many near-duplicates; 1 for few
    errors or when no clustering beats a silhouette of 0.05."""
    from sklearn.metrics import silhouette_score

    n = errors.shape[0]
    if n < 2 * MIN_ERRORS:
        return 1
    scores = {}
    for k in range(2, min(k_max, n - 1) + 1):
        labels = _kmeans(errors, k).labels_
        if len(set(labels)) > 1:
            scores[k] = silhouette_score(
                errors, labels, sample_size=min(n, SILHOUETTE_SAMPLE), random_state=0
            )
    best = max(scores.values(), default=0.0)
    if best < 0.05:
        return 1
    return min(k for k, score in scores.items() if score >= 0.9 * best)


def zones_find(
    *,
    texts: list[str],
    errors: np.ndarray,
    buckets: list[datetime],
    method: str = ErrorZoneRun.Method.TFIDF,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    k: int | None = None,
    k_max: int = K_MAX,
    refs: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Cluster the rows where ``errors`` is true; one dictionary per zone, largest first:
    ``size``, ``n_outcomes``, ``error_rate``, ``top_terms``, ``examples``, ``trend``
    (``buckets`` holds each row's time bucket)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import pairwise_distances

    errors = np.asarray(errors, dtype=bool)
    wrong = np.flatnonzero(errors)
    if len(wrong) < MIN_ERRORS:
        return []
    # Words of two or more letters (no numbers: they make poor zone names).
    words = r"(?u)\b[^\W\d_]{2,}\b"
    vectorizer = TfidfVectorizer(
        stop_words="english", sublinear_tf=True, max_features=20000, token_pattern=words
    )
    tfidf = vectorizer.fit_transform(texts)
    if method == ErrorZoneRun.Method.EMBEDDING:
        from .embeddings import texts_embed

        space = np.asarray((embed or texts_embed)(texts), dtype=np.float64)
    else:
        space = tfidf
    k = k or _choose_k(space[wrong], k_max)
    model = _kmeans(space[wrong], k)
    centres = model.cluster_centers_
    distances = pairwise_distances(space, centres)
    nearest = distances.argmin(axis=1)
    nearest_distance = distances[np.arange(len(texts)), nearest]
    terms = np.asarray(vectorizer.get_feature_names_out())
    overall = np.asarray(tfidf.mean(axis=0)).ravel()
    refs = refs or [""] * len(texts)
    zones = []
    for zone in range(k):
        members = wrong[model.labels_ == zone]
        if len(members) == 0:
            continue
        radius = nearest_distance[members].max()
        inside = (nearest == zone) & (nearest_distance <= radius + 1e-9)
        lift = np.asarray(tfidf[members].mean(axis=0)).ravel() - overall
        top = [(str(terms[i]), round(float(lift[i]), 4)) for i in np.argsort(-lift)[:TOP_TERMS]]
        closest = members[np.argsort(distances[members, zone])][:EXAMPLES]
        zones.append(
            {
                "size": len(members),
                "n_outcomes": int(inside.sum()),
                "error_rate": float(errors[inside].mean()),
                "top_terms": [[t, w] for t, w in top if w > 0],
                "examples": [refs[i] for i in closest if refs[i]],
                "trend": _trend(np.asarray(buckets, dtype=object)[inside], errors[inside]),
            }
        )
    return sorted(zones, key=lambda z: (-z["size"], -z["error_rate"]))


def _trend(buckets: np.ndarray, errors: np.ndarray) -> list[dict[str, Any]]:
    """Outcomes, errors and error rate per time bucket, oldest first."""
    counts = pd.DataFrame({"start": buckets, "error": errors}).groupby("start")["error"]
    return [
        {"start": start.isoformat(), "n": int(n), "errors": int(e), "error_rate": float(e / n)}
        for (start, n), e in zip(counts.size().items(), counts.sum(), strict=True)
    ]


# -- services ---------------------------------------------------------------------------------


@transaction.atomic
def error_zones_request(
    *,
    version: ModelVersion,
    start: datetime,
    end: datetime,
    method: str = ErrorZoneRun.Method.TFIDF,
    window: str = Window.DAY,
    user=None,
) -> ErrorZoneRun:
    """Record an error-zone search and queue it for the monitoring workers (audited)."""
    run = ErrorZoneRun(
        version=version, method=method, window=window, start=start, end=end, requested_by=user
    )
    run.full_clean(exclude=["version", "requested_by"])
    run.save()
    audit_event_record(
        action="monitoring.error_zones_request",
        obj=run,
        after={"version": version.pk, "method": method, "window": window},
    )
    outbox_task_enqueue(task="monitoring.error_zones_run", kwargs={"run_id": run.pk}, subject=run)
    return run


def error_zones_run(*, run_id: int, embed=None) -> ErrorZoneRun | None:
    """Run a queued search (a repeated delivery of the task does nothing): cluster the
    version's most recent ``MONITORING_ZONES_MAX_OUTCOMES`` outcomes of the window."""
    from .services import bucket_start

    with transaction.atomic():
        run = ErrorZoneRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != ErrorZoneRun.Status.QUEUED:
            return run
        run.status = ErrorZoneRun.Status.RUNNING
        run.save(update_fields=["status"])
    try:
        frame = features.outcome_texts(
            version=run.version, start=run.start, end=run.end,
            limit=settings.MONITORING_ZONES_MAX_OUTCOMES,
        )  # fmt: skip
        frame = frame[frame["prompt"].notna()]  # outcomes whose item is known
        errors = (frame["p_a"] > 0.5).to_numpy() != (frame["label"] == 1).to_numpy()
        embedding = run.method == ErrorZoneRun.Method.EMBEDDING
        if embedding and len(frame) > settings.MONITORING_EMBED_MAX_ROWS:
            raise ValueError(f"{len(frame)} outcomes > MONITORING_EMBED_MAX_ROWS")
        found = zones_find(
            texts=features.item_text(frame),
            errors=errors,
            buckets=[bucket_start(at=t, window=run.window) for t in frame["predicted_at"]],
            method=run.method,
            embed=embed,
            refs=frame["item_ref"].tolist(),
        )
    except Exception as exc:  # a failed run says why; the worker carries on
        logger.exception("error zones %s failed", run_id)
        run.status, run.error = ErrorZoneRun.Status.FAILED, str(exc)[:2000]
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        return run
    with transaction.atomic():
        ErrorZone.objects.bulk_create(
            [ErrorZone(run=run, index=i, **zone) for i, zone in enumerate(found, start=1)]
        )
        run.n_outcomes, run.n_errors = len(frame), int(errors.sum())
        run.status, run.finished_at = ErrorZoneRun.Status.DONE, timezone.now()
        run.save()
    return run


def error_zones_schedule(*, now: datetime | None = None) -> list[ErrorZoneRun]:
    """Beat: for every version with outcomes in the last day, search the last four weeks
    for error zones (TF-IDF; a trend per day)."""
    now = now or timezone.now()
    return [
        error_zones_request(version=version, start=now - timedelta(weeks=4), end=now)
        for version in selectors.versions_with_outcomes(since=now - timedelta(days=1))
    ]
