"""Attune settings, read from the environment.

With nothing set, Attune runs on the *embedded default*: SQLite and a filesystem Celery
broker, both under ``var/``, so a newcomer needs no servers.  Set ``DATABASE_URL`` and
``REDIS_URL`` to run on PostgreSQL and Redis; every code path is the same in both modes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean from the environment ("1", "true", "yes", "on" are true)."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated list from the environment."""
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


VAR_DIR = Path(os.environ.get("ATTUNE_VAR_DIR", BASE_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", default=False)


def _secret_key() -> str:
    """SECRET_KEY from the environment; in development a key generated once into var/.

    Production (DEBUG off) refuses to start without an explicit key, so a deployment can
    never run on a key that sits in a working directory by accident.
    """
    key = os.environ.get("SECRET_KEY", "")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment, or DEBUG=1 for "
            "development (a key is then generated into var/secret_key)."
        )
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "guardian",
    "axes",
    "governance",
    "annotation",
    "models_registry",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "rlhf_platform.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "rlhf_platform.middleware.RequestUserMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it sees the login views' outcome and answers a lockout with a 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "rlhf_platform.urls"
WSGI_APPLICATION = "rlhf_platform.wsgi.application"
ASGI_APPLICATION = "rlhf_platform.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "rlhf_platform.context_processors.navigation",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
# SQLite is shared by the web server and the Celery worker, so it runs in WAL mode (readers
# never block the writer), starts every transaction IMMEDIATE (the write lock is taken at
# BEGIN, so two writers queue on the busy timeout instead of failing on lock upgrade with
# "database is locked"), and waits up to 20 s for the lock.
SQLITE_OPTIONS = {
    "init_command": ("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"),
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "attune.sqlite3",
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(SQLITE_OPTIONS)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file (not :memory:) test database, so a real worker process can share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")

# --- Cache, broker, Celery ----------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")


def redis_caches(url: str) -> dict:
    """The cache configuration for Redis at ``url``.

    The cache only ever holds what the database can recompute (item counts, permission
    lookups, throttle counters), so a Redis outage degrades instead of failing requests:
    django-redis turns every cache error into a miss (get) or a no-op (set, delete) and
    logs a warning (``rlhf_platform.cache.CacheOutageLogFilter``).  Short socket timeouts
    keep a hung Redis from holding requests.
    """
    timeouts = {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 1.0}
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"IGNORE_EXCEPTIONS": True, **timeouts},
        },
        # Throttle counters must not silently read as "no requests yet" during an outage:
        # errors reach rlhf_platform.cache.ThrottleCache, which falls back to process memory.
        "throttle": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"IGNORE_EXCEPTIONS": False, **timeouts},
        },
    }


DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
DJANGO_REDIS_LOGGER = "rlhf_platform.cache"
if REDIS_URL:
    CACHES = redis_caches(REDIS_URL)
else:
    _file_cache = {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "cache"),
    }
    CACHES = {"default": _file_cache, "throttle": _file_cache}

