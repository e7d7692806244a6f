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

import os
import subprocess
import sys
import time
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

ROOT = Path(__file__).resolve().parent.parent


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
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real Celery worker (separate process, real broker) on the test database."""
    with django_db_blocker.unblock():
        database_url = _worker_database_url()
    # Messages left by earlier runs point at rows of a flushed database (SQLite reuses ids).
    from rlhf_platform.celery import app

    app.control.purge()
    hostname = f"test-{uuid.uuid4().hex[:8]}@%h"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WORKER_HEARTBEAT_INTERVAL": "1",
        "DJANGO_SETTINGS_MODULE": "rlhf_platform.settings",
    }
    log_path = Path(settings.VAR_DIR) / "test-worker.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "rlhf_platform", "worker",
            "--loglevel=INFO", "--concurrency=2", "-n", hostname,
            "--queues=default,training,monitoring", "--without-gossip", "--without-mingle",
        ],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if "ready." in log_path.read_text():
            break
        if proc.poll() is not None:
            pytest.fail(f"worker exited early:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    else:
        proc.terminate()
        pytest.fail(f"worker not ready in 60 s:\n{log_path.read_text()[-3000:]}")
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
