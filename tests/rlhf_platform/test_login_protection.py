"""Brute-force protection: failed logins lock out the account and the client address
(django-axes) with a clear 429; the API's token endpoint is throttled per address and
shares the lockout; every failure is on the audit trail."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import AuditEvent

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
TOKEN = "/api/auth/token/"
LIMIT = settings.AXES_FAILURE_LIMIT


def _fail(client, username: str, ip: str = "127.0.0.1", url: str = LOGIN):
    return client.post(url, {"username": username, "password": "wrong"}, REMOTE_ADDR=ip)


def test_the_account_is_locked_after_the_limit_with_a_429_page(client, anna, password):
    for _ in range(LIMIT - 1):
        assert _fail(client, "anna").status_code == 200  # the form again, with its error
    response = _fail(client, "anna")
    assert response.status_code == 429
    assert int(response["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())
    assert b"Too many failed logins" in response.content
    # Locked: even the right password is refused, and nobody is logged in.
    response = client.post(LOGIN, {"username": "anna", "password": password})
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    # ... from any address: the lock is on the account.
    response = client.post(
        LOGIN, {"username": "anna", "password": password}, REMOTE_ADDR="10.9.9.9"
    )
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    failures = AuditEvent.objects.filter(action="auth.login_failed", after__username="anna")
    assert failures.count() == LIMIT + 2
    assert AuditEvent.objects.filter(action="auth.lockout").count() >= 1


def test_one_address_guessing_many_accounts_is_locked(client, anna, ben, password):
    for i in range(LIMIT):
        _fail(client, f"guess{i}", ip="10.0.0.66")
    # ben's right password from that address is refused; from another address it works.
    response = client.post(
        LOGIN, {"username": "ben", "password": password}, REMOTE_ADDR="10.0.0.66"
    )
    assert response.status_code == 429
    response = client.post(
        LOGIN, {"username": "ben", "password": password}, REMOTE_ADDR="10.0.0.67"
    )
    assert response.status_code == 302


def test_a_success_resets_the_count(client, anna, password):
    for _ in range(LIMIT - 1):
        _fail(client, "anna")
    assert client.post(LOGIN, {"username": "anna", "password": password}).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(LIMIT - 1):
        assert _fail(client, "anna").status_code == 200
    assert client.post(LOGIN, {"username": "anna", "password": password}).status_code == 302


def test_the_lock_ends_after_the_cool_off(client, anna, password):
    for _ in range(LIMIT):
        _fail(client, "anna")
    assert client.post(LOGIN, {"username": "anna", "password": password}).status_code == 429
    # As if the cool-off had passed (no waiting in tests).
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    assert client.post(LOGIN, {"username": "anna", "password": password}).status_code == 302


class TestTokenEndpoint:
    def test_a_locked_account_gets_a_429_in_the_api_error_shape(self, anna, password):
        api = APIClient()
        for _ in range(LIMIT):
            _fail(api, "anna", url=TOKEN)
        response = api.post(TOKEN, {"username": "anna", "password": password})
        assert response.status_code == 429
        error = response.json()["error"]
        assert error["code"] == "locked_out" and error["status"] == 429
        assert int(response["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())
        assert "token" not in response.json()
        assert AuditEvent.objects.filter(action="auth.login_failed").count() == LIMIT + 1

    def test_a_locked_account_is_locked_on_the_login_page_too(self, client, anna, password):
        api = APIClient()
        for _ in range(LIMIT):
            _fail(api, "anna", url=TOKEN)
        assert client.post(LOGIN, {"username": "anna", "password": password}).status_code == 429

    def test_throttled_per_address_whatever_x_forwarded_for_says(self, db):
        api = APIClient()
        rate = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["auth"].split("/")[0])
        for i in range(rate):
            # Incomplete requests: refused before any password check, so no lockout.
            response = api.post(TOKEN, {}, HTTP_X_FORWARDED_FOR=f"10.1.0.{i}")
            assert response.status_code == 400, response.content
        response = api.post(TOKEN, {}, HTTP_X_FORWARDED_FOR="10.1.1.1")
        assert response.status_code == 429
        error = response.json()["error"]
        assert error["code"] == "throttled" and error["status"] == 429
        assert int(response["Retry-After"]) > 0
        # Another client address has its own allowance.
        assert api.post(TOKEN, {}, REMOTE_ADDR="10.2.0.1").status_code == 400

    def test_still_throttled_while_redis_is_unreachable(self, db):
        """A cache outage reads as "no requests yet"; the limit must hold anyway."""
        import socket

        from django.core.cache import caches
        from django.test import override_settings

        from rlhf_platform.api import ClientAddressThrottle
        from rlhf_platform.settings import redis_caches

        with socket.socket() as probe:  # a port with nothing listening: a real outage
            probe.bind(("127.0.0.1", 0))
            dead = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
        ClientAddressThrottle.cache._local.clear()
        api = APIClient()
        rate = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["auth"].split("/")[0])
        with override_settings(CACHES=redis_caches(dead)):
            try:
                for _ in range(rate):
                    assert api.post(TOKEN, {}).status_code == 400
                response = api.post(TOKEN, {})
            finally:
                caches["throttle"].close()
        assert response.status_code == 429, response.content
        ClientAddressThrottle.cache._local.clear()

    def test_a_success_returns_the_token_and_is_an_audited_login(self, anna, password):
        response = APIClient().post(TOKEN, {"username": "anna", "password": password})
        assert response.status_code == 200 and len(response.json()["token"]) == 40
        actions = list(AuditEvent.objects.values_list("action", flat=True))
        assert actions == ["token.create", "auth.login"]
