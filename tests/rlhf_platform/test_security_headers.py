"""Secure defaults: production settings (DEBUG off) give Secure, HttpOnly, SameSite
cookies, HSTS, an https redirect and the security headers; ``check --deploy`` is clean;
the Content Security Policy allows no inline script, and no template needs one."""

import base64
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.conftest import csp_directives

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "AUDIT_HMAC_KEYS": f"test:{base64.b64encode(secrets.token_bytes(32)).decode()}",
    # Production refuses to start without it (rlhf_platform/crypto.py).
    "FIELD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    "ALLOWED_HOSTS": "attune.example.org",
    "DJANGO_SETTINGS_MODULE": "rlhf_platform.settings",
}
PRODUCTION_KEYS = (
    "DEBUG",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE",
    "SECURE_SSL_REDIRECT",
    "SECURE_REDIRECT_EXEMPT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "X_FRAME_OPTIONS",
    "ALLOWED_HOSTS",
)


def _production(args: list[str], **overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **PRODUCTION_ENV, **overrides}
    # Not production's: the database of the tests, and the browser tests' async switch.
    for name in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(name, None)
    env["ATTUNE_VAR_DIR"] = str(Path(django_settings.VAR_DIR) / "production-check")
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _settings_computed(**overrides: str) -> dict:
    """The settings as a fresh process computes them from its environment."""
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{k: getattr(s, k) for k in {PRODUCTION_KEYS!r}}}))"
    )
    result = _production(["-c", script], **overrides)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def production_settings() -> dict:
    return _settings_computed()


def test_check_deploy_is_clean_with_production_settings():
    result = _production(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_production_headers_and_cookie_flags(production_settings, settings, client, anna, password):
    assert production_settings["DEBUG"] is False
    for key, value in production_settings.items():
        setattr(settings, key, value)
    host = {"HTTP_HOST": "attune.example.org"}

    # Plain http is sent to https (health probes excepted).
    response = client.get("/accounts/login/", **host)
    assert response.status_code == 301
    assert response["Location"] == "https://attune.example.org/accounts/login/"
    assert client.get("/healthz", **host).status_code in (200, 503)

    response = client.get("/accounts/login/", secure=True, **host)
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    policy = response["Content-Security-Policy"]
    assert csp_directives(policy)["script-src"] == "'self'" and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy

    csrf = response.cookies["csrftoken"]
    assert csrf["secure"] and csrf["httponly"] and csrf["samesite"] == "Lax"
    response = client.post(
        "/accounts/login/", {"username": "anna", "password": password}, secure=True, **host
    )
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    response = client.post("/preferences/theme/", {"theme": "dark"}, secure=True, **host)
    theme = response.cookies["theme"]
    assert theme["secure"] and theme["httponly"]


def test_development_keeps_plain_http_working():
    """`make run` (DEBUG=1, http on 127.0.0.1): no Secure cookies, no https redirect."""
    development = _settings_computed(DEBUG="1")
    assert development["DEBUG"] is True
    assert not development["SESSION_COOKIE_SECURE"] and not development["CSRF_COOKIE_SECURE"]
    assert not development["SECURE_SSL_REDIRECT"] and development["SECURE_HSTS_SECONDS"] == 0
    assert development["SESSION_COOKIE_HTTPONLY"] and development["CSRF_COOKIE_HTTPONLY"]


@pytest.mark.django_db
def test_only_the_views_that_need_it_widen_the_policy(client, ada, rosa):
    from annotation import services

    client.force_login(ada)
    project = services.project_create(created_by=rosa, name="Policy")
    home = client.get("/")["Content-Security-Policy"]
    dashboard = client.get(f"/annotation/projects/{project.pk}/")["Content-Security-Policy"]
    docs = client.get("/api/docs/")["Content-Security-Policy"]
    assert "sha256-" not in home and "data:" not in home
    # plotly.js: its empty <style> element (filled through the CSSOM), nothing inline.
    assert "style-src 'self' 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='" in dashboard
    assert "img-src 'self' data:" in docs
    for policy in (home, dashboard, docs):
        assert csp_directives(policy)["script-src"] == "'self'" and "unsafe" not in policy


# -----------------------------------------------------------------------------------------
# Templates: nothing inline for the policy to allow

INLINE = {
    "inline <script>": re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I),
    "on*= event handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
    "inline <style>": re.compile(r"<style\b", re.I),
    "style= attribute": re.compile(r"\sstyle\s*=", re.I),
}


def _templates() -> list[Path]:
    return sorted((ROOT / "templates").rglob("*.html"))


def test_no_template_has_inline_script_handler_or_style():
    assert len(_templates()) > 10
    found = [
        f"{path.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}: {what}"
        for path in _templates()
        for text in [path.read_text()]
        for what, pattern in INLINE.items()
        for m in pattern.finditer(text)
    ]
    assert found == []


@pytest.mark.parametrize(
    "snippet",
    [
        "<script>alert(1)</script>",
        '<script type="module">x()</script>',
        '<button onclick="go()">',
        '<a href="javascript:go()">',
        "<style>p{}</style>",
        '<p style="color:red">',
    ],
)
def test_the_template_check_catches(snippet):
    assert any(pattern.search(snippet) for pattern in INLINE.values())
