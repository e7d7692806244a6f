"""Shared fixtures: personas for every role, API clients, a real Celery worker.

The personas, as in the product brief:
- ada      — admin (superuser, staff): sees and manages everything
- rosa     — researcher
- anna     — annotator; ben — a second annotator
- rex      — reviewer
- eve      — ethics committee: reads the audit trail
- vic      — viewer: reads, changes nothing
- nobody   — a logged-in user with no role at all
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.http import HttpRequest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from governance import security_audit
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.processes import REDIS_SERVER, RedisServer, WorkerProcess


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2's deliberate slowness would dominate the suite's run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _audit_tables_flushable():
    """Let the suite's flush empty the append-only audit tables, and nothing else.

    pytest-django empties the database after transactional tests with TRUNCATE (PostgreSQL)
    or DELETE (SQLite), which the audit triggers refuse; the flush runs inside
    ``audit_maintenance`` (the path the prune service uses), so every other statement in the
    suite meets the triggers exactly as production does.
    """
    from django.db import transaction
    from django.db.backends.base.operations import BaseDatabaseOperations

    from governance.audit import audit_maintenance

    original = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        alias = self.connection.alias
        with transaction.atomic(using=alias), audit_maintenance(using=alias):
            original(self, sql_list)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseDatabaseOperations, "execute_sql_flush", execute_sql_flush)
        yield


@pytest.fixture(autouse=True)
def _audit_files(settings, tmp_path):
    """Each test writes audit checkpoints and archives to its own directories."""
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "audit-checkpoints"
    settings.AUDIT_ARCHIVE_DIR = tmp_path / "audit-archive"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache (debounce keys live there)."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def password():
    return DEFAULT_PASSWORD


@pytest.fixture
def ada(db):
    return UserFactory(username="ada", roles=["admin"], is_staff=True, is_superuser=True)


@pytest.fixture
def rosa(db):
    return UserFactory(username="rosa", roles=["researcher"])


@pytest.fixture
def anna(db):
    return UserFactory(username="anna", roles=["annotator"])


@pytest.fixture
def ben(db):
    return UserFactory(username="ben", roles=["annotator"])


@pytest.fixture
def rex(db):
    return UserFactory(username="rex", roles=["reviewer"])


@pytest.fixture
def eve(db):
    return UserFactory(username="eve", roles=["ethics_committee"])


@pytest.fixture
def vic(db):
    return UserFactory(username="vic", roles=["viewer"])


@pytest.fixture
def nobody(db):
    return UserFactory(username="nobody")


class AxesAwareClient(Client):
    """Django's test client whose ``login()`` goes through the login lockout like a
    browser's: django-axes needs the request (for the client address) to count it."""

    def login(self, **credentials):
        request = HttpRequest()
        request.META["REMOTE_ADDR"] = "127.0.0.1"
        return super().login(request=request, **credentials)


@pytest.fixture
def client():
    return AxesAwareClient()


@pytest.fixture
def api():
    """An unauthenticated API client."""
    return APIClient()


@pytest.fixture
def api_as():
    """``api_as(user)``: an API client authenticated with the user's token."""

    def make(user):
        client = APIClient()
        with security_audit.silenced():  # a precondition, like the personas themselves
            token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


def _worker_database_url() -> str:
    """A DATABASE_URL for the *test* database, so a worker process writes where tests read."""
    from django.db import connection

    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{conf['NAME']}"
    user = quote(conf.get("USER") or "", safe="")
    password = quote(conf.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{conf.get('HOST') or ''}:{conf.get('PORT') or 5432}/{conf['NAME']}"


@pytest.fixture(scope="session")
def worker_database_url(django_db_setup, django_db_blocker) -> str:
    """The test database's URL, for worker processes that a test starts itself."""
    with django_db_blocker.unblock():
        return _worker_database_url()


@pytest.fixture(scope="session")
def celery_worker_process(worker_database_url):
    """A real Celery worker (separate process, real broker) on the test database."""
    # Messages left by earlier runs point at rows of a flushed database (SQLite reuses ids).
    from rlhf_platform.celery import app

    app.control.purge()
    worker = WorkerProcess(
        # No outbox relay: tests with a broker of their own (own_redis) share this database,
        # and this worker would send their tasks to its broker.  Tasks queued through the
        # outbox reach it by the test process's after-commit send.
        env={
            "DATABASE_URL": worker_database_url,
            "WORKER_HEARTBEAT_INTERVAL": "1",
            "OUTBOX_RELAY": "0",
        },
        log_path=Path(settings.VAR_DIR) / "test-worker.log",
        name=f"test-{uuid.uuid4().hex[:8]}@%h",
    )
    try:
        worker.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield worker.proc
    worker.terminate(timeout=20)


@pytest.fixture
def own_redis():
    """A private redis-server on a free port, for tests that stop and start Redis (the
    shared one is never touched).  Skipped only where the redis-server binary is absent."""
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server is not installed")
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def broker_on_own_redis(own_redis):
    """Point this process's cache and task broker at ``own_redis``."""
    from django.test import override_settings

    from rlhf_platform.celery import app
    from rlhf_platform.settings import redis_caches

    def use(url: str) -> None:
        # The app caches its connection and producer pools per broker URL.
        app.conf.broker_url = url
        app._pool = None
        app.amqp._producer_pool = None

    original = app.conf.broker_url
    use(own_redis.url())
    try:
        with override_settings(CACHES=redis_caches(own_redis.url())):
            yield own_redis
    finally:
        use(original)


@pytest.fixture
def start_worker(own_redis, django_db_blocker, tmp_path):
    """``start_worker()``: a real Celery worker on the test database whose broker and cache
    are ``own_redis``; every worker started is stopped at the end of the test."""
    with django_db_blocker.unblock():
        database_url = _worker_database_url()
    workers: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        worker = WorkerProcess(
            env={
                "DATABASE_URL": database_url,
                "REDIS_URL": own_redis.url(),
                "CELERY_BROKER_URL": own_redis.url(),
                "WORKER_HEARTBEAT_INTERVAL": "1",
                "OUTBOX_RELAY_INTERVAL": "0.2",
                **env,
            },
            log_path=tmp_path / f"worker-{len(workers)}.log",
        )
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.kill()


def csp_directives(header: str) -> dict[str, str]:
    """A Content-Security-Policy header as {directive: sources} (the header's directive
    order is not fixed, so tests compare directives, not substrings)."""
    return dict(
        [*directive.strip().split(" ", 1), ""][:2]
        for directive in header.split(";")
        if directive.strip()
    )