BROKER_DIR = Path(os.environ.get("ATTUNE_BROKER_DIR", VAR_DIR / "broker"))
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "filesystem://localhost//")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(BROKER_DIR / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues that can be scaled apart: training can live on GPU machines.
CELERY_TASK_ROUTES = {
    # The reaper of dead training jobs must run even where no training worker is alive.
    "models_registry.training_jobs_reap": {"queue": "default"},
    # So is the reaper of dead generation jobs, where no generation worker is alive.
    "models_registry.generation_jobs_reap": {"queue": "default"},
    # Generation waits on remote providers (I/O, no GPU): its own queue, scaled apart.
    "models_registry.generation_job_run": {"queue": "generation"},
    "models_registry.prompt_set_generate": {"queue": "generation"},
    "models_registry.loop_schedule": {"queue": "default"},
    "models_registry.*": {"queue": "training"},
    "monitoring.*": {"queue": "monitoring"},
    # Outbound webhooks have their own queue: a slow receiver never delays other work.
    "governance.webhook_*": {"queue": "webhooks"},
}
CELERY_TASK_TIME_LIMIT = 60 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 55 * 60
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# How often beat looks for import jobs whose worker vanished.
WORKER_REAP_INTERVAL = float(os.environ.get("WORKER_REAP_INTERVAL", "30"))
CELERY_BEAT_SCHEDULE: dict = {
    "annotation-reclaim-expired-locks": {
        "task": "annotation.assignment_reclaim",
        "schedule": 60.0,
    },
    "annotation-reap-abandoned-imports": {
        "task": "annotation.import_jobs_reap",
        "schedule": WORKER_REAP_INTERVAL,
    },
    "governance-outbox-prune": {
        "task": "governance.outbox_prune",
        "schedule": 3600.0,
    },
    # Approval requests past their expiry close (and their requesters hear of it).
    "governance-approvals-expire": {
        "task": "governance.approval_requests_expire",
        "schedule": 300.0,
    },
    "models-reap-abandoned-training": {
        "task": "models_registry.training_jobs_reap",
        "schedule": 60.0,
    },
    "models-reap-abandoned-generation": {
        "task": "models_registry.generation_jobs_reap",
        "schedule": 60.0,
    },
    # The RLHF loop: queue the passes that are due (each project's schedule_minutes).
    "models-loop-schedule": {"task": "models_registry.loop_schedule", "schedule": 60.0},
    # Monitoring: outcomes as they arrive (metric points, detectors, alert rules), and a
    # daily Evidently drift report per version with recent outcomes.
    "monitoring-collect-outcomes": {"task": "monitoring.outcomes_collect", "schedule": 60.0},
    "monitoring-drift-reports": {"task": "monitoring.drift_reports_schedule", "schedule": 86400.0},
    "monitoring-error-zones": {"task": "monitoring.error_zones_schedule", "schedule": 86400.0},
    # Webhook deliveries whose worker died mid-send go back to the queue.
    "governance-webhook-deliveries-reap": {
        "task": "governance.webhook_deliveries_reap",
        "schedule": 60.0,
    },
    # Preference and annotator points of projects whose consensus was recomputed.
    "monitoring-preference-points": {
        "task": "monitoring.preference_points_refresh",
        "schedule": 300.0,
    },
}
# Control charts (monitoring.spc): how many of a series' first points form the baseline of
# the accuracy and agreement charts, and the annotator-drift charts' baseline, window,
# minimum votes per point and rules ("1": beyond 3σ; "we" or "1,2,3,4": Western Electric);
# annotator points exist per day and week, so the window is "day" or "week".
MONITORING_SPC_BASELINE = int(os.environ.get("MONITORING_SPC_BASELINE", "10"))
MONITORING_ANNOTATOR_WINDOW = os.environ.get("MONITORING_ANNOTATOR_WINDOW", "day")
MONITORING_ANNOTATOR_BASELINE = int(os.environ.get("MONITORING_ANNOTATOR_BASELINE", "5"))
MONITORING_ANNOTATOR_MIN_VOTES = int(os.environ.get("MONITORING_ANNOTATOR_MIN_VOTES", "5"))
MONITORING_ANNOTATOR_RULES = os.environ.get("MONITORING_ANNOTATOR_RULES", "1")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker outlives broker outages: it retries the connection for ever (the default gives
# up after 100 attempts) and keeps running tasks through the outage.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than the longest task (imports: 2 h), so a running task is never handed
        # to a second worker while the first still works on it.
        "visibility_timeout": 2 * 60 * 60 + 10 * 60,
        "socket_connect_timeout": 2,
        "socket_timeout": 10,
        "health_check_interval": 10,
    }
# SIGTERM: running tasks get a few seconds to finish, then the worker stops (acks_late
# tasks go back to the queue; import jobs of a stopped worker are requeued by the reaper),
# so a deployment or Ctrl+C never waits for a two-hour import.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = float(os.environ.get("WORKER_SOFT_SHUTDOWN_TIMEOUT", "5"))
CELERY_WORKER_CONSUMER = "rlhf_platform.celery:Consumer"
# The transactional outbox (governance.outbox): how often a worker sends what is due, and
# whether it does (off for a worker whose broker is not the one the web servers use).
OUTBOX_RELAY_INTERVAL = float(os.environ.get("OUTBOX_RELAY_INTERVAL", "1"))
OUTBOX_RELAY = env_bool("OUTBOX_RELAY", default=True)
# Quiet period before a consensus recomputation runs after annotations arrive.
CONSENSUS_DEBOUNCE_SECONDS = float(os.environ.get("CONSENSUS_DEBOUNCE_SECONDS", "10"))
# Outbound webhooks (governance.webhooks): attempts per delivery, the backoff between them
# (base × 2^(n-1), jitter × 1–1.5, capped), failed deliveries in a row that disable a
# subscription, HTTP timeout, and networks that may be reached although private/loopback.
WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("WEBHOOK_MAX_ATTEMPTS", "8"))
WEBHOOK_RETRY_BASE_SECONDS = float(os.environ.get("WEBHOOK_RETRY_BASE_SECONDS", "10"))
WEBHOOK_RETRY_MAX_SECONDS = float(os.environ.get("WEBHOOK_RETRY_MAX_SECONDS", "3600"))
WEBHOOK_DISABLE_AFTER_FAILURES = int(os.environ.get("WEBHOOK_DISABLE_AFTER_FAILURES", "5"))
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10"))
WEBHOOK_ALLOWED_NETWORKS = [
    n.strip() for n in os.environ.get("WEBHOOK_ALLOWED_NETWORKS", "").split(",") if n.strip()
]
# Seconds between worker heartbeats, and how old one may be before /healthz says "down".
WORKER_HEARTBEAT_INTERVAL = int(os.environ.get("WORKER_HEARTBEAT_INTERVAL", "10"))
WORKER_HEARTBEAT_MAX_AGE = int(os.environ.get("WORKER_HEARTBEAT_MAX_AGE", "45"))

