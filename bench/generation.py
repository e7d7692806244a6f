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


def figures(n: int, ok: int, seconds: float, cpu: float) -> dict:
    """Throughput and this process's CPU time per request (every thread; the fake provider
    is another process), which the machine's load does not inflate the way it does
    wall time."""
    return {"requests": n, "ok": ok, "seconds": round(seconds, 3),
            "requests_per_second": round(ok / seconds, 1),
            "cpu_ms_per_request": round(1000 * cpu / n, 3)}  # fmt: skip


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
        started, cpu = time.perf_counter(), time.process_time()
        ok = await asyncio.gather(*(one(i) for i in range(n)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return figures(n, sum(ok), seconds, cpu)


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
    started, cpu = time.perf_counter(), time.process_time()
    ok = await asyncio.gather(*(one(i) for i in range(n)))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    await client.close()
    return figures(n, sum(ok), seconds, cpu)


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
    started, cpu = time.perf_counter(), time.process_time()
    job = generation.generation_job_run(job_id=job.pk, worker="bench")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {**figures(n, job.succeeded, seconds, cpu), "failed": job.failed,
            "status": job.status, "requests_sent": job.requests_sent}  # fmt: skip


def measure(provider, admin, base_url: str, latency: float, concurrency: int, rounds: int):
    """One latency × concurrency point: raw httpx, raw openai, the platform."""
    n = concurrency * rounds
    ideal = concurrency / latency
    log(f"latency {latency} s, concurrency {concurrency}: {n} requests, ideal {ideal:.0f}/s")
    httpx_run = asyncio.run(raw_httpx(base_url, concurrency, n))
    openai_run = asyncio.run(raw_openai(base_url, concurrency, n))
    ours = platform_run(provider, admin, concurrency, n)
    log(f"  httpx {httpx_run['requests_per_second']}/s, openai "
        f"{openai_run['requests_per_second']}/s, platform {ours['requests_per_second']}/s")  # fmt: skip
    rate = ours["requests_per_second"]
    return {
        "latency_s": latency,
        "concurrency": concurrency,
        "ideal_requests_per_second": round(ideal, 1),
        "raw_httpx": httpx_run,
        "raw_openai": openai_run,
        "platform": ours,
        "platform_vs_ideal": round(rate / ideal, 3),
        "platform_vs_raw_httpx": round(rate / httpx_run["requests_per_second"], 3),
        "platform_vs_raw_openai": round(rate / openai_run["requests_per_second"], 3),
        "raw_httpx_vs_ideal": round(httpx_run["requests_per_second"] / ideal, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", default="0.05,0.5",
                        help="server-side latencies, seconds, comma-separated")  # fmt: skip
    parser.add_argument("--concurrency", default="8,16,32")
    parser.add_argument("--rounds", type=int, default=20,
                        help="requests per run = concurrency × rounds")  # fmt: skip
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    latencies = [float(x) for x in args.latency.split(",")]
    database = prepare_database(args)
    django_setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from models_registry.providers import provider_create

    admin = get_user_model().objects.create_superuser("bench-admin", password="x")
    load_before = os.getloadavg()
    runs = []
    for latency in latencies:
        proc, base_url = provider_start(latency)
        try:
            provider = provider_create(
                user=admin, name=f"fake-{latency}", base_url=base_url, model_name="fake-model",
                api_key=KEY, max_concurrency=256, timeout_seconds=30,
            )  # fmt: skip
            for concurrency in levels:
                runs.append(measure(provider, admin, base_url, latency, concurrency, args.rounds))
        finally:
            proc.kill()
            proc.wait()
    print(json.dumps({
        "benchmark": "generation",
        "latencies_s": latencies,
        "rounds": args.rounds,
        "database": database,
        "machine": {"python": sys.version.split()[0], "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "load_average_1min": [round(load_before[0], 1), round(os.getloadavg()[0], 1)]},
        "runs": runs,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
