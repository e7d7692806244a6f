"""Fault benchmark: annotation under a Redis outage and a worker killed mid-import.

Prints one JSON document on stdout (progress goes to stderr).  Like bench/annotation.py
it recreates its own database (the name in ``DATABASE_URL`` must contain "bench"; without
``DATABASE_URL``, a fresh SQLite file), and it starts its **own** redis-server on a free
port (cache and broker; any ``REDIS_URL`` is ignored), so it never stops a shared Redis.

Timeline, while ``--clients`` HTTP annotators (bench/annotation.py's clients: next ->
submit, 5 % re-sent submits) work against gunicorn, with one Celery worker and beat:

1. ``--warmup`` seconds of normal traffic;
2. Redis is stopped for ``--outage`` seconds; during the outage an import is queued;
3. Redis starts again: we time until the import queued during the outage has run;
4. a large import (``--import-rows``) starts; once it runs, the worker's whole process
   group is killed (SIGKILL) and a new worker is started at once: we time until the job
   is requeued (by beat's reaper, once the dead worker's heartbeat is older than
   ``WORKER_HEARTBEAT_MAX_AGE``) and until it has finished;
5. clients stop; the database is checked: requests that failed, votes acknowledged but
   missing (lost) or stored twice (duplicated), jobs left queued or running (stuck),
   outbox rows still unsent, uploads left behind.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.annotation import (  # noqa: E402  (the repository root is put on the path first)
    bench_import,
    django_setup,
    http_clients_start,
    http_integrity_checks,
    http_server_start,
    http_server_stop,
    items_file,
    log,
    make_users,
    prepare_database,
)
from tests.processes import RedisServer, WorkerProcess  # noqa: E402

# Short enough that the benchmark sees a vanished worker's job requeued in seconds.
FAULT_SETTINGS = {
    "WORKER_HEARTBEAT_INTERVAL": "2",
    "WORKER_HEARTBEAT_MAX_AGE": "10",
    "WORKER_REAP_INTERVAL": "5",
    "OUTBOX_RELAY_INTERVAL": "1",
}


def wait_for(predicate, timeout: float, interval: float = 0.2):
    """Poll until ``predicate()`` is truthy; returns (value, seconds) or (None, None)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        value = predicate()
        if value:
            return value, round(time.monotonic() - started, 1)
        time.sleep(interval)
    return None, None


def job_status(job_id: int) -> str:
    from django.db import connection

    from annotation.models import ImportJob

    try:
        return ImportJob.objects.values_list("status", flat=True).get(pk=job_id)
    finally:
        connection.close()  # polled from the main thread between long waits