# --- Models ---------------------------------------------------------------------------
# A training task's hard limit (a job's own ``max_seconds`` ends it gracefully before).
TRAINING_TASK_TIME_LIMIT = int(os.environ.get("TRAINING_TASK_TIME_LIMIT", str(25 * 3600)))
# A running job refreshes its heartbeat this often; one older than the max age has died.
TRAINING_JOB_HEARTBEAT_INTERVAL = float(os.environ.get("TRAINING_JOB_HEARTBEAT_INTERVAL", "5"))
TRAINING_JOB_HEARTBEAT_MAX_AGE = float(os.environ.get("TRAINING_JOB_HEARTBEAT_MAX_AGE", "60"))
# Versions kept in memory per process for prediction (least recently used goes first).
MODELS_LOADED_MAX = int(os.environ.get("MODELS_LOADED_MAX", "2"))
MODELS_PREDICT_BATCH = int(os.environ.get("MODELS_PREDICT_BATCH", "64"))
MODELS_PREDICT_MAX_PAIRS = int(os.environ.get("MODELS_PREDICT_MAX_PAIRS", "512"))
# Monitoring: the encoder that embeds item texts (empty: the bundled all-MiniLM-L6-v2), the
# most outcomes an error-zone search or a drift report embeds, and the outcomes one
# error-zone search clusters (the most recent ones).
MONITORING_EMBEDDING_MODEL = os.environ.get("MONITORING_EMBEDDING_MODEL", "")
MONITORING_EMBED_MAX_ROWS = int(os.environ.get("MONITORING_EMBED_MAX_ROWS", "20000"))
MONITORING_ZONES_MAX_OUTCOMES = int(os.environ.get("MONITORING_ZONES_MAX_OUTCOMES", "50000"))

