"""The Celery application, configured from Django settings (``CELERY_*``)."""

import logging
import os

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlhf_platform.settings")

logger = logging.getLogger(__name__)

app = Celery("rlhf_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Record that this worker is alive, every WORKER_HEARTBEAT_INTERVAL seconds.

    Celery's remote-control ping needs a broadcast-capable transport, which the filesystem
    broker is not; a row in the database works with every broker and is what /healthz reads.
    """

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None

    def start(self, worker):
        from django.conf import settings

        self._beat(worker)
        self.tref = worker.timer.call_repeatedly(
            settings.WORKER_HEARTBEAT_INTERVAL, self._beat, (worker,), priority=10
        )

    def stop(self, worker):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    @staticmethod
    def _beat(worker):
        from django.db import connection

        from governance.services import worker_heartbeat_record

        queues = sorted(q.name for q in worker.app.amqp.queues.consume_from.values())
        try:
            worker_heartbeat_record(hostname=worker.hostname, queues=queues)
        except Exception:  # a missed beat is reported by /healthz, not a worker crash
            logger.exception("worker heartbeat failed")
        finally:
            # This runs in the worker's main process: keep no database handle open that
            # forked pool processes could inherit.
            connection.close()


app.steps["worker"].add(WorkerHeartbeat)
