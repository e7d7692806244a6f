"""`make run`'s process manager (supervisord.conf): a worker that dies is started again,
and Ctrl+C (SIGINT to supervisord) stops everything."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from governance.models import WorkerHeartbeat
from tests.conftest import _worker_database_url
from tests.polling import wait_until
from tests.processes import ROOT, dies_with_parent, free_port

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _pids(pattern: str) -> set[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return {int(pid) for pid in out.split()}


def test_supervisor_restarts_a_killed_worker_and_ctrl_c_stops_everything(tmp_path):
    port = free_port()
    out = tmp_path / "out.log"  # what `make run` prints to the terminal
    env = {
        **os.environ,
        "DATABASE_URL": _worker_database_url(),
        "ATTUNE_PORT": str(port),
        "WORKER_HEARTBEAT_INTERVAL": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    manager = subprocess.Popen(
        dies_with_parent(
            [str(Path(sys.executable).parent / "supervisord"), "-n",
             "-c", str(ROOT / "supervisord.conf"),
             "-l", str(tmp_path / "supervisord.log"), "-j", str(tmp_path / "supervisord.pid")],
            signal_number=signal.SIGTERM,  # supervisord then stops its children
        ),
        cwd=ROOT, env=env, stdout=out.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        # supervisord.conf's worker keeps Celery's default node name (other test workers
        # are named test-… or w-…).
        ours = WorkerHeartbeat.objects.filter(hostname__startswith="celery@")
        first = wait_until(lambda: ours.first(), timeout=60)
        # Killed once ready (Celery 5.7 crashes on a shutdown that finds it still starting).
        wait_until(lambda: out.read_text().count(" ready.") >= 1, timeout=60)
        os.kill(first.pid, signal.SIGKILL)  # the worker dies
        second = wait_until(lambda: ours.exclude(pk=first.pk).first(), timeout=60)
        assert second.pid != first.pid and second.hostname == first.hostname
        wait_until(lambda: out.read_text().count(" ready.") >= 2, timeout=60)
        children = _pids(f"runserver 127.0.0.1:{port}") | {second.pid}
        assert len(children) == 2

        os.killpg(manager.pid, signal.SIGINT)  # what Ctrl+C sends to make's process group
        assert manager.wait(timeout=30) == 0
        wait_until(lambda: not any(_alive(pid) for pid in children), timeout=10)
    finally:
        _stop(manager)
    log = (tmp_path / "supervisord.log").read_text()
    assert "exited: worker (terminated by SIGKILL; not expected)" in log
    assert "stopped: worker (exit status 0)" in log, out.read_text()[-3000:]


def _stop(manager: subprocess.Popen) -> None:
    """Whatever happened, leave no process behind: supervisord's children live in process
    groups of their own, so a killed supervisord would orphan them."""
    if manager.poll() is not None:
        return
    children = [int(pid) for pid in subprocess.run(
        ["pgrep", "-P", str(manager.pid)], capture_output=True, text=True
    ).stdout.split()]  # fmt: skip
    manager.terminate()
    try:
        manager.wait(timeout=30)
    except subprocess.TimeoutExpired:
        manager.kill()
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
