"""Review-queue benchmark: the approval queue page with 10,000 stored requests.

Prints one JSON document on stdout (progress goes to stderr).  Like bench/annotation.py it
creates its own database and touches no other: on PostgreSQL
(``DATABASE_URL=postgres://.../attune_bench``) it drops and recreates that database (the
name must contain "bench"); without ``DATABASE_URL`` it uses a fresh SQLite file under
``$ATTUNE_VAR_DIR``.  See bench/README.md.

Pages, each requested ``--repeat`` times by a signed-in member of the ethics committee
through Django's test client (the whole stack: middleware, access checks, templates):

empty_queue     /governance/approvals/ before any request exists (the baseline)
audit_trail     /governance/audit/ with as many audit events as requests: an existing page
                of the same shape (a filtered, paginated table of 50 rows)
queue_pending   /governance/approvals/ with --requests stored (default filter: pending)
queue_all       /governance/approvals/?status=all
queue_filtered  /governance/approvals/?status=all&kind=model.promote&project=<id>
request_page    /governance/approvals/<id>/ (evidence, gates, decision form)

Ratios compare each page with the empty queue and with the audit trail, measured in the
same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import time
from pathlib import Path

# The database set-up and figures of bench/annotation.py, loaded under another name (its
# own name is the Django app's).
_spec = importlib.util.spec_from_file_location(
    "bench_annotation", Path(__file__).resolve().parent / "annotation.py"
)
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)
django_setup, log, prepare_database, summary_ms = (
    _shared.django_setup, _shared.log, _shared.prepare_database, _shared.summary_ms,
)  # fmt: skip


def timed_get(client, url: str, repeat: int) -> dict:
    """``repeat`` GETs of ``url`` (after two warm-up requests), in milliseconds."""
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return {"url": url, **summary_ms(times)}


def world():
    """A researcher, two committee members, a labelled project, its snapshot and a version."""
    from annotation import exports
    from annotation import services as annotation
    from annotation.consensus import consensus_recompute
    from annotation.models import ProjectStats
    from governance.services import user_create
    from models_registry import services as registry
    from models_registry.models import ModelVersion

    users = {
        name: user_create(username=name, password="bench-password", roles=roles)
        for name, roles in (("rosa", ["researcher"]), ("eve", ["ethics_committee"]),
                            ("anna", ["annotator"]), ("ethan", ["ethics_committee"]))
    }  # fmt: skip
    project = annotation.project_create(created_by=users["rosa"], name="Bench", overlap=1)
    annotation.project_member_add(project=project, user=users["anna"], role="annotator")
    annotation.items_create_bulk(
        project=project,
        rows=[
            {"external_id": f"i{i}", "prompt": f"p{i}", "responses": ["a", "b"]} for i in range(20)
        ],
    )
    while assignment := annotation.assignment_next(project=project, annotator=users["anna"]):
        annotation.annotation_submit(
            project=project, item_id=assignment.item_id, annotator=users["anna"],
            answer={"preference": {"choice": "A"}}, idempotency_key=f"k{assignment.item_id}",
        )  # fmt: skip
    consensus_recompute(project=project)
    # One annotator gives no α: record what two agreeing ones would (the gate reads it).
    ProjectStats.objects.filter(project=project).update(metrics={"alpha_nominal": 0.8})
    snapshot = exports.dataset_export(project=project, fmt="trl", user=users["rosa"])
    base = registry.base_model_minilm_ensure(user=users["rosa"])
    model = registry.registered_model_create(name="bench-rm", user=users["rosa"])
    reliability = {"prob_pred": [0.3, 0.7], "prob_true": [0.3, 0.7], "count": [5, 5]}
    version = ModelVersion.objects.create(
        registered_model=model, number=1, kind="reward", base_model=base, snapshot=snapshot,
        snapshot_sha256=snapshot.sha256, artifact_path="models/bench-rm/1",
        artifact_sha256="0" * 64, artifact_files={}, size_bytes=0, training_config={},
        library_versions={}, metrics={"heldout_accuracy": 0.8, "heldout_pairs": 40},
        calibration={"method": "temperature", "temperature": 1.2, "n_pairs": 40,
                     "before": {"ece": 0.08, "reliability": reliability},
                     "after": {"ece": 0.03, "reliability": reliability}},
    )  # fmt: skip
    return users, project, version


def requests_store(*, template, n: int, seed: int = 0) -> None:
    """``n`` requests like ``template`` (a real one), in bulk: kinds, statuses and ages
    mixed as a year of a busy team's queue would be (about 5 % still pending)."""
    from datetime import timedelta

    from django.utils import timezone

    from governance.models import ApprovalRequest

    rng = random.Random(seed)
    statuses = ["pending"] * 5 + ["executed"] * 70 + ["rejected"] * 15 + ["expired"] * 10
    kinds = ["model.promote"] * 6 + ["model.rollback", "model.revoke", "dataset.release",
                                     "alert_rule.change"]  # fmt: skip
    now = timezone.now()
    fields = {f.attname: getattr(template, f.attname) for f in ApprovalRequest._meta.concrete_fields
              if f.attname not in ("id", "created_at")}  # fmt: skip
    rows = []
    for i in range(n):
        created = now - timedelta(minutes=rng.randint(0, 525_600))
        rows.append(ApprovalRequest(**{
            **fields, "kind": rng.choice(kinds), "status": rng.choice(statuses),
            "title": f"Request {i}: {template.title}", "expires_at": created + timedelta(days=14),
            "project_id": template.project_id if rng.random() < 0.5 else template.project_id + 1,
        }))  # fmt: skip
    created_rows = ApprovalRequest.objects.bulk_create(rows, batch_size=1000)
    # auto_now_add ignores a given value: spread the opening times afterwards.
    for row in created_rows:
        row.created_at = now - timedelta(minutes=rng.randint(0, 525_600))
    ApprovalRequest.objects.bulk_update(created_rows, ["created_at"], batch_size=1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("ATTUNE_VAR_DIR", "/tmp/attune-bench-var")
    os.environ.setdefault("DEBUG", "1")
    Path(os.environ["ATTUNE_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    database = prepare_database(args)
    django_setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from governance import services
    from governance.models import ApprovalRequest, AuditEvent

    log("migrating")
    call_command("migrate", verbosity=0)
    users, project, version = world()
    client = Client(HTTP_HOST="localhost")
    client.force_login(users["eve"])
    pages = {"empty_queue": timed_get(client, "/governance/approvals/", args.repeat)}

    real = services.approval_request_open(
        kind="model.promote", subject=version, payload={"alias": "production"},
        requested_by=users["rosa"], justification="Bench: a real request to copy.",
    )  # fmt: skip
    services.approval_request_decide(
        request=real, reviewer=users["ethan"], verdict="approve", rationale="bench"
    )
    log(f"recording {args.requests} audit events (the audit trail's rows)")
    from django.db import transaction

    with transaction.atomic():
        for i in range(args.requests - AuditEvent.objects.count()):
            services.audit_event_record(action="bench.event", object_type="bench", object_id=i)
    log(f"storing {args.requests} requests")
    started = time.perf_counter()
    requests_store(template=real, n=args.requests - 1)
    store_seconds = time.perf_counter() - started
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE governance_approvalrequest")
    stored = ApprovalRequest.objects.count()
    log(f"{stored} requests stored in {store_seconds:.1f} s; measuring")
    pages["audit_trail"] = timed_get(client, "/governance/audit/", args.repeat)
    pages["queue_pending"] = timed_get(client, "/governance/approvals/", args.repeat)
    pages["queue_all"] = timed_get(client, "/governance/approvals/?status=all", args.repeat)
    pages["queue_filtered"] = timed_get(
        client, f"/governance/approvals/?status=all&kind=model.promote&project={project.pk}",
        args.repeat,
    )  # fmt: skip
    pages["request_page"] = timed_get(client, f"/governance/approvals/{real.pk}/", args.repeat)
    baseline, audit = pages["empty_queue"]["p95_ms"], pages["audit_trail"]["p95_ms"]
    report = {
        "benchmark": "review_queue",
        "database": database,
        "requests_stored": stored,
        "pending": ApprovalRequest.objects.filter(status="pending").count(),
        "audit_events": AuditEvent.objects.count(),
        "repeat": args.repeat,
        "store_seconds": round(store_seconds, 2),
        "pages": pages,
        "p95_ratio_to_empty_queue": {
            name: round(page["p95_ms"] / baseline, 2) for name, page in pages.items()
        },
        "p95_ratio_to_audit_trail": {
            name: round(page["p95_ms"] / audit, 2) for name, page in pages.items()
        },
        "goal": "queue p95 with 10,000 requests < 200 ms, within 1.5x of the audit trail",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
