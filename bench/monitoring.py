"""Monitoring benchmark: drift fast path vs. Evidently, alert latency on a real worker, and
the attunement dashboard with 1M predictions stored.

Prints one JSON document on stdout (progress on stderr).  Like bench/annotation.py it
recreates its own database (the name in ``DATABASE_URL`` must contain "bench"; without
``DATABASE_URL``, a fresh SQLite file under ``$ATTUNE_VAR_DIR``).

- ``drift``: ``--rows`` (1,000,000) × 10 columns (6 numerical, 4 categorical), reference
  and current frames of that size, 5 of the columns shifted.  The fast path
  (``monitoring.drift.drift_fast``) and Evidently 0.7's ``DataDriftPreset`` run on the
  same frames in this process; per-column verdicts must be equal.
- ``alerts``: a tiny reward model is trained here, a real Celery worker is started, and
  ``--alerts`` (100) rules watch its production alias (``n ≥ i``, one per prediction).
  Each round stores one prediction of a labelled item through the registry's
  ``predictions_create`` (an outcome: the item has a consensus) and times until the alert
  row of the rule it crosses exists.  Baseline: collection by beat alone (every 60 s).
- ``dashboard``: ``--predictions`` (1,000,000) predictions and their outcomes over 30
  days, metric points pre-aggregated, detectors, an error-zone search; then
  ``--requests`` GETs of each dashboard page as a viewer (Django's test client, in this
  process).  Baseline: the same calibration chart computed by scanning the outcomes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.annotation import django_setup, log, pct, prepare_database  # noqa: E402


def frames(rows: int, seed: int = 0):
    """Reference and current frames: 10 columns, the current one shifted in 5 of them."""
    import pandas as pd

    rng = np.random.default_rng(seed)

    def make(shift: float):
        return pd.DataFrame({
            "num0": rng.normal(shift, 1, rows),
            "num1": rng.normal(0, 1, rows),
            "num2": rng.exponential(1 + shift, rows),
            "num3": rng.uniform(0, 1, rows),
            "num4": rng.normal(0, 1 + shift, rows),
            "num5": rng.gamma(2, 1, rows),
            "cat0": rng.choice(["a", "b", "c"], rows, p=[0.5 - shift / 4, 0.3, 0.2 + shift / 4]),
            "cat1": rng.choice(["x", "y"], rows),
            "cat2": rng.choice(["p", "q", "r", "s"], rows, p=[0.25, 0.25 - shift / 5, 0.25, 0.25 + shift / 5]),
            "cat3": rng.choice(["u", "v", "w"], rows),
        })  # fmt: skip

    return make(0.0), make(0.6)


def bench_drift(args) -> dict:
    from monitoring import drift

    reference, current = frames(args.rows)
    numerical = [f"num{i}" for i in range(6)]
    categorical = [f"cat{i}" for i in range(4)]
    log(f"drift: {args.rows:,} rows x 10 columns")
    # CPU seconds too: on a shared machine the wall time measures the other processes.
    started, cpu = time.perf_counter(), time.process_time()
    fast = drift.drift_fast(reference, current, numerical=numerical, categorical=categorical)
    fast_s, fast_cpu = time.perf_counter() - started, time.process_time() - cpu
    log(f"drift: fast path {fast_s:.2f} s; Evidently next")
    started, cpu = time.perf_counter(), time.process_time()
    evidently, _, _ = drift.drift_evidently(
        reference, current, numerical=numerical, categorical=categorical
    )
    evidently_s, evidently_cpu = time.perf_counter() - started, time.process_time() - cpu
    same = {
        c: v["drifted"] == evidently["columns"][c]["drifted"] for c, v in fast["columns"].items()
    }
    return {
        "rows": args.rows,
        "columns": 10,
        "fast_path_s": round(fast_s, 2),
        "evidently_s": round(evidently_s, 2),
        "speedup": round(evidently_s / fast_s, 1),
        "fast_path_cpu_s": round(fast_cpu, 2),
        "evidently_cpu_s": round(evidently_cpu, 2),
        "speedup_cpu": round(evidently_cpu / fast_cpu, 1),
        "load_average_1min": os.getloadavg()[0],
        "same_verdicts": all(same.values()) and fast["dataset_drift"] == evidently["dataset_drift"],
        "drifted_columns": sorted(c for c, v in fast["columns"].items() if v["drifted"]),
        "tests": {c: v["test"] for c, v in fast["columns"].items()},
        "dataset_drift": fast["dataset_drift"],
        "goal_fast_path_s": 10,
    }


# ----------------------------------------------------------------------------------------


def _world(n_items: int):
    """Users, a labelled project and a tiny reward model trained on it, on production."""
    from django.contrib.auth import get_user_model

    from governance.roles import RESEARCHER, VIEWER
    from models_registry import services as models_services
    from models_registry.models import ModelVersion
    from tests.models_registry.conftest import labelled_snapshot

    User = get_user_model()
    researcher = User.objects.create(username="bench-researcher")
    annotator = User.objects.create(username="bench-annotator")
    viewer = User.objects.create(username="bench-viewer")
    from django.contrib.auth.models import Group

    researcher.groups.add(Group.objects.get(name=RESEARCHER))
    viewer.groups.add(Group.objects.get(name=VIEWER))
    rows = [json.loads(line) for line in
            (ROOT / "rlhf_platform/demo_data/demo-preferences.jsonl").open()][:n_items]  # fmt: skip
    # The models tests' labelled project: the annotator chose each pair's "chosen".
    snapshot = labelled_snapshot(
        researcher=researcher, annotator=annotator, rows=rows, name="watch"
    )
    project = snapshot.project
    texts = [t for r in rows for t in (r["prompt"], r["chosen"], r["rejected"])]
    base = models_services.base_model_build_tiny(
        name="bench-tiny", architecture="encoder", texts=texts, vocab_size=800
    )
    job = models_services.training_job_create(
        user=researcher, kind="reward", registered_model_name="bench-rm", base_model=base,
        snapshot_id=snapshot.pk,
        config={"epochs": 1, "learning_rate": 3e-3, "batch_size": 8, "max_length": 64},
    )  # fmt: skip
    models_services.training_job_run(job_id=job.pk, worker="bench")
    version = ModelVersion.objects.get(training_job_id=job.pk)
    models_services.model_alias_set(
        registered_model=version.registered_model, alias="production", version=version,
        user=researcher,
    )  # fmt: skip
    return {"researcher": researcher, "viewer": viewer, "project": project, "version": version,
            "rows": rows}  # fmt: skip


def bench_alerts(args, world) -> dict:
    from django.db import connection

    from models_registry import services as models_services
    from monitoring import services
    from monitoring.models import Alert
    from tests.processes import WorkerProcess

    version, project, rows = world["version"], world["project"], world["rows"]
    rules = [
        services.alert_rule_create(
            user=world["researcher"],
            name=f"n>={i}",
            metric="n",
            comparator="gte",
            threshold=float(i),
            window="week",
            cooldown=timedelta(days=1),
            registered_model=version.registered_model,
            alias="production",
        )
        for i in range(1, args.alerts + 1)
    ]
    connection.close()
    var_dir = Path(os.environ["ATTUNE_VAR_DIR"])
    worker = WorkerProcess(
        env={"DATABASE_URL": os.environ["DATABASE_URL"], "OUTBOX_RELAY_INTERVAL": "1"},
        log_path=var_dir / "bench-monitoring-worker.log",
        name="bench-monitoring@%h",
    ).start()
    latencies = []
    try:
        for i, rule in enumerate(rules):
            row = rows[i % len(rows)]
            pair = {"prompt": row["prompt"], "response_a": row["chosen"],
                    "response_b": row["rejected"], "item_ref": f"{project.pk}:p{i % len(rows)}"}  # fmt: skip
            models_services.predictions_create(version=version, pairs=[pair], source="bench")
            started = time.perf_counter()  # the outcome exists: its prediction is stored
            deadline = started + 120
            while not Alert.objects.filter(rule=rule).exists():
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"no alert for rule {rule.name} in 120 s")
                time.sleep(0.01)
            latencies.append((time.perf_counter() - started) * 1000)
            if (i + 1) % 20 == 0:
                log(f"alerts: {i + 1}/{len(rules)}, p95 so far {pct(latencies, 95)} ms")
    finally:
        worker.terminate(timeout=20)
    return {
        "alerts": len(latencies),
        "rules_watching": len(rules),
        "p50_ms": pct(latencies, 50),
        "p95_ms": pct(latencies, 95),
        "max_ms": round(max(latencies), 1),
        "all_fired_once": Alert.objects.filter(rule__in=rules).count() == len(rules),
        "baseline_beat_only": "collection by beat every 60 s: 0–60 s, 30 s on average",
        "goal_p95_s": 10,
        "load_average_1min": os.getloadavg()[0],
    }


# ----------------------------------------------------------------------------------------


def _load_outcomes(world, n: int, days: int) -> tuple[float, datetime]:
    """``n`` predictions and outcomes of the version over ``days`` days (raw batched
    inserts with explicit ids: the ORM's bulk_create is 10x slower at this size)."""
    from django.db import connection, transaction

    from models_registry.models import Prediction
    from monitoring.models import Outcome

    version, project = world["version"], world["project"]
    rng = np.random.default_rng(1)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    seconds = np.sort(rng.uniform(0, days * 86400, n))
    p_a = rng.beta(4, 2, n)
    labels = (rng.uniform(size=n) < p_a * 0.9).astype(int)
    n_items = len(world["rows"])
    first_id = (Prediction.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    prediction_sql = (
        f"INSERT INTO {Prediction._meta.db_table} (id, version_id, item_ref, text_sha256, "
        "reward_a, reward_b, margin, p_a, source, created_at) VALUES "
        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    outcome_sql = (
        f"INSERT INTO {Outcome._meta.db_table} (prediction_id, version_id, project_id, p_a, "
        "margin, label, predicted_at, observed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
    )
    now = datetime.now(UTC)
    if connection.vendor == "sqlite":  # what Django stores there: naive UTC
        start, now = start.replace(tzinfo=None), now.replace(tzinfo=None)
    started = time.perf_counter()
    batch = 50000
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        times = [start + timedelta(seconds=float(s)) for s in seconds[lo:hi]]
        predictions, outcomes = [], []
        for i, p, y, t in zip(range(lo, hi), p_a[lo:hi], labels[lo:hi], times, strict=True):
            pk, p = first_id + i, float(p)
            predictions.append((pk, version.pk, f"{project.pk}:p{i % n_items}", "0" * 64, p,
                                0.0, p - 0.5, p, "bench", t))  # fmt: skip
            outcomes.append((pk, version.pk, project.pk, p, p - 0.5, int(y), t, now))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(prediction_sql, predictions)
            cursor.executemany(outcome_sql, outcomes)
        if (hi // batch) % 4 == 0:
            log(f"dashboard: stored {hi:,} predictions and outcomes")
    start = start.replace(tzinfo=UTC)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in (Prediction._meta.db_table, Outcome._meta.db_table):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )
    return time.perf_counter() - started, start


def bench_dashboard(args, world) -> dict:
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.annotation import vacuum_analyze
    from models_registry.calibration import calibration_metrics
    from monitoring import selectors, services, zones
    from monitoring.models import MetricPoint, Outcome

    version = world["version"]
    load_s, start = _load_outcomes(world, args.predictions, args.days)
    vacuum_s = vacuum_analyze(["models_registry_prediction", "monitoring_outcome"])
    started = time.perf_counter()
    end = datetime.now(UTC)
    hours = [
        start + timedelta(hours=h) for h in range(int((end - start).total_seconds() // 3600) + 1)
    ]
    services.metric_points_update(version=version, times=hours)
    points_s = time.perf_counter() - started
    log(f"dashboard: {MetricPoint.objects.count()} metric points in {points_s:.1f} s")
    outcomes = list(Outcome.objects.filter(version=version).order_by("-predicted_at")[:20000])
    with transaction.atomic():  # as in outcomes_collect: the detector rows are locked
        services.detectors_update(version=version, outcomes=outcomes)
    run = zones.error_zones_request(version=version, start=start, end=end)
    started = time.perf_counter()
    run = zones.error_zones_run(run_id=run.pk)
    zones_s = time.perf_counter() - started
    log(f"dashboard: error zones ({run.status}, {run.zones.count()} zones) in {zones_s:.1f} s")

    client = Client()
    client.force_login(world["viewer"])
    pages = {
        "dashboard": f"/monitoring/?version={version.pk}&window=day",
        "dashboard_hourly": f"/monitoring/?version={version.pk}&window=hour",
        "calibration.json": f"/monitoring/calibration.json?version={version.pk}&window=hour",
        "zones.json": f"/monitoring/zones.json?version={version.pk}",
    }
    results = {}
    from django.core.signals import request_started
    from django.db import reset_queries

    for name, url in pages.items():
        assert client.get(url).status_code == 200, url  # warm
        request_started.disconnect(reset_queries)  # else each request empties the log
        try:
            with CaptureQueriesContext(connection) as queries:
                client.get(url)
        finally:
            request_started.connect(reset_queries)
        timings, cpu_timings = [], []
        for _ in range(args.requests):
            t, cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            timings.append((time.perf_counter() - t) * 1000)
            cpu_timings.append((time.process_time() - cpu) * 1000)
            assert response.status_code == 200
        results[name] = {"p50_ms": pct(timings, 50), "p95_ms": pct(timings, 95),
                         "cpu_p95_ms": pct(cpu_timings, 95), "queries": len(queries)}  # fmt: skip
    # Baseline: the hourly calibration chart computed from the outcomes themselves.
    timings = []
    for _ in range(3):
        t = time.perf_counter()
        for hour in hours[-500:]:
            pairs = selectors.outcome_arrays(
                version=version, start=hour, end=hour + timedelta(hours=1)
            )
            if pairs is not None:
                calibration_metrics(*pairs)
        timings.append((time.perf_counter() - t) * 1000)
    return {
        "predictions": args.predictions,
        "outcomes": Outcome.objects.count(),
        "days": args.days,
        "metric_points": MetricPoint.objects.count(),
        "load_s": round(load_s, 1),
        "vacuum_analyze_s": vacuum_s,
        "metric_points_s": round(points_s, 1),
        "error_zones_s": round(zones_s, 1),
        "error_zones": run.zones.count(),
        "pages": results,
        "baseline_scan_hourly_chart_ms": pct(timings, 50),
        "goal_p95_ms": 300,
        "load_average_1min": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--only", default="drift,alerts,dashboard")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    os.environ.setdefault("ATTUNE_VAR_DIR", tempfile.mkdtemp(prefix="bench-monitoring-"))
    os.environ.setdefault("DEBUG", "1")
    report: dict = {"cpus": os.cpu_count(), "args": vars(args)}
    report["database"] = prepare_database(args)
    django_setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if "drift" in parts:
        report["drift"] = bench_drift(args)
        log(f"drift: {report['drift']}")
    if parts & {"alerts", "dashboard"}:
        started = time.perf_counter()
        world = _world(200)
        report["setup_s"] = round(time.perf_counter() - started, 1)
        if "alerts" in parts:
            report["alerts"] = bench_alerts(args, world)
            log(f"alerts: {report['alerts']}")
        if "dashboard" in parts:
            report["dashboard"] = bench_dashboard(args, world)
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