# Generation through providers: the first retry waits up to this many seconds (doubling
# each time, full jitter, at most 30 s) unless the provider sends Retry-After; the hard
# time limit of one generation task.
GENERATION_BACKOFF_BASE = float(os.environ.get("GENERATION_BACKOFF_BASE", "0.5"))
GENERATION_TASK_TIME_LIMIT = int(os.environ.get("GENERATION_TASK_TIME_LIMIT", str(6 * 3600)))

# The longest one RLHF loop pass may run (scoring a large batch of new items).
LOOP_TASK_TIME_LIMIT = int(os.environ.get("LOOP_TASK_TIME_LIMIT", str(60 * 60)))
# Model code never reaches a hub: every model is a local directory.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# --- Auth, permissions --------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out account or address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: anonymous users get no object permissions
GUARDIAN_RAISE_403 = True
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Brute-force protection (django-axes): after LOGIN_FAILURE_LIMIT failures for one username,
# or from one client address, further logins for it are refused with a 429 for the
# cool-off period.  Failures are counted in the database (axes' AccessAttempt), so every
# web process sees the same count; a success resets the count.
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# A fixed cool-off: more tries during a lockout do not extend it, so an attacker cannot
# keep a victim's account locked for ever by trying once in a while.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The address the audit trail records (REMOTE_ADDR; X-Forwarded-For is caller-controlled).
AXES_CLIENT_IP_CALLABLE = "rlhf_platform.middleware.client_ip"
AXES_LOCKOUT_CALLABLE = "rlhf_platform.views.login_locked_out"
# Logins are on the audit trail already; axes keeps only the failure counts.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Audit chain ----------------------------------------------------------------------------
_AUDIT_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
AUDIT_HMAC_KEY_MIN_BYTES = 32


def _audit_hmac_keys() -> dict[str, bytes]:
    """AUDIT_HMAC_KEYS="kid1:base64secret,kid0:oldsecret": the first key signs, all verify.

    The key lives outside the database, so someone who can write the audit table still
    cannot forge events.  Like SECRET_KEY: in development a key is generated once into
    var/audit_hmac_keys; production refuses to start without one.
    """
    text = os.environ.get("AUDIT_HMAC_KEYS", "").strip()
    if not text:
        if not DEBUG:
            raise ImproperlyConfigured(
                "AUDIT_HMAC_KEYS is not set. Set it to 'kid:base64secret' (32+ random bytes, "
                "e.g. kid1:$(openssl rand -base64 32)), or DEBUG=1 for development (a key is "
                "then generated into var/audit_hmac_keys)."
            )
        path = VAR_DIR / "audit_hmac_keys"
        if not path.exists():
            path.write_text(f"dev:{base64.b64encode(secrets.token_bytes(32)).decode()}")
            path.chmod(0o600)
        text = path.read_text().strip()
    keys: dict[str, bytes] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        key_id, _, secret = entry.partition(":")
        try:
            key = base64.b64decode(secret.replace("-", "+").replace("_", "/"), validate=True)
        except binascii.Error:
            key = b""
        if not _AUDIT_KEY_ID.match(key_id) or key_id in keys:
            raise ImproperlyConfigured(
                f"AUDIT_HMAC_KEYS: key id {key_id!r} must be 1-32 of [A-Za-z0-9_.-], unique"
            )
        if len(key) < AUDIT_HMAC_KEY_MIN_BYTES:
            raise ImproperlyConfigured(
                f"AUDIT_HMAC_KEYS: key {key_id!r} must be base64 of at least "
                f"{AUDIT_HMAC_KEY_MIN_BYTES} bytes"
            )
        keys[key_id] = key
    if not keys:
        raise ImproperlyConfigured("AUDIT_HMAC_KEYS holds no key")
    return keys


