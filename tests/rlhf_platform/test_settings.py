"""Configuration from the environment."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def _load_settings(env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL")
    }
    clean.update({"ATTUNE_VAR_DIR": str(tmp_path), **env})
    code = "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "rlhf_platform.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = _load_settings({"DEBUG": "0"}, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert not (tmp_path / "secret_key").exists()


def test_development_generates_a_key_once(tmp_path):
    assert _load_settings({"DEBUG": "1"}, tmp_path).returncode == 0
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50
    assert _load_settings({"DEBUG": "1"}, tmp_path).returncode == 0
    assert (tmp_path / "secret_key").read_text() == key


def test_embedded_default_is_sqlite_and_database_url_switches(tmp_path):
    embedded = _load_settings({"DEBUG": "1"}, tmp_path)
    assert embedded.stdout.strip() == "django.db.backends.sqlite3"
    pg = _load_settings({"DEBUG": "1", "DATABASE_URL": "postgres://u@127.0.0.1:5432/x"}, tmp_path)
    assert pg.stdout.strip() == "django.db.backends.postgresql"


def test_sqlite_is_configured_for_a_concurrent_worker():
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        options = settings.SQLITE_OPTIONS
    else:
        options = settings.DATABASES["default"]["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in options["init_command"]
    assert options["timeout"] >= 5
