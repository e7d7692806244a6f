"""Annotation benchmark: import, assignment latency, HTTP submit throughput, consensus.

Prints one JSON document on stdout (progress goes to stderr).  It creates its own database
and touches no other: on PostgreSQL (``DATABASE_URL=postgres://.../attune_bench``) it drops
and recreates that database through the ``postgres`` maintenance database (the name must
contain "bench"); without ``DATABASE_URL`` it uses a fresh SQLite file under
``$ATTUNE_VAR_DIR`` (default ``/tmp/attune-bench-var``).  See bench/README.md.

Parts (``--only`` selects some):

import     items_import of a generated TRL JSONL file (--items rows, default 1,000,000)
next       assignment_next latency on that project: --annotators x --calls, each call
           followed by a submit (90 %) or a skip (10 %) so the frontier moves
http       gunicorn + --clients concurrent HTTP annotators for --seconds doing
           POST next -> POST submit (5 % of submits re-sent with the same key), then
           integrity checks from the database (project of --http-items items, overlap 3)
consensus  consensus_recompute over --annotations-items items x 10 annotators
redaction  items_import of --redaction-items rows (one in ten carrying an e-mail address,
           a phone and a card number) into projects with every PII detector on and with
           none, alternating for --redaction-rounds rounds: the cost of redaction
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("import", "next", "http", "consensus", "redaction")


def log(*args) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


def summary_ms(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50_ms": pct(values, 50),
        "p95_ms": pct(values, 95),
        "p99_ms": pct(values, 99),
        "max_ms": round(max(values), 2) if values else None,
        "mean_ms": round(sum(values) / len(values), 2) if values else None,
    }


# ----------------------------------------------------------------------------------------
# Database setup (before Django is configured)
# ----------------------------------------------------------------------------------------


def prepare_database(args) -> dict:
    """Point DATABASE_URL at a fresh benchmark database; returns a description."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        parsed = urlparse(url)
        name = parsed.path.lstrip("/")
        if "bench" not in name:
            sys.exit(f"refusing to drop database {name!r}: its name must contain 'bench'")
        maintenance = parsed._replace(path="/postgres").geturl()
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
            version = conn.execute("SHOW server_version").fetchone()[0]
        log(f"recreated PostgreSQL database {name}")
        return {"vendor": "postgresql", "name": name, "server_version": version}
    if url:
        sys.exit("DATABASE_URL must be a postgres:// URL (or unset for SQLite)")
    var_dir = Path(os.environ["ATTUNE_VAR_DIR"])
    path = var_dir / "attune_bench.sqlite3"
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    log(f"fresh SQLite database {path}")
    return {"vendor": "sqlite", "name": str(path)}


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlhf_platform.settings")
    import django

    django.setup()
    from django.conf import settings

    # Measure the code, not DEBUG's per-query SQL logging.
    settings.DEBUG = False


# ----------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------

WORDS = [
    "the",
    "model",
    "should",
    "explain",
    "why",
    "a",
    "careful",
    "answer",
    "considers",
    "context",
    "safety",
    "accuracy",
    "and",
    "tone",
    "while",
    "remaining",
    "concise",
    "helpful",
    "honest",
    "and",
    "specific",
    "about",
    "limits",
    "of",
    "knowledge",
]


def _text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choices(WORDS, k=n_words))


def items_file(var_dir: Path, n: int, tag: str, pii_every: int = 0) -> Path:
    """A TRL JSONL file of n pairwise rows (~600 bytes each), generated once and reused;
    with ``pii_every``, every such row's prompt also holds personal data to redact."""
    path = var_dir / f"bench-{tag}-{n}.trl.jsonl"
    if path.exists():
        return path
    log(f"generating {path} ({n:,} rows)")
    rng = random.Random(n)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        chunk = []
        for i in range(n):
            row = {
                "prompt": f"[{tag} {i}] " + _text(rng, 15),
                "chosen": _text(rng, 40),
                "rejected": _text(rng, 40),
                "chosen_model": "policy-v2",
                "rejected_model": "policy-v1",
            }
            if i % 10 == 0:
                row["score_chosen"], row["score_rejected"] = 8.5, 3.0
            if pii_every and i % pii_every == 0:
                row["prompt"] += (
                    f" Contact jane.doe{i}@example.org or +1 415 555 2671,"
                    " card 4111 1111 1111 1111."
                )
            chunk.append(json.dumps(row))
            if len(chunk) == 10000:
                out.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            out.write("\n".join(chunk) + "\n")
    tmp.rename(path)
    return path