# Ordered: the first key signs new events and checkpoints; the others verify older ones.
AUDIT_HMAC_KEYS = _audit_hmac_keys()
# EU AI Act Art. 19: automatically generated logs are kept at least six months.
AUDIT_RETENTION_MIN_DAYS = 183
AUDIT_RETENTION_DAYS = int(os.environ.get("AUDIT_RETENTION_DAYS", str(AUDIT_RETENTION_MIN_DAYS)))
if AUDIT_RETENTION_DAYS < AUDIT_RETENTION_MIN_DAYS:
    raise ImproperlyConfigured(
        f"AUDIT_RETENTION_DAYS={AUDIT_RETENTION_DAYS} is below the legal minimum of "
        f"{AUDIT_RETENTION_MIN_DAYS} days (six months, EU AI Act Art. 19)"
    )
# Signed checkpoints of the chain head, kept outside the database (mount it elsewhere).
AUDIT_CHECKPOINT_DIR = Path(
    os.environ.get("AUDIT_CHECKPOINT_DIR", VAR_DIR / "audit-checkpoints")
).resolve()
AUDIT_CHECKPOINT_INTERVAL = float(os.environ.get("AUDIT_CHECKPOINT_INTERVAL", "300"))
CELERY_BEAT_SCHEDULE["governance-audit-checkpoint"] = {
    "task": "governance.audit_checkpoint",
    "schedule": AUDIT_CHECKPOINT_INTERVAL,
    # A checkpoint that waited longer than its interval is stale: the next one replaces it.
    "options": {"queue": "default", "expires": AUDIT_CHECKPOINT_INTERVAL},
}
# Where `manage.py audit_archive` writes signed archives (and `audit_prune` looks for them).
AUDIT_ARCHIVE_DIR = Path(os.environ.get("AUDIT_ARCHIVE_DIR", VAR_DIR / "audit-archive")).resolve()

# --- API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first, so an unauthenticated call answers 401 with WWW-Authenticate.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rlhf_platform.permissions.RolePermission"],
    # JSON only by default (views that take uploads opt in to multipart): a 400, never a
    # 500, for invalid, too deep or unstorable JSON (rlhf_platform.validation).
    "DEFAULT_PARSER_CLASSES": ["rlhf_platform.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rlhf_platform.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "rlhf_platform.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "rlhf_platform.api.exception_handler",
    # Rates for throttle scopes; "auth" guards the token endpoint, per client address.
    "DEFAULT_THROTTLE_RATES": {"auth": os.environ.get("AUTH_THROTTLE_RATE", "10/min")},
    # Trust no X-Forwarded-For: behind a proxy, the proxy sets REMOTE_ADDR (see
    # rlhf_platform.middleware.client_ip), so a caller cannot pick its throttle bucket.
    "NUM_PROXIES": 0,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Attune API",
    "DESCRIPTION": "RLHF preference-data platform: annotation, models, monitoring, governance.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ImportFormatEnum": ["auto", "jsonl", "csv", "trl", "label_studio", "argilla"],
        "ExportFormatEnum": "annotation.models.DatasetSnapshot.Format",
        "DetectorKindEnum": "monitoring.models.DetectorState.Kind",
        "ModelKindEnum": "models_registry.models.Kind",
        # Drift reports and error-zone runs share one set of states.
        "MonitoringRunStatusEnum": "monitoring.models.DriftReport.Status",
    },
}

# --- I18N, static -------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# plotly.js comes from the pinned `plotly` package, so the app serves it (no CDN).
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/plotly", Path(importlib.util.find_spec("plotly").origin).parent / "package_data"),
]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve from the finders too, so `make run` and the tests need no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = VAR_DIR / "media"

