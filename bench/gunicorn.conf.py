"""Gunicorn settings for the submit-throughput benchmark on a small (2-core) machine.

Threaded workers: a request spends much of its time waiting on PostgreSQL, so a few
threads per process overlap those waits, while the process count stays near the core count
(the GIL caps each process at one core).  Keep-alive connections are parked in the
worker's poller, not on a thread, so 64 idle clients do not pin 64 threads.
Override with GUNICORN_WORKERS / GUNICORN_THREADS.
"""

import os

worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = 75
backlog = 256
timeout = 60
graceful_timeout = 5
accesslog = None
errorlog = "-"
loglevel = "warning"
preload_app = True