def make_users(prefix: str, n: int) -> list:
    from django.contrib.auth import get_user_model

    User = get_user_model()
    users = User.objects.bulk_create(
        [User(username=f"{prefix}-{i}", email=f"{prefix}-{i}@bench.test") for i in range(n)]
    )
    return list(User.objects.filter(username__startswith=f"{prefix}-").order_by("id"))[: len(users)]


def vacuum_analyze(tables: list[str]) -> float:
    """VACUUM ANALYZE (what autovacuum does after a bulk load); PostgreSQL only."""
    from django.db import connection

    started = time.perf_counter()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"VACUUM (ANALYZE) {table}")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return round(time.perf_counter() - started, 2)


# ----------------------------------------------------------------------------------------
# 1. Import
# ----------------------------------------------------------------------------------------


def bench_import(args, owner, n: int, tag: str, overlap: int = 3) -> tuple[object, dict]:
    from annotation import services

    path = items_file(Path(os.environ["ATTUNE_VAR_DIR"]), n, tag)
    project = services.project_create(created_by=owner, name=f"bench {tag}", overlap=overlap)
    log(f"importing {n:,} rows into project {project.pk}")
    started = time.perf_counter()
    with open(path, "rb") as fh:
        result = services.items_import(project=project, file=fh, fmt="trl")
    seconds = time.perf_counter() - started
    log(f"import: {seconds:.1f} s ({n / seconds:,.0f} rows/s)")
    return project, {
        "rows": result.rows,
        "created": result.created,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "format": "trl",
        "seconds": round(seconds, 2),
        "rows_per_s": round(result.rows / seconds),
    }


def bench_redaction(args, owner) -> dict:
    """Import the same file with every PII detector and with none, alternating."""
    from annotation import services
    from annotation.importers.redaction import DETECTORS

    n = args.redaction_items
    path = items_file(Path(os.environ["ATTUNE_VAR_DIR"]), n, "pii", pii_every=10)
    seconds: dict[str, list[float]] = {"none": [], "all": []}
    redactions: dict = {}
    for round_ in range(args.redaction_rounds):
        for mode in ("none", "all"):
            project = services.project_create(
                created_by=owner,
                name=f"bench redaction {mode} {round_}",
                pii_detectors=list(DETECTORS) if mode == "all" else [],
            )
            started = time.perf_counter()
            with open(path, "rb") as fh:
                result = services.items_import(project=project, file=fh, fmt="trl")
            seconds[mode].append(time.perf_counter() - started)
            if mode == "all":
                redactions = result.redactions
            log(f"redaction {mode} round {round_}: {seconds[mode][-1]:.1f} s")
    return {
        "rows": n,
        "rounds": args.redaction_rounds,
        "seconds_none": [round(x, 2) for x in seconds["none"]],
        "seconds_all": [round(x, 2) for x in seconds["all"]],
        "rows_per_s_none": round(n * len(seconds["none"]) / sum(seconds["none"])),
        "rows_per_s_all": round(n * len(seconds["all"]) / sum(seconds["all"])),
        "throughput_ratio_all_vs_none": round(sum(seconds["none"]) / sum(seconds["all"]), 3),
        "redactions_per_import": redactions,
    }


# ----------------------------------------------------------------------------------------
# 2. assignment_next latency
# ----------------------------------------------------------------------------------------


def bench_next(args, project) -> dict:
    from annotation import services

    annotators = make_users("next", args.annotators)
    for user in annotators:
        services.project_member_add(project=project, user=user, role="annotator")
    rng = random.Random(7)
    next_ms, submit_ms, skip_ms = [], [], []
    done = 0
    log(f"assignment_next: {args.annotators} annotators x {args.calls} calls")
    for _round in range(args.calls):
        for user in annotators:
            started = time.perf_counter()
            assignment = services.assignment_next(project=project, annotator=user, rng=rng)
            next_ms.append((time.perf_counter() - started) * 1000)
            if assignment is None:
                continue
            started = time.perf_counter()
            if rng.random() < 0.9:
                services.annotation_submit(
                    project=project,
                    item_id=assignment.item_id,
                    annotator=user,
                    answer={"preference": {"choice": rng.choice("AB")}},
                    idempotency_key=uuid.uuid4().hex,
                )
                submit_ms.append((time.perf_counter() - started) * 1000)
                done += 1
            else:
                services.assignment_skip(
                    project=project, item_id=assignment.item_id, annotator=user
                )
                skip_ms.append((time.perf_counter() - started) * 1000)
    out = {
        "items": args.items,
        "annotators": args.annotators,
        "calls_per_annotator": args.calls,
        "next": summary_ms(next_ms),
        "submit_in_process": summary_ms(submit_ms),
        "skip_in_process": summary_ms(skip_ms),
        "annotations": done,
    }
    log(f"next: p50 {out['next']['p50_ms']} ms, p95 {out['next']['p95_ms']} ms")
    return out


