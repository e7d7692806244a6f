"""Generation benchmark: chat requests per second through the platform's generation job
against the local fake provider, at several concurrency limits, with a fixed server-side
latency — and, in the same run, the same requests sent by raw ``httpx`` and by the
official ``openai`` client at the same concurrency, without the platform.

With latency L and concurrency c, an ideal client does c / L requests per second: if the
platform's figure follows c / L (and the raw clients'), it is bounded by the limit that was
set, not by the platform.  The fake provider runs in a process of its own
(``python -m tests.fake_provider``), so it shares no interpreter lock with the clients.

The platform side is ``models_registry.generation.generation_job_run`` — what the
``generation`` worker runs — timed from the call to the job's end: claim, every response
written to the database (batched upserts), progress, the final audit.  It uses a fresh
SQLite database under ``$ATTUNE_VAR_DIR`` (or ``DATABASE_URL`` naming a database with
"bench" in its name, recreated).  Prints one JSON document on stdout.

    DEBUG=1 ATTUNE_VAR_DIR=/tmp/bench-var .venv/bin/python bench/generation.py > out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.annotation import django_setup, log, prepare_database  # noqa: E402

KEY = "sk-bench-generation"


def provider_start(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_provider", "--latency", str(latency),
         "--api-key", KEY],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    base_url = proc.stdout.readline().strip()
    if not base_url.startswith("http"):
        proc.kill()
        sys.exit("the fake provider did not start")
    return proc, base_url


def body(i: int) -> dict:
    return {"model": "fake-model", "messages": [{"role": "user", "content": f"Bench prompt {i}"}],
            "max_tokens": 64, "seed": i}  # fmt: skip


async def raw_httpx(base_url: str, concurrency: int, n: int) -> dict:
    """n requests, at most ``concurrency`` in flight, straight through httpx."""
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30,
                                 headers={"Authorization": f"Bearer {KEY}"}) as client:  # fmt: skip

        async def one(i: int) -> bool:
            async with gate:
                response = await client.post(f"{base_url}/chat/completions", json=body(i))
                return response.status_code == 200 and bool(response.json()["choices"])

        await asyncio.gather(*(one(i) for i in range(min(concurrency, 8))))  # warm connections
        started = time.perf_counter()
        ok = await asyncio.gather(*(one(i) for i in range(n)))
        seconds = time.perf_counter() - started
    return {"requests": n, "ok": sum(ok), "seconds": round(seconds, 3),
            "requests_per_second": round(n / seconds, 1)}  # fmt: skip


async def raw_openai(base_url: str, concurrency: int, n: int) -> dict:
    """n requests, at most ``concurrency`` in flight, through ``openai.AsyncOpenAI``."""
    import httpx
    import openai

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = openai.AsyncOpenAI(
        base_url=base_url, api_key=KEY, max_retries=0, timeout=30,
        http_client=httpx.AsyncClient(limits=limits),
    )  # fmt: skip
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> bool:
        async with gate:
            answer = await client.chat.completions.create(**body(i))
            return bool(answer.choices[0].message.content)

    await asyncio.gather(*(one(i) for i in range(min(concurrency, 8))))
    started = time.perf_counter()
    ok = await asyncio.gather(*(one(i) for i in range(n)))
    seconds = time.perf_counter() - started
    await client.close()
    return {"requests": n, "ok": sum(ok), "seconds": round(seconds, 3),
            "requests_per_second": round(n / seconds, 1)}  # fmt: skip


def platform_run(provider, user, concurrency: int, n: int) -> dict:
    """A generation job of n prompts × 1 response at the given concurrency, run as the
    worker runs it; wall time from the call to the job's end."""
    from models_registry import generation, prompts

    prompt_set = prompts.prompt_set_create(
        user=user, name=f"bench-{concurrency}-{time.time_ns()}",
        prompts=[f"Bench prompt {concurrency}-{i}" for i in range(n)],
    )  # fmt: skip
    job = generation.generation_job_create(
        user=user, prompt_set=prompt_set, provider=provider, k=1, concurrency=concurrency,
        sampling={"max_tokens": 64, "seed": 1}, max_retries=2,
    )  # fmt: skip
    started = time.perf_counter()
    job = generation.generation_job_run(job_id=job.pk, worker="bench")
    seconds = time.perf_counter() - started
    return {"requests": n, "ok": job.succeeded, "failed": job.failed, "status": job.status,
            "requests_sent": job.requests_sent, "seconds": round(seconds, 3),
            "requests_per_second": round(job.succeeded / seconds, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="server side, seconds")
    parser.add_argument("--concurrency", default="8,16,32")
    parser.add_argument("--rounds", type=int, default=40,
                        help="requests per run = concurrency × rounds")  # fmt: skip
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    database = prepare_database(args)
    django_setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from models_registry.providers import provider_create

    proc, base_url = provider_start(args.latency)
    try:
        admin = get_user_model().objects.create_superuser("bench-admin", password="x")
        provider = provider_create(
            user=admin, name="fake", base_url=base_url, model_name="fake-model", api_key=KEY,
            max_concurrency=256, timeout_seconds=30,
        )  # fmt: skip
        runs = []
        for concurrency in levels:
            n = concurrency * args.rounds
            ideal = concurrency / args.latency
            log(f"concurrency {concurrency}: {n} requests, ideal {ideal:.0f}/s")
            httpx_run = asyncio.run(raw_httpx(base_url, concurrency, n))
            openai_run = asyncio.run(raw_openai(base_url, concurrency, n))
            ours = platform_run(provider, admin, concurrency, n)
            log(f"  httpx {httpx_run['requests_per_second']}/s, openai "
                f"{openai_run['requests_per_second']}/s, platform {ours['requests_per_second']}/s")  # fmt: skip
            runs.append({
                "concurrency": concurrency,
                "ideal_requests_per_second": round(ideal, 1),
                "raw_httpx": httpx_run,
                "raw_openai": openai_run,
                "platform": ours,
                "platform_vs_ideal": round(ours["requests_per_second"] / ideal, 3),
                "platform_vs_raw_httpx": round(
                    ours["requests_per_second"] / httpx_run["requests_per_second"], 3),
                "platform_vs_raw_openai": round(
                    ours["requests_per_second"] / openai_run["requests_per_second"], 3),
            })  # fmt: skip
    finally:
        proc.kill()
        proc.wait()
    print(json.dumps({
        "benchmark": "generation",
        "latency_s": args.latency,
        "rounds": args.rounds,
        "database": database,
        "machine": {"python": sys.version.split()[0], "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "runs": runs,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
