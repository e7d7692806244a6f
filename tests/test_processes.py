"""The test suite's own processes: none outlives a test run that is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.processes import ROOT, dies_with_parent

# A stand-in for a test run: it starts a long-lived child as the fixtures start Redis and
# Celery workers, prints the child's pid, then waits to be killed.
RUN = """
import subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from tests.processes import dies_with_parent
child = subprocess.Popen(dies_with_parent([sys.executable, "-c", "import time; time.sleep(120)"]),
                         start_new_session=True)
print(child.pid, flush=True)
time.sleep(120)
"""


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait for a reaper that never comes)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_killed_test_run_leaves_no_child_running():
    run = subprocess.Popen(
        [sys.executable, "-c", RUN, str(ROOT)], stdout=subprocess.PIPE, text=True
    )
    child = int(run.stdout.readline())
    try:
        assert _running(child)
        run.kill()  # SIGKILL, as a CI timeout does: no finaliser runs
        run.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(child)
    finally:
        if _running(child):
            os.kill(child, signal.SIGKILL)


def test_the_guard_execs_the_command_in_its_own_process():
    """The command keeps the pid Popen returned, so ``killpg(proc.pid)`` still reaches it."""
    proc = subprocess.Popen(
        dies_with_parent([sys.executable, "-c", "import os; print(os.getpid())"]),
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and int(out) == proc.pid