# ----------------------------------------------------------------------------------------
# 3. HTTP submit throughput
# ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _until(deadline) -> float:
    """A deadline: a monotonic time, or a shared ``multiprocessing.Value`` holding one (so
    the parent can end the clients early, as bench/faults.py does)."""
    return getattr(deadline, "value", deadline)


def _client_thread(host, port, project_id, token, deadline, seed, out) -> None:
    rng = random.Random(seed)
    headers = {
        "Authorization": f"Token {token}",
        "Content-Type": "application/json",
        "Connection": "keep-alive",
    }
    conn = http.client.HTTPConnection(host, port, timeout=60)
    base = f"/api/annotation/projects/{project_id}"

    def post(path: str, body: bytes) -> tuple[int, bytes, float]:
        nonlocal conn
        started = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=60)
            status, data = 0, b""
        return status, data, (time.perf_counter() - started) * 1000

    while time.monotonic() < _until(deadline):
        status, data, ms = post(f"{base}/next/", b"{}")
        out["next_ms"].append(ms)
        if status != 200:
            out["errors"][f"next {status}"] = out["errors"].get(f"next {status}", 0) + 1
            time.sleep(0.05)
            continue
        item = json.loads(data)["item"]
        if item is None:
            out["exhausted"] += 1
            break
        key = uuid.uuid4().hex
        body = json.dumps(
            {
                "item": item["id"],
                "answer": {"preference": {"choice": rng.choice("AAABBt")}},
                "idempotency_key": key,
            }
        ).encode()
        body = body.replace(b'"t"', b'"tie"')
        status, data, ms = post(f"{base}/submit/", body)
        out["submit_ms"].append(ms)
        if status != 201:
            out["errors"][f"submit {status}"] = out["errors"].get(f"submit {status}", 0) + 1
            continue
        out["created"] += 1
        original = json.loads(data)["id"]
        if rng.random() < 0.05:
            status, data, ms = post(f"{base}/submit/", body)
            out["retry_ms"].append(ms)
            out["retries"] += 1
            if status == 200 and json.loads(data)["id"] == original:
                out["retries_ok"] += 1
            else:
                out["retries_bad"].append([status, data[:200].decode(errors="replace")])
    conn.close()


def _client_process(host, port, project_id, tokens, deadline, seed, queue) -> None:
    cpu = time.process_time()
    outs, threads = [], []
    for i, token in enumerate(tokens):
        out = {
            "next_ms": [],
            "submit_ms": [],
            "retry_ms": [],
            "errors": {},
            "created": 0,
            "retries": 0,
            "retries_ok": 0,
            "retries_bad": [],
            "exhausted": 0,
        }
        outs.append(out)
        thread = threading.Thread(
            target=_client_thread,
            args=(host, port, project_id, token, deadline, seed * 1000 + i, out),
            daemon=True,
        )
        threads.append(thread)
        thread.start()
    for thread in threads:
        thread.join()
    merged = {k: ([] if isinstance(v, list) else 0) for k, v in outs[0].items()}
    merged["errors"] = {}
    for out in outs:
        for key, value in out.items():
            if key == "errors":
                for k, v in value.items():
                    merged["errors"][k] = merged["errors"].get(k, 0) + v
            else:
                merged[key] += value
    merged["cpu_s"] = time.process_time() - cpu
    queue.put(merged)


