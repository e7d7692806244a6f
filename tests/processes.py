"""Real processes for fault tests and the fault benchmark: a private redis-server that can
be stopped and started again, and Celery worker processes that can be stopped or killed.

Used by tests/conftest.py and bench/faults.py.  Nothing here touches a shared Redis.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def dies_with_parent(argv: list[str], *, signal_number: int = signal.SIGKILL) -> list[str]:
    """``argv`` run so that the kernel kills it when the process that started it dies
    (``PR_SET_PDEATHSIG``, kept across ``exec``): a test run killed by a timeout leaves no
    Redis or Celery worker behind (a worker's pool processes exit with their parent).
    ``signal_number`` is what it gets: SIGTERM for a supervisor that must stop its own.
    A wrapper rather than ``preexec_fn``, which is unsafe once the test process has threads.
    """
    guard = (
        "import ctypes, os, signal, sys; "
        "ctypes.CDLL(None, use_errno=True).prctl(1, int(sys.argv[2])); "  # PR_SET_PDEATHSIG
        "os.getppid() == int(sys.argv[1]) or os._exit(1); "  # the parent died before prctl
        "os.execvp(sys.argv[3], sys.argv[3:])"
    )
    return [sys.executable, "-c", guard, str(os.getpid()), str(int(signal_number)), *argv]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private redis-server on a free port, with an append-only file (a durable broker:
    what was queued before a stop is there after the start)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.port = free_port()
        self.dir = Path(directory or tempfile.mkdtemp(prefix="attune-redis-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            dies_with_parent(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "yes", "--dir", str(self.dir), "--logfile", "redis.log"]
            ),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """Shut down cleanly (SIGTERM: Redis flushes its append-only file and exits)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def supervised_environment(program: str) -> dict[str, str]:
    """The ``environment=`` that supervisord.conf (``make run``) gives a program, so test
    workers run as ``make run`` runs them (e.g. REMAP_SIGTERM for the soft shutdown)."""
    import configparser

    from supervisor.datatypes import dict_of_key_value_pairs

    config = configparser.RawConfigParser()
    config.read(ROOT / "supervisord.conf")
    section = f"program:{program}"
    if not config.has_option(section, "environment"):
        return {}
    return dict_of_key_value_pairs(config.get(section, "environment"))


class WorkerProcess:
    """A real ``celery worker`` process (its own process group) with its log in a file."""

    def __init__(self, *, env: dict[str, str], log_path: Path, name: str = "") -> None:
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "rlhf_platform.settings",
            **supervised_environment("worker"),
            **env,
        }
        self.log_path = log_path
        self.name = name or f"w-{uuid.uuid4().hex[:8]}@%h"
        self.proc: subprocess.Popen | None = None

    def start(
        self,
        *,
        timeout: float = 60,
        queues: str = "default,training,monitoring,webhooks,generation",
        extra: tuple[str, ...] = (),
    ) -> WorkerProcess:
        log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            dies_with_parent(
                [sys.executable, "-m", "celery", "-A", "rlhf_platform", "worker",
                 "--loglevel=INFO", "--concurrency=2", "-n", self.name, f"--queues={queues}",
                 "--without-gossip", "--without-mingle", *extra]
            ),
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"worker not ready in {timeout} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = 30) -> float:
        """SIGTERM the main process; returns the seconds it took to exit."""
        started = time.monotonic()
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL the whole process group (the main process and its pool): a worker that
        dies at once, as on a lost machine or the OOM killer."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
