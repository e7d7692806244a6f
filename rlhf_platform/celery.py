"""The Celery application, configured from Django settings (``CELERY_*``).

Besides the app, this module gives every worker:

- an *instance id* (node name, process id, random start id) that tasks read with
  :func:`worker_instance` to record which worker runs a job, so a job whose worker
  vanished can be told from one whose worker is alive;
- :class:`WorkerLife`, a thread in the worker's main process that writes the instance's
  heartbeat every ``WORKER_HEARTBEAT_INTERVAL`` seconds and relays the transactional
  outbox (``governance.outbox``) every ``OUTBOX_RELAY_INTERVAL`` seconds.  A thread, not
  a Celery timer: timers stop while the consumer reconnects to a lost broker, and a
  worker that is busy importing through a broker outage must not look dead;
- :class:`Consumer`, Celery's consumer with a fix that keeps the worker alive when the
  broker connection drops while it holds unacknowledged messages.
"""

import functools
import logging
import os
import threading
import uuid

from celery import Celery, bootsteps
from celery.worker.consumer import Consumer as CeleryConsumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlhf_platform.settings")

logger = logging.getLogger(__name__)

app = Celery("rlhf_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Set by the worker's main process before its pool forks, inherited by every pool process.
WORKER_INSTANCE_ENV = "ATTUNE_WORKER_INSTANCE"


def worker_instance() -> str:
    """The id of the worker instance running this code ("" outside a worker)."""
    return os.environ.get(WORKER_INSTANCE_ENV, "")


class Consumer(CeleryConsumer):
    """Celery's task consumer, back soon after a broker outage, and surviving one that
    finds it holding unacknowledged messages.

    With Celery 5.7 / kombu 5.7 and Redis, losing the connection while the worker holds an
    unacknowledged message (a running ``acks_late`` task, or a countdown task) kills the
    worker: the cleanup closes the channel twice, and the second close tries to put the
    messages back on a transport it has already detached (``AttributeError: 'NoneType'
    object has no attribute 'hostname'``, "Unrecoverable error").  Putting them back
    cannot work anyway while the broker is unreachable; Redis keeps them in its unacked
    index and hands them out again after the visibility timeout.  So the channel of the
    lost connection is told not to restore them, and the consumer reconnects as usual.
    """

    # Seconds between attempts to reach a lost broker.  Celery's own backoff grows to 30 s,
    # so after a 30 s outage a worker stayed away up to 12 s longer than the broker.
    reconnect_interval = 2.0

    def ensure_connected(self, conn):
        ensure = conn.ensure_connection
        conn.ensure_connection = functools.partial(
            ensure,
            interval_start=self.reconnect_interval,
            interval_step=0,
            interval_max=self.reconnect_interval,
        )
        try:
            return super().ensure_connected(conn)
        finally:
            del conn.ensure_connection

    def on_connection_error_after_connected(self, exc):
        channel = getattr(self.connection, "_default_channel", None)
        if channel is not None:
            channel.do_restore = False
        super().on_connection_error_after_connected(exc)


class WorkerLife(bootsteps.StartStopStep):
    """Heartbeat and outbox relay of one worker instance (see the module docstring)."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.instance = f"{worker.hostname}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Before the pool starts, so every pool process inherits it.
        os.environ[WORKER_INSTANCE_ENV] = self.instance
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, worker):
        queues = sorted(q.name for q in worker.app.amqp.queues.consume_from.values())
        self.thread = threading.Thread(
            target=self._run, args=(worker.hostname, queues), name="attune-worker-life", daemon=True
        )
        self.thread.start()

    def stop(self, worker):
        # The heartbeat row stays: it goes stale, and jobs this worker could not finish
        # are requeued by the reaper once it is older than WORKER_HEARTBEAT_MAX_AGE.
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=2)
            self.thread = None

    def _run(self, hostname: str, queues: list[str]) -> None:
        import time

        from django.conf import settings

        next_beat = 0.0
        while not self.stopping.is_set():
            if time.monotonic() >= next_beat:
                self._guarded(self._beat, hostname, queues)
                next_beat = time.monotonic() + settings.WORKER_HEARTBEAT_INTERVAL
            if settings.OUTBOX_RELAY:
                self._guarded(self._relay)
            self.stopping.wait(settings.OUTBOX_RELAY_INTERVAL)

    def _guarded(self, func, *args) -> None:
        from django.db import connection

        try:
            func(*args)
        except Exception:  # a missed beat or relay pass is retried on the next tick
            logger.warning("worker %s failed", func.__name__.strip("_"), exc_info=True)
        finally:
            # No connection is kept between ticks: pool processes forked meanwhile must
            # not inherit one in use.
            connection.close()

    def _beat(self, hostname: str, queues: list[str]) -> None:
        from governance.services import worker_heartbeat_record

        worker_heartbeat_record(
            instance=self.instance, hostname=hostname, pid=os.getpid(), queues=queues
        )

    def _relay(self) -> None:
        from governance.outbox import outbox_relay

        outbox_relay()


app.steps["worker"].add(WorkerLife)