def _proc_cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _children(pid: int) -> list[int]:
    kids = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            kids += [int(x) for x in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    return kids


def _postgres_cpu_seconds() -> float | None:
    """CPU of every postgres process on this machine (the server shares the 2 cores)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip() == "postgres":
                    pids.append(int(entry))
    return _proc_cpu_seconds(pids) if pids else None


def http_server_start(args, env: dict | None = None) -> tuple[subprocess.Popen, int]:
    """gunicorn (bench/gunicorn.conf.py) on a free port, warmed up; returns (process, port)."""
    port = _free_port()
    env = dict(env or os.environ)
    if not args.server_debug:
        env["DEBUG"] = "0"
        env.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
        env.setdefault(
            "AUDIT_HMAC_KEYS", f"bench:{base64.b64encode(secrets.token_bytes(32)).decode()}"
        )
    cmd = [
        str(Path(sys.executable).parent / "gunicorn"),
        "rlhf_platform.wsgi",
        "-c",
        str(ROOT / "bench" / "gunicorn.conf.py"),
        "-b",
        f"127.0.0.1:{port}",
    ]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    log(f"starting gunicorn on port {port}: {' '.join(cmd[1:])}")
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=sys.stderr, stderr=sys.stderr)
    try:
        for _ in range(300):
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                probe.request("GET", "/healthz")
                probe.getresponse().read()
                probe.close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not start")
        # Warm every worker (imports, connections) before measuring.
        warm = http.client.HTTPConnection("127.0.0.1", port)
        for _ in range(20):
            warm.request("GET", "/healthz")
            warm.getresponse().read()
        warm.close()
    except BaseException:
        http_server_stop(server)
        raise
    return server, port


def http_server_stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def http_clients_start(port: int, project_id: int, tokens: list[str], n_procs: int, deadline):
    """Start the annotating clients (``_client_thread``) in ``n_procs`` processes until
    ``deadline``; returns ``collect()``, which waits for them and merges their results."""
    n_procs = max(1, min(n_procs, len(tokens)))
    groups = [tokens[i::n_procs] for i in range(n_procs)]
    queue: mp.Queue = mp.get_context("fork").Queue()
    procs = [
        mp.get_context("fork").Process(
            target=_client_process,
            args=("127.0.0.1", port, project_id, group, deadline, i + 1, queue),
        )
        for i, group in enumerate(groups)
    ]
    for proc in procs:
        proc.start()

    def collect() -> tuple[dict, list[dict]]:
        results = [queue.get() for _ in procs]
        for proc in procs:
            proc.join()
        merged = {k: ([] if isinstance(v, list) else 0) for k, v in results[0].items()}
        merged["errors"] = {}
        for res in results:
            for key, value in res.items():
                if key == "errors":
                    for k, v in value.items():
                        merged["errors"][k] = merged["errors"].get(k, 0) + v
                else:
                    merged[key] += value
        return merged, results

    return collect


def http_integrity_checks(project, merged: dict) -> dict:
    """What the database holds after the clients' run, against what they were told:
    duplicates, items over N, counter drift, and 201s with no row (lost votes)."""
    from django.db import connection

    from annotation.models import Annotation, Item

    overlap = project.overlap
    annotations = Annotation.objects.filter(project=project)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM (SELECT annotator_id, item_id FROM annotation_annotation "
            "WHERE project_id = %s GROUP BY annotator_id, item_id HAVING COUNT(*) > 1) d",
            [project.pk],
        )
        dup_item = cursor.fetchone()[0]
        cursor.execute(
            "SELECT COUNT(*) FROM (SELECT annotator_id, idempotency_key FROM "
            "annotation_annotation WHERE project_id = %s GROUP BY annotator_id, "
            "idempotency_key HAVING COUNT(*) > 1) d",
            [project.pk],
        )
        dup_key = cursor.fetchone()[0]
        cursor.execute(
            "SELECT COUNT(*) FROM (SELECT item_id FROM annotation_annotation "
            "WHERE project_id = %s AND NOT is_gold GROUP BY item_id HAVING COUNT(*) > %s) d",
            [project.pk, overlap],
        )
        over = cursor.fetchone()[0]
        cursor.execute(
            "SELECT COUNT(*) FROM annotation_item i WHERE i.project_id = %s AND i.n_submitted <> "
            "(SELECT COUNT(*) FROM annotation_annotation a WHERE a.item_id = i.id) "
            "AND i.id IN (SELECT item_id FROM annotation_annotation WHERE project_id = %s)",
            [project.pk, project.pk],
        )
        counter_mismatch = cursor.fetchone()[0]
    n_db = annotations.count()
    checks = {
        "annotations_in_db": n_db,
        "annotations_created_201": merged["created"],
        "db_matches_201s": n_db == merged["created"],
        "duplicate_annotator_item": dup_item,
        "duplicate_idempotency_key": dup_key,
        "items_over_overlap": over,
        "items_n_submitted_mismatch": counter_mismatch,
        "retries": merged["retries"],
        "retries_200_same_id": merged["retries_ok"],
        "retries_bad": merged["retries_bad"][:5],
        "items_complete": Item.objects.filter(project=project, n_submitted__gte=overlap).count(),
    }
    checks["ok"] = (
        dup_item == 0
        and dup_key == 0
        and over == 0
        and counter_mismatch == 0
        and merged["retries"] == merged["retries_ok"]
        and checks["db_matches_201s"]
    )
    return checks


def bench_http(args, owner, db_info) -> dict:
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from annotation import services
    from annotation.models import Item

    project, import_stats = bench_import(args, owner, args.http_items, "http", overlap=3)
    vacuum_analyze(["annotation_item"])
    users = make_users("http", args.clients)
    tokens = []
    for user in users:
        services.project_member_add(project=project, user=user, role="annotator")
        tokens.append(Token.objects.create(user=user).key)
    connection.close()

    server, port = http_server_start(args)
    try:
        server_pids = [server.pid, *_children(server.pid)]
        server_cpu_before = _proc_cpu_seconds(server_pids)
        pg_cpu_before = _postgres_cpu_seconds() if db_info["vendor"] == "postgresql" else None

        n_procs = max(1, min(args.client_processes, len(tokens)))
        started = time.perf_counter()
        deadline = time.monotonic() + args.seconds
        log(f"{len(tokens)} clients in {n_procs} processes for {args.seconds} s")
        merged, results = http_clients_start(port, project.pk, tokens, n_procs, deadline)()
        elapsed = time.perf_counter() - started
        server_cpu = _proc_cpu_seconds(server_pids) - server_cpu_before
        pg_cpu = _postgres_cpu_seconds() - pg_cpu_before if pg_cpu_before is not None else None
    finally:
        http_server_stop(server)

    overlap = project.overlap
    checks = http_integrity_checks(project, merged)
    out = {
        "project_items": args.http_items,
        "total_items_in_db": Item.objects.count(),
        "overlap": overlap,
        "import": import_stats,
        "server": {
            "cmd": "gunicorn rlhf_platform.wsgi -c bench/gunicorn.conf.py",
            "workers": args.workers or int(os.environ.get("GUNICORN_WORKERS", "3")),
            "threads": args.threads or int(os.environ.get("GUNICORN_THREADS", "4")),
            "debug": bool(args.server_debug),
            "cpu_s": round(server_cpu, 1),
        },
        "postgres_cpu_s": round(pg_cpu, 1) if pg_cpu is not None else None,
        "clients": len(tokens),
        "client_processes": n_procs,
        "client_cpu_s": round(sum(r["cpu_s"] for r in results), 1),
        "seconds": round(elapsed, 1),
        "annotations_per_s": round(merged["created"] / elapsed, 1),
        "requests_per_s": round(
            (len(merged["next_ms"]) + len(merged["submit_ms"]) + len(merged["retry_ms"])) / elapsed,
            1,
        ),
        "next": summary_ms(merged["next_ms"]),
        "submit": summary_ms(merged["submit_ms"]),
        "retry": summary_ms(merged["retry_ms"]),
        "errors": merged["errors"],
        "clients_exhausted": merged["exhausted"],
        "checks": checks,
    }
    log(
        f"http: {out['annotations_per_s']} annotations/s, next p95 {out['next']['p95_ms']} ms, "
        f"submit p95 {out['submit']['p95_ms']} ms, checks ok={checks['ok']}"
    )
    return out


# ----------------------------------------------------------------------------------------
# 4. Consensus
# ----------------------------------------------------------------------------------------


def bench_consensus(args, owner) -> dict:
    import numpy as np
    from django.db import connection, transaction
    from django.utils import timezone

    from annotation import services
    from annotation.consensus import consensus_recompute
    from annotation.models import Annotation, AnnotatorStats, Assignment, Item, ItemConsensus
    from rlhf_platform.db import bulk_upsert

    n_items, n_annotators = args.annotations_items, 10
    project = services.project_create(created_by=owner, name="bench consensus", overlap=10)
    users = make_users("cons", n_annotators)
    rng = np.random.default_rng(11)
    now = timezone.now()
    log(f"consensus data: {n_items:,} items x {n_annotators} annotators")
    started = time.perf_counter()

    # Hidden truth: A 45 %, tie 10 %, B 45 %; 1 % gold items carrying the truth.
    truth = rng.choice(3, size=n_items, p=[0.45, 0.10, 0.45])
    gold = rng.random(n_items) < 0.01
    choice_name = ["A", "tie", "B"]
    item_rows = [
        {
            "project_id": project.pk,
            "external_id": f"c-{i}",
            "prompt": f"consensus prompt {i}",
            "responses": [
                {"text": f"a{i}", "model": None, "metadata": {}},
                {"text": f"b{i}", "model": None, "metadata": {}},
            ],
            "metadata": {},
            "priority": 0.0,
            "is_gold": bool(gold[i]),
            "assignable": True,
            "gold_answer": {"preference": {"choice": choice_name[truth[i]]}} if gold[i] else None,
            "n_assigned": n_annotators,
            "n_submitted": n_annotators,
            "created_at": now,
        }
        for i in range(n_items)
    ]
    with transaction.atomic():
        for lo in range(0, n_items, 100_000):
            bulk_upsert(
                model=Item,
                rows=item_rows[lo : lo + 100_000],
                conflict_fields=["project_id", "external_id"],
            )
    del item_rows
    id_of = dict(Item.objects.filter(project=project).values_list("external_id", "id"))
    item_ids = np.array([id_of[f"c-{i}"] for i in range(n_items)], dtype=np.int64)
    del id_of

    # Annotators: hidden accuracy 0.6..0.95; the last two are spammers (one always "A",
    # one uniformly random and implausibly fast).
    accuracy = rng.uniform(0.6, 0.95, size=n_annotators)
    kinds = ["honest"] * (n_annotators - 2) + ["constant", "random"]
    labels = np.empty((n_annotators, n_items), dtype=np.int64)
    lead = np.empty((n_annotators, n_items), dtype=np.int64)
    for a in range(n_annotators):
        if kinds[a] == "constant":
            labels[a] = 0
            lead[a] = rng.lognormal(np.log(6000), 0.5, n_items)
        elif kinds[a] == "random":
            labels[a] = rng.integers(0, 3, n_items)
            lead[a] = rng.lognormal(np.log(700), 0.3, n_items)
        else:
            right = rng.random(n_items) < accuracy[a]
            wrong = (truth + rng.integers(1, 3, n_items)) % 3
            labels[a] = np.where(right, truth, wrong)
            lead[a] = rng.lognormal(np.log(9000), 0.6, n_items)
    strength = rng.integers(1, 4, size=(n_annotators, n_items))

    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM annotation_assignment")
        first_id = cursor.fetchone()[0] + 1
    total = n_items * n_annotators
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('annotation_assignment', 'id'), %s)",
                [first_id + total],
            )
    chunk = 100_000
    with transaction.atomic():
        for a, user in enumerate(users):
            for lo in range(0, n_items, chunk):
                hi = min(n_items, lo + chunk)
                base = first_id + a * n_items
                assignment_rows = [
                    {
                        "id": base + i,
                        "project_id": project.pk,
                        "item_id": int(item_ids[i]),
                        "annotator_id": user.pk,
                        "status": "submitted",
                        "locked_at": now,
                        "expires_at": now,
                        "skip_reason": "",
                    }
                    for i in range(lo, hi)
                ]
                bulk_upsert(
                    model=Assignment,
                    rows=assignment_rows,
                    conflict_fields=["item_id", "annotator_id"],
                )
                annotation_rows = [
                    {
                        "project_id": project.pk,
                        "item_id": int(item_ids[i]),
                        "annotator_id": user.pk,
                        "assignment_id": base + i,
                        "answer": {
                            "preference": {
                                "choice": choice_name[labels[a, i]],
                                "strength": int(strength[a, i]),
                            }
                        },
                        "label": int(labels[a, i]),
                        "strength": int(strength[a, i]),
                        "lead_time_ms": int(lead[a, i]),
                        "idempotency_key": f"c{a}-{i}",
                        "is_gold": bool(gold[i]),
                        "assignable": True,
                        "created_at": now,
                    }
                    for i in range(lo, hi)
                ]
                bulk_upsert(
                    model=Annotation,
                    rows=annotation_rows,
                    conflict_fields=["annotator_id", "idempotency_key"],
                )
            log(f"  annotator {a + 1}/{n_annotators} inserted")
    insert_s = time.perf_counter() - started
    analyze_s = vacuum_analyze(["annotation_annotation", "annotation_item"])
    log(f"inserted {total:,} annotations in {insert_s:.1f} s; recomputing consensus")

    started = time.perf_counter()
    stats = consensus_recompute(project=project)
    seconds = time.perf_counter() - started
    log(f"consensus_recompute: {seconds:.2f} s")

    # How good is the result against the hidden truth?
    stored = dict(
        ItemConsensus.objects.filter(project=project).values_list("item_id", "dawid_skene_label")
    )
    majority = dict(
        ItemConsensus.objects.filter(project=project).values_list("item_id", "majority_label")
    )
    ds = np.array([stored.get(int(i), -1) for i in item_ids])
    mv = np.array([majority.get(int(i), -1) for i in item_ids])
    flagged = {
        row["annotator_id"]: row["spammer_reasons"]
        for row in AnnotatorStats.objects.filter(project=project, spammer_flag=True).values(
            "annotator_id", "spammer_reasons"
        )
    }
    spammers = {users[a].pk: kinds[a] for a in range(n_annotators) if kinds[a] != "honest"}
    return {
        "items": n_items,
        "annotators": n_annotators,
        "annotations": total,
        "insert_seconds": round(insert_s, 1),
        "vacuum_analyze_seconds": analyze_s,
        "seconds": round(seconds, 2),
        "timings_ms": stats.metrics.get("timings_ms"),
        "duration_ms_stored": stats.duration_ms,
        "consensus_rows": len(stored),
        "dawid_skene_accuracy_vs_truth": round(float((ds == truth).mean()), 4),
        "majority_accuracy_vs_truth": round(float((mv == truth).mean()), 4),
        "spammers_planted": sorted(spammers.values()),
        "spammers_flagged": sorted(
            f"{spammers.get(pk, 'honest')}: {', '.join(reasons)}" for pk, reasons in flagged.items()
        ),
        "metrics": {
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in stats.metrics.items()
            if k != "timings_ms"
        },
    }


# ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--annotators", type=int, default=50, help="for the next-latency part")
    parser.add_argument("--calls", type=int, default=40, help="next calls per annotator")
    parser.add_argument("--http-items", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (conf: 3)")
    parser.add_argument("--threads", type=int, default=0, help="gunicorn threads (conf: 4)")
    parser.add_argument("--server-debug", action="store_true", help="run gunicorn with DEBUG=1")
    parser.add_argument("--annotations-items", type=int, default=100_000)
    parser.add_argument("--redaction-items", type=int, default=100_000)
    parser.add_argument("--redaction-rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma list of {PARTS}")
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {sorted(unknown)}")
    if "next" in parts and "import" not in parts:
        parser.error("'next' needs 'import' (it runs on the imported project)")

    os.environ.setdefault("ATTUNE_VAR_DIR", str(Path(tempfile.gettempdir()) / "attune-bench-var"))
    Path(os.environ["ATTUNE_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    db_info = prepare_database(args)
    django_setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    log(f"migrated in {time.perf_counter() - started:.1f} s")
    if os.environ.get("REDIS_URL"):
        cache.clear()  # the benchmark's own Redis db: stale debounce keys only

    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.create(username="bench-owner")
    report: dict = {
        "database": db_info,
        "cache": "redis" if os.environ.get("REDIS_URL") else "filesystem",
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "args": vars(args),
    }
    if "import" in parts:
        project, report["import"] = bench_import(args, owner, args.items, "main")
        report["import"]["vacuum_analyze_seconds"] = vacuum_analyze(["annotation_item"])
        if "next" in parts:
            report["next"] = bench_next(args, project)
    if "http" in parts:
        report["http"] = bench_http(args, owner, db_info)
    if "consensus" in parts:
        report["consensus"] = bench_consensus(args, owner)
    if "redaction" in parts:
        report["redaction"] = bench_redaction(args, owner)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            report["database"]["size_mb"] = round(cursor.fetchone()[0] / 1e6)
    json.dump(report, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