# --- Security headers and cookies ----------------------------------------------------------
# Outside DEBUG the defaults are production's: cookies only over HTTPS, HSTS, http -> https.
# `make run` sets DEBUG=1 and serves plain http on 127.0.0.1, where all of these are off.
# Behind a TLS-terminating proxy, set SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO (and
# make the proxy set that header) so Django knows the request came over HTTPS.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # pages send the token from the form, never from the cookie
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # probes talk plain http inside the cluster
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = (os.environ["SECURE_PROXY_SSL_HEADER"], "https")
SECURE_HSTS_SECONDS = 0 if DEBUG else int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content Security Policy (django-csp), in DEBUG too so development sees what production
# blocks.  No inline script or style anywhere: every script and stylesheet is a static
# file (tests/rlhf_platform/test_security_headers.py checks the templates).  A view that
# needs more says so with django-csp's decorators (rlhf_platform/content_security.py):
# the dashboard's plotly.js and the Swagger UI at /api/docs/; the stored Evidently drift
# report (framed in a sandbox) replaces it whole.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"cache_outage": {"()": "rlhf_platform.cache.CacheOutageLogFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # axes logs every login at INFO; the audit trail has them already.
        "axes": {"level": "WARNING"},
        # httpx logs every request at INFO; webhook attempts are in their delivery log, and
        # a generation job (hundreds a second) keeps its responses and errors on the job.
        "httpx": {"level": "WARNING"},
        "rlhf_platform.cache": {"filters": ["cache_outage"]},
    },
}


# --- Field encryption -------------------------------------------------------------------------
def _field_encryption_keys() -> list[str]:
    """FIELD_ENCRYPTION_KEYS="newkey,oldkey": Fernet keys (urlsafe base64 of 32 bytes).

    The first key encrypts; every key decrypts, so a key is rotated by putting a new one first
    and running ``manage.py field_encryption_rotate`` before the old one is dropped.  Like
    SECRET_KEY: in development a key is generated once into var/field_encryption_keys;
    production refuses to start without one.  Checked in ``rlhf_platform.crypto``.
    """
    text = os.environ.get("FIELD_ENCRYPTION_KEYS", "").strip()
    if not text:
        if not DEBUG:
            raise ImproperlyConfigured(
                "FIELD_ENCRYPTION_KEYS is not set. Set it to one or more comma-separated "
                "Fernet keys (python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'), or DEBUG=1 for development."
            )
        path = VAR_DIR / "field_encryption_keys"
        if not path.exists():
            path.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
            path.chmod(0o600)
        text = path.read_text().strip()
    keys = [part.strip() for part in text.split(",") if part.strip()]
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS holds no key")
    return keys


FIELD_ENCRYPTION_KEYS = _field_encryption_keys()


# --- Data protection (README "Data protection") ---------------------------------------------
# National phone numbers are recognised in this region (ISO 3166 alpha-2); international ones
# (+44 ...) everywhere.  Used by the PII redaction of imports.
PII_PHONE_REGION = os.environ.get("PII_PHONE_REGION", "US").upper()


def _pseudonym_key() -> str:
    """The server-side key of annotator pseudonyms in exports (never in the database).

    PSEUDONYM_KEY when set; otherwise derived from SECRET_KEY, so a deployment needs nothing
    new — but then changing SECRET_KEY changes every pseudonym: set PSEUDONYM_KEY to keep
    them across a SECRET_KEY rotation.
    """
    explicit = os.environ.get("PSEUDONYM_KEY", "").strip()
    if explicit:
        return explicit
    return hashlib.sha256(b"attune.pseudonym:" + SECRET_KEY.encode()).hexdigest()


PSEUDONYM_KEY = _pseudonym_key()
# Retention: beat applies every project's policy once a day (annotation.retention_apply).
DATA_RETENTION_INTERVAL = float(os.environ.get("DATA_RETENTION_INTERVAL", "86400"))
CELERY_BEAT_SCHEDULE["annotation-data-retention"] = {
    "task": "annotation.retention_apply",
    "schedule": DATA_RETENTION_INTERVAL,
}
