"""Error zones: the disagreements of a version cluster by what their items say (TF-IDF,
or sentence embeddings), each zone with top terms, size, error rate and trend; stored by
the monitoring worker's service and shown on the dashboard and in the API."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from annotation import services as annotation_services
from governance.models import AuditEvent
from monitoring import zones
from monitoring.models import ErrorZone, ErrorZoneRun

from .conftest import T0, prediction_make

TOPICS = {
    "code": ["python", "traceback", "exception", "function", "module", "import", "error", "list"],
    "baking": ["bread", "oven", "flour", "yeast", "dough", "bake", "crust", "temperature"],
    "weather": ["weather", "forecast", "rain", "sunny", "cloudy", "snow", "wind", "cold"],
}
FILLER = ["please", "help", "me", "with", "this", "question", "about", "it"]


def _texts(topic: str, n: int, rng) -> list[str]:
    """Short requests on a topic: four of its words and two filler words, shuffled."""
    out = []
    for _ in range(n):
        words = [*rng.choice(TOPICS[topic], 4, replace=False), *rng.choice(FILLER, 2)]
        out.append(" ".join(rng.permutation(words)))
    return out


CODE, BAKING, WEATHER = (_texts(t, 4, np.random.default_rng(i)) for i, t in enumerate(TOPICS))


def _synthetic(days: int = 2, per_topic: int = 20):
    """The model is wrong on every code and baking item and on one weather item in four."""
    rng = np.random.default_rng(3)
    texts, errors, buckets = [], [], []
    for day in range(days):
        for topic in TOPICS:
            for i, text in enumerate(_texts(topic, per_topic, rng)):
                texts.append(text)
                errors.append(topic != "weather" or i % 4 == 0)
                buckets.append(T0 + timedelta(days=day))
    return texts, np.array(errors), buckets


def _zone_about(found, *words):
    return next(z for z in found if set(words) & {t for t, _ in z["top_terms"][:3]})


def test_tfidf_zones_group_disagreements_by_topic():
    texts, errors, buckets = _synthetic()
    found = zones.zones_find(texts=texts, errors=errors, buckets=buckets)
    assert sum(z["size"] for z in found) == errors.sum()
    code = _zone_about(found, "python", "traceback", "exception", "function", "module")
    baking = _zone_about(found, "bread", "oven", "flour", "yeast", "dough")
    assert code is not baking
    assert code["size"] == baking["size"] == 40 and code["error_rate"] == 1.0
    assert [p["start"] for p in code["trend"]] == [
        T0.isoformat(), (T0 + timedelta(days=1)).isoformat()
    ]  # fmt: skip
    assert [(p["n"], p["errors"]) for p in code["trend"]] == [(20, 20), (20, 20)]


def test_a_zone_counts_the_right_answers_inside_it():
    """The weather items the model gets right lie inside the weather zone: its error rate
    is the share of wrong answers among all of them, not 1."""
    texts, errors, buckets = _synthetic()
    found = zones.zones_find(texts=texts, errors=errors, buckets=buckets, k=3)
    weather = _zone_about(found, "weather", "forecast", "rain", "sunny", "snow", "wind")
    assert weather["size"] == 10 and weather["n_outcomes"] > weather["size"]
    assert 0.0 < weather["error_rate"] < 1.0
    assert all(z["n_outcomes"] >= z["size"] for z in found)


def test_no_zones_without_enough_disagreements():
    texts, _, buckets = _synthetic(days=1)
    errors = np.zeros(len(texts), dtype=bool)
    errors[0] = True
    assert zones.zones_find(texts=texts, errors=errors, buckets=buckets) == []


# -- stored runs ----------------------------------------------------------------------------


@pytest.fixture
def topical(version):
    """Items of the version's project on three topics, and outcomes of predictions that
    name them: wrong on code and baking, right on the weather, on two days."""
    project = version.snapshot.project
    texts = CODE + BAKING + WEATHER
    annotation_services.items_create_bulk(
        project=project,
        rows=[{"external_id": f"t{i}", "prompt": t, "responses": ["yes", "no"]}
              for i, t in enumerate(texts)],
    )  # fmt: skip
    from monitoring.models import Outcome

    rows = []
    for day in range(2):
        at = T0 + timedelta(days=day)
        for i, text in enumerate(texts):
            p = prediction_make(version=version, p_a=0.9, at=at, item_ref=f"{project.pk}:t{i}")
            rows.append(Outcome(prediction=p, version=version, project=project, p_a=0.9,
                                margin=0.4, label=int(text in WEATHER), predicted_at=at))  # fmt: skip
    Outcome.objects.bulk_create(rows)
    return version


@pytest.mark.django_db
def test_a_run_stores_zones_once_and_the_dashboard_shows_them(
    topical, rosa, vic, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        run = zones.error_zones_request(
            version=topical, start=T0, end=T0 + timedelta(days=2), user=rosa
        )
    assert len(callbacks) == 1  # queued once, after commit
    assert AuditEvent.objects.filter(action="monitoring.error_zones_request").count() == 1
    run = zones.error_zones_run(run_id=run.pk)
    assert run.status == "done", run.error
    assert (run.n_outcomes, run.n_errors) == (24, 16)
    stored = list(run.zones.all())
    assert sum(z.size for z in stored) == 16 and stored[0].index == 1
    for topic in ("code", "baking"):  # each wrong topic names a zone
        assert any(set(TOPICS[topic]) & {t for t, _ in z.top_terms[:3]} for z in stored)
    assert all(z.trend and z.examples for z in stored)
    zones.error_zones_run(run_id=run.pk)  # a second delivery does nothing
    assert ErrorZone.objects.filter(run=run).count() == len(stored)

    from monitoring import services

    services.metric_points_update(version=topical, times=[T0])
    client.force_login(vic)
    page = client.get("/monitoring/", {"version": topical.pk})
    assert page.status_code == 200
    assert b'data-testid="error-zones"' in page.content and b'data-zone="1"' in page.content
    data = client.get("/monitoring/zones.json", {"version": topical.pk}).json()
    assert data["run"]["id"] == run.pk and len(data["zones"]) == len(stored)
    assert data["zones"][0]["trend"][0]["n"] >= 1


@pytest.mark.django_db
def test_the_api_lists_runs_with_their_zones(topical, api_as, vic, anna):
    run = zones.error_zones_request(version=topical, start=T0, end=T0 + timedelta(days=2))
    zones.error_zones_run(run_id=run.pk)
    body = api_as(vic).get(f"/api/monitoring/error-zone-runs/{run.pk}/").json()
    assert body["status"] == "done" and body["zones"][0]["top_terms"]
    assert api_as(anna).get("/api/monitoring/error-zone-runs/").status_code == 403


@pytest.mark.django_db
def test_beat_schedules_a_search_per_recently_watched_version(topical):
    runs = zones.error_zones_schedule(now=T0 + timedelta(hours=12))
    assert [r.version_id for r in runs] == [topical.pk] and runs[0].method == "tfidf"
    assert ErrorZoneRun.objects.count() == 1


@pytest.mark.django_db
def test_embedding_zones_with_a_tiny_encoder(topical, tiny_encoder, settings):
    """The embedding path end to end, with a tiny random encoder (it clusters, but its
    zones mean nothing: the MiniLM test below checks meaning)."""
    from models_registry.selectors import base_model_directory

    settings.MONITORING_EMBEDDING_MODEL = str(base_model_directory(base=tiny_encoder))
    run = zones.error_zones_request(
        version=topical, start=T0, end=T0 + timedelta(days=2), method="embedding"
    )
    run = zones.error_zones_run(run_id=run.pk)
    assert run.status == "done", run.error
    assert sum(z.size for z in run.zones.all()) == 16


def test_minilm_embeddings_group_by_meaning_not_words():
    """The real all-MiniLM-L6-v2: disagreements about animals and about money share no
    words, yet fall into two zones by topic."""
    animals = ["the dog barked at night", "a kitten sleeps on the sofa",
               "puppies love to chase balls", "my cat purrs loudly"]  # fmt: skip
    money = ["stock markets crashed today", "interest rates rose again",
             "bond yields fell sharply", "shares of the bank dropped"]  # fmt: skip
    texts = animals + money + ["hello there", "good morning"]
    errors = np.array([True] * 8 + [False, False])
    found = zones.zones_find(
        texts=texts, errors=errors, buckets=[T0] * 10, method="embedding", k=2,
        refs=[f"1:{i}" for i in range(10)],
    )  # fmt: skip
    groups = sorted(sorted(int(r.split(":")[1]) for r in z["examples"]) for z in found)
    assert groups == [[0, 1, 2, 3], [4, 5, 6, 7]]


@pytest.mark.django_db
def test_the_command_runs_a_search_now(topical):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("error_zones", topical.ref, "--now", "--days", "100000", stdout=out)
    assert "zone 1:" in out.getvalue()
    assert ErrorZoneRun.objects.get().status == "done"
