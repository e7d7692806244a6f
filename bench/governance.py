"""Governance benchmark: webhook deliveries through a real Celery worker to a local receiver.

Prints one JSON document on stdout (progress goes to stderr).  Like bench/faults.py it
recreates its own database (the name in ``DATABASE_URL`` must contain "bench"; without
``DATABASE_URL``, a fresh SQLite file) and starts its **own** redis-server on a free port
as the broker (any ``REDIS_URL`` is ignored), with one worker on the ``webhooks`` queue
(``--concurrency=2``, as tests/processes.py starts it).  The receiver is
tests/governance/webhook_receiver.py's ``http.server`` thread in this process.

Parts, in one run:

- ``baseline``: raw HTTP POSTs of the same signed body to the same receiver from one
  thread (httpx, keep-alive): the ceiling for one sender;
- ``burst``: ``--events`` audit events committed in one transaction, each making one
  delivery: deliveries per second from the commit to the last receipt (the worker's
  relay and the web process's after-commit sends both feed the broker), and every
  delivery checked (received once, one attempt, signature valid);
- ``paced``: ``--paced`` events at ``--rate`` per second, one transaction each: delay
  from each event's commit to its receipt (p50/p95/max; goal p95 < 2 s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.annotation import django_setup, log, pct, prepare_database  # noqa: E402
from tests.processes import RedisServer, WorkerProcess  # noqa: E402

WORKER_SETTINGS = {"OUTBOX_RELAY_INTERVAL": "0.2", "WORKER_HEARTBEAT_INTERVAL": "2"}


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def baseline_posts(url: str, count: int, secret: str) -> dict:
    """One thread POSTing a signed body of the benchmark's size, keep-alive."""
    import httpx

    from governance.webhooks import signature_header

    body = json.dumps({"id": "x" * 36, "type": "approval.requested", "data": {}}).encode()
    started = time.perf_counter()
    with httpx.Client() as client:
        for _ in range(count):
            headers = {
                "Attune-Signature": signature_header(
                    secret=secret, body=body, timestamp=int(time.time())
                )
            }
            client.post(url, content=body, headers=headers).raise_for_status()
    seconds = time.perf_counter() - started
    return {"posts": count, "seconds": round(seconds, 3), "per_second": round(count / seconds, 1)}


def event_write(index: int) -> tuple[str, float]:
    """One audited state change (its own transaction) that a subscription wants; returns
    the webhook event id and the wall time just after commit."""
    from django.db import transaction

    from governance.models import WebhookEvent
    from governance.services import audit_event_record

    with transaction.atomic():
        event = audit_event_record(
            action="approval.requested", object_type="governance.approvalrequest",
            object_id=index, after={"kind": "promotion"},
        )  # fmt: skip
        event_id = WebhookEvent.objects.get(audit_sequence=event.sequence).event_id
    return str(event_id), time.time()


def events_write_together(count: int) -> list[str]:
    """``count`` audited changes in one transaction (a bulk operation); their event ids."""
    from django.db import transaction

    from governance.models import WebhookEvent
    from governance.services import audit_event_record

    with transaction.atomic():
        first = None
        for index in range(count):
            event = audit_event_record(
                action="approval.requested", object_type="governance.approvalrequest",
                object_id=index, after={"kind": "promotion"},
            )  # fmt: skip
            first = first or event.sequence
        ids = WebhookEvent.objects.filter(audit_sequence__gte=first).values_list(
            "event_id", flat=True
        )
        return [str(i) for i in ids]