def start_beat(var_dir: Path) -> subprocess.Popen:
    """Celery beat as its own process (as under supervisor), logging next to the worker."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "rlhf_platform.settings"}
    log_file = (var_dir / "faults-beat.log").open("w")
    schedule = var_dir / "faults-beat-schedule"
    schedule.unlink(missing_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "rlhf_platform", "beat", "--loglevel=INFO",
         f"--schedule={schedule}"],
        cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--items", type=int, default=20_000, help="items of the labelled project")
    parser.add_argument("--outage", type=float, default=30, help="seconds Redis is down")
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--import-rows", type=int, default=200_000)
    parser.add_argument("--max-seconds", type=float, default=300, help="clients' hard stop")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (conf: 3)")
    parser.add_argument("--threads", type=int, default=0, help="gunicorn threads (conf: 4)")
    parser.add_argument("--server-debug", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("ATTUNE_VAR_DIR", str(Path(tempfile.gettempdir()) / "attune-bench-var"))
    var_dir = Path(os.environ["ATTUNE_VAR_DIR"])
    var_dir.mkdir(parents=True, exist_ok=True)
    redis_server = RedisServer(var_dir / "faults-redis").start()
    try:
        os.environ.pop("CELERY_BROKER_URL", None)
        os.environ["REDIS_URL"] = redis_server.url()
        os.environ.update(FAULT_SETTINGS)
        log(f"own redis-server on port {redis_server.port}")
        db_info = prepare_database(args)
        django_setup()

        from django.core.files import File
        from django.core.management import call_command
        from django.db import connection
        from rest_framework.authtoken.models import Token

        from annotation import services
        from annotation.models import ImportJob
        from governance.models import OutboxMessage

        call_command("migrate", verbosity=0, interactive=False)
        from django.contrib.auth import get_user_model

        owner = get_user_model().objects.create(username="bench-owner")
        project, _ = bench_import(args, owner, args.items, "faults", overlap=3)
        import_target = services.project_create(created_by=owner, name="faults imports")
        tokens = []
        for user in make_users("faults", args.clients):
            services.project_member_add(project=project, user=user, role="annotator")
            tokens.append(Token.objects.create(user=user).key)
        big_file = items_file(var_dir, args.import_rows, "faults-import")
        connection.close()

        worker_env = {"DATABASE_URL": os.environ["DATABASE_URL"]}
        workers = [
            WorkerProcess(
                env=worker_env, log_path=var_dir / "faults-worker-0.log", name="faults@%h"
            )
        ]
        beat = server = None
        report: dict = {
            "database": db_info,
            "redis": f"own redis-server {redis_server.url()} (appendonly)",
            "cpus": os.cpu_count(),
            "settings": FAULT_SETTINGS,
            "args": vars(args),
        }
        try:
            workers[0].start()
            beat = start_beat(var_dir)
            server, port = http_server_start(args)
            clients_started = time.monotonic()
            deadline = mp.get_context("fork").Value("d", time.monotonic() + args.max_seconds)
            collect = http_clients_start(port, project.pk, tokens, args.client_processes, deadline)
            log(f"{args.clients} clients annotating; warm-up {args.warmup} s")
            time.sleep(args.warmup)

            # --- Redis outage --------------------------------------------------------------
            log(f"stopping Redis for {args.outage} s")
            redis_server.stop()
            outage_started = time.monotonic()
            small_file = items_file(var_dir, 500, "faults-small")
            queued_started = time.monotonic()
            with open(small_file, "rb") as handle:
                during = services.import_job_create(
                    project=import_target, user=owner, file=File(handle, name="during.jsonl"),
                    fmt="trl",
                )  # fmt: skip
            queue_seconds = round(time.monotonic() - queued_started, 2)
            connection.close()
            time.sleep(max(0.0, args.outage - (time.monotonic() - outage_started)))
            status_in_outage = job_status(during.pk)
            redis_server.start()
            log("Redis is back")
            _, resumed_s = wait_for(lambda: job_status(during.pk) == "succeeded", timeout=120)
            report["redis_outage"] = {
                "seconds_down": round(time.monotonic() - outage_started, 1),
                "import_queued_during_outage": {
                    "seconds_to_queue_it": queue_seconds,
                    "status_while_down": status_in_outage,
                    "final_status": job_status(during.pk),
                    "seconds_until_run_after_redis_back": resumed_s,
                },
                "worker_survived": workers[0].alive(),
            }
            log(f"queued work resumed {resumed_s} s after Redis came back")

            # --- Worker killed mid-import ---------------------------------------------------
            with open(big_file, "rb") as handle:
                big = services.import_job_create(
                    project=import_target, user=owner, file=File(handle, name="big.jsonl"),
                    fmt="trl",
                )  # fmt: skip
            connection.close()
            _, to_running = wait_for(lambda: job_status(big.pk) == "running", timeout=120)
            time.sleep(2)  # well inside the import
            status_at_kill = job_status(big.pk)
            workers[-1].kill()
            killed_at = time.monotonic()
            log(f"killed the worker mid-import (job {status_at_kill})")
            workers.append(
                WorkerProcess(
                    env=worker_env, log_path=var_dir / "faults-worker-1.log", name="faults@%h"
                )
            )
            workers[-1].start()
            restarted_at = time.monotonic()
            _, requeued_s = wait_for(
                lambda: (
                    ImportJob.objects.filter(pk=big.pk, attempts__gte=2).exists()
                    or job_status(big.pk) == "queued"
                ),
                timeout=180,
            )
            _, finished_s = wait_for(
                lambda: job_status(big.pk) in ("succeeded", "failed"), timeout=600, interval=0.5
            )
            big.refresh_from_db()
            report["worker_killed"] = {
                "import_rows": args.import_rows,
                "status_when_killed": status_at_kill,
                "seconds_to_running": to_running,
                "seconds_worker_restart": round(restarted_at - killed_at, 1),
                "seconds_until_requeued_after_restart": requeued_s,
                "seconds_until_finished_after_restart": (
                    round(time.monotonic() - restarted_at, 1) if finished_s is not None else None
                ),
                "final_status": big.status,
                "attempts": big.attempts,
                "created": big.created,
                "message": big.message,
            }
            log(f"big import {big.status} after {report['worker_killed']}")
            connection.close()
            time.sleep(3)  # clients annotate on after the faults
            log("stopping clients")
            deadline.value = time.monotonic()  # each client ends after its current request
            merged, _ = collect()
            clients_seconds = time.monotonic() - clients_started
            # Debounced consensus runs still waiting in the outbox go out within the debounce.
            _, outbox_drained_s = wait_for(
                lambda: not OutboxMessage.objects.filter(sent_at__isnull=True).exists(), timeout=60
            )
        finally:
            if server is not None:
                http_server_stop(server)
            for worker in workers:
                worker.terminate(timeout=20)
            if beat is not None:
                beat.terminate()
                beat.wait(timeout=20)

        checks = http_integrity_checks(project, merged)
        failed = sum(merged["errors"].values())
        stuck = ImportJob.objects.filter(status__in=["queued", "running"]).count()
        left_uploads = sum(1 for job in ImportJob.objects.exclude(file="") if job.file)
        lost = max(0, checks["annotations_created_201"] - checks["annotations_in_db"])
        report["annotation"] = {
            "clients": args.clients,
            "requests": len(merged["next_ms"]) + len(merged["submit_ms"]) + len(merged["retry_ms"]),
            "seconds": round(clients_seconds, 1),
            "annotations_per_s": round(checks["annotations_created_201"] / clients_seconds, 1),
            "requests_failed": failed,
            "errors": merged["errors"],
            "annotations_created_201": checks["annotations_created_201"],
            "votes_lost": lost,
            "votes_duplicated": checks["duplicate_annotator_item"]
            + checks["duplicate_idempotency_key"],
            "items_over_overlap": checks["items_over_overlap"],
            "retries_answered_with_original": f"{merged['retries_ok']}/{merged['retries']}",
            "checks_ok": checks["ok"],
        }
        report["after"] = {
            "jobs_stuck": stuck,
            "outbox_unsent": OutboxMessage.objects.filter(sent_at__isnull=True).count(),
            "seconds_until_outbox_drained": outbox_drained_s,
            "uploads_left_on_finished_jobs": left_uploads,
            "worker_errors_in_logs": sum(
                1
                for worker in workers
                for line in worker.log().splitlines()
                if "CRITICAL" in line or "Unrecoverable" in line
            ),
        }
        json.dump(report, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")

    finally:
        redis_server.close()


if __name__ == "__main__":
    main()