def receipts(receiver) -> dict[str, float]:
    """Event id -> wall time of its first receipt."""
    seen: dict[str, float] = {}
    for request in list(receiver.requests):
        seen.setdefault(json.loads(request.body)["id"], request.wall)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=500, help="burst: events")
    parser.add_argument("--paced", type=int, default=100, help="paced: events")
    parser.add_argument("--rate", type=float, default=5.0, help="paced: events per second")
    parser.add_argument("--baseline-posts", type=int, default=2000)
    args = parser.parse_args()

    os.environ.setdefault("ATTUNE_VAR_DIR", str(Path(tempfile.gettempdir()) / "attune-bench-var"))
    var_dir = Path(os.environ["ATTUNE_VAR_DIR"])
    var_dir.mkdir(parents=True, exist_ok=True)
    redis_server = RedisServer(var_dir / "governance-redis").start()
    worker = None
    try:
        os.environ.pop("CELERY_BROKER_URL", None)
        os.environ["REDIS_URL"] = redis_server.url()
        db_info = prepare_database(args)
        django_setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db import connection

        from governance import services
        from governance.models import WebhookDelivery
        from governance.webhooks import signature_verify
        from tests.governance.webhook_receiver import Receiver

        call_command("migrate", verbosity=0, interactive=False)
        admin = get_user_model().objects.create(username="bench-admin", is_superuser=True)
        report: dict = {
            "database": db_info,
            "broker": f"own redis-server {redis_server.url()}",
            "cpus": os.cpu_count(),
            "worker": "1 process, --concurrency=2, queue webhooks",
            "args": vars(args),
        }
        with Receiver() as receiver:
            subscription, secret = services.webhook_subscription_create(
                user=admin, name="bench", url=receiver.url,
                event_types=["approval.requested"], allow_private=True,
            )  # fmt: skip
            log(f"baseline: {args.baseline_posts} raw POSTs from one thread")
            report["baseline_raw_post"] = baseline_posts(receiver.url, args.baseline_posts, secret)
            receiver.requests.clear()
            connection.close()

            worker = WorkerProcess(
                env={"DATABASE_URL": os.environ["DATABASE_URL"], **WORKER_SETTINGS},
                log_path=var_dir / "governance-worker.log",
                name="bench-webhooks@%h",
            ).start(queues="webhooks")

            log(f"burst: {args.events} events committed in one transaction")
            started = time.time()
            event_ids = events_write_together(args.events)
            committed_at = time.time()
            write_seconds = committed_at - started
            committed = dict.fromkeys(event_ids, committed_at)
            done = wait_for(lambda: len(receipts(receiver)) >= args.events, timeout=600)
            seen = receipts(receiver)
            finished = max(seen.values()) if seen else time.time()
            elapsed = finished - committed_at
            deliveries = WebhookDelivery.objects.filter(subscription=subscription)
            per_delivery = Counter(r.headers["Attune-Delivery"] for r in receiver.requests)
            report["burst"] = {
                "events": args.events,
                "all_delivered": done,
                "write_seconds_incl_after_commit_sends": round(write_seconds, 2),
                "seconds_commit_to_last_receipt": round(elapsed, 2),
                "deliveries_per_second": round(len(seen) / elapsed, 1),
                "requests_received": len(receiver.requests),
                "deliveries_received_twice": sum(1 for n in per_delivery.values() if n > 1),
                "succeeded_in_one_attempt": deliveries.filter(
                    status="succeeded", attempts=1
                ).count(),
                "signatures_valid": all(
                    signature_verify(
                        secret=secret, header=r.headers["Attune-Signature"], body=r.body
                    )
                    for r in receiver.requests
                ),
                "delay_commit_to_receipt_ms": _delays(committed, seen),
            }
            report["ratio_deliveries_to_raw_posts"] = round(
                report["burst"]["deliveries_per_second"]
                / report["baseline_raw_post"]["per_second"],
                3,
            )
            receiver.requests.clear()
            connection.close()

            log(f"paced: {args.paced} events at {args.rate}/s")
            committed = {}
            interval = 1.0 / args.rate
            next_at = time.monotonic()
            for index in range(args.paced):
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
                event_id, at = event_write(args.events + index)
                committed[event_id] = at
            wait_for(lambda: len(receipts(receiver)) >= args.paced, timeout=120)
            delays = _delays(committed, receipts(receiver))
            report["paced"] = {
                "events": args.paced,
                "rate_per_second": args.rate,
                "delay_commit_to_receipt_ms": delays,
                "goal_p95_ms": 2000,
                "goal_met": delays["p95_ms"] is not None and delays["p95_ms"] < 2000,
            }
        print(json.dumps(report, indent=2))
    finally:
        if worker is not None:
            worker.terminate()
        redis_server.close()


def _delays(committed: dict[str, float], seen: dict[str, float]) -> dict:
    values = [(seen[k] - at) * 1000 for k, at in committed.items() if k in seen]
    return {
        "n": len(values),
        "missing": len(committed) - len(values),
        "p50_ms": pct(values, 50),
        "p95_ms": pct(values, 95),
        "max_ms": round(max(values), 1) if values else None,
    }


if __name__ == "__main__":
    main()
