"""Webhooks, in the test process with a real local HTTP receiver: subscriptions (API and
pages, secret shown once), the audit-action registry, signatures, outbound address checks
(SSRF, DNS rebinding, redirects), idempotent attempts, redelivery and auto-disabling.

End to end through a real Celery worker: tests/governance/test_webhooks_worker.py.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.db import connection, transaction

from annotation import services as annotation_services
from governance import services, webhooks
from governance.models import AuditEvent, WebhookDelivery, WebhookEvent, WebhookSubscription
from tests.annotation.conftest import label, pairs
from tests.factories import UserFactory

from .webhook_receiver import Receiver

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[2] / "README.md"


def _subscribe(user, url, *, event_types=("approval.requested",), project_id=None, **kw):
    subscription, secret = services.webhook_subscription_create(
        user=user, name="ops", url=url, event_types=list(event_types), project_id=project_id,
        allow_private=kw.pop("allow_private", True), **kw,
    )  # fmt: skip
    return subscription, secret


def _approval_event(project_id, **after):
    return services.audit_event_record(
        action="approval.requested", object_type="governance.approvalrequest", object_id=7,
        after={"project": project_id, "kind": "promotion", **after},
    )  # fmt: skip


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    """Names resolved as the test says (this machine has no DNS); IP literals and
    /etc/hosts (localhost) as usual.  example.org is public, as on the internet."""
    answers: dict[str, str] = {"example.org": "93.184.215.14"}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


# -- Outbound addresses -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://localhost/hook",
    ],
)
def test_internal_addresses_are_refused_unless_an_admin_allows_them(url):
    with pytest.raises(webhooks.UnsafeDestination):
        webhooks.url_validate(url)
    assert webhooks.url_validate(url, allow_private=True) == url


def test_a_settings_allow_list_admits_a_private_network(settings):
    with pytest.raises(webhooks.UnsafeDestination):
        webhooks.url_validate("http://10.9.8.7/hook")
    settings.WEBHOOK_ALLOWED_NETWORKS = ["10.9.0.0/16"]
    assert webhooks.url_validate("http://10.9.8.7/hook")
    with pytest.raises(webhooks.UnsafeDestination):
        webhooks.url_validate("http://10.10.0.1/hook")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.org/x", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("https://user:pw@example.org/x", "credentials"),
        ("https:///nohost", "no host"),
    ],
)
def test_other_schemes_and_credentials_are_refused(url, reason):
    with pytest.raises(webhooks.UnsafeDestination, match=reason):
        webhooks.url_validate(url, resolve=False)


def test_hostnames_resolving_to_internal_addresses_are_refused(fake_dns):
    fake_dns["metadata.attacker.test"] = "169.254.169.254"
    fake_dns["intranet.attacker.test"] = "10.0.0.8"
    fake_dns["public.example.test"] = "93.184.215.14"
    for host in ("metadata.attacker.test", "intranet.attacker.test"):
        with pytest.raises(webhooks.UnsafeDestination, match=r"link-local|private"):
            webhooks.url_validate(f"https://{host}/hook")
    assert webhooks.url_validate("https://public.example.test/hook")


def test_dns_rebinding_is_refused_at_delivery_time(ada, fake_dns):
    """The name was public when saved and points at loopback when delivered: nothing is
    sent, and the attempt says why."""
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        fake_dns["rebind.example.test"] = "93.184.215.14"
        subscription, _ = _subscribe(ada, f"http://rebind.example.test:{port}/hook",
                                     allow_private=False)  # fmt: skip
        delivery = _approval_event(None)
        delivery = WebhookDelivery.objects.get(subscription=subscription)
        fake_dns["rebind.example.test"] = "127.0.0.1"
        services.webhook_delivery_attempt(delivery_id=delivery.pk)
    assert receiver.requests == []
    attempt = delivery.log.get()
    assert attempt.status_code is None and "127.0.0.1 is a loopback address" in attempt.error


def test_redirects_are_not_followed(ada):
    with (
        Receiver(default=200) as inside,
        Receiver(default=302, headers={"Location": "http://127.0.0.1:1/"}) as outside,
    ):
        inside_url = inside.url
        outside.extra_headers["Location"] = inside_url
        subscription, _ = _subscribe(ada, outside.url)
        _approval_event(None)
        delivery = WebhookDelivery.objects.get(subscription=subscription)
        services.webhook_delivery_attempt(delivery_id=delivery.pk)
    assert len(outside.requests) == 1 and inside.requests == []
    assert "redirects are not followed" in delivery.log.get().error


# -- Subscriptions: API, pages, secret ----------------------------------------------------


def test_the_secret_is_shown_once_then_masked_and_never_audited(api_as, ada):
    api = api_as(ada)
    created = api.post(
        "/api/governance/webhooks/",
        {"name": "ops", "url": "https://example.org/hook", "event_types": ["alert.fired"]},
    )
    assert created.status_code == 201, created.json()
    secret = created.json()["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    pk = created.json()["id"]
    masked = api.get(f"/api/governance/webhooks/{pk}/").json()["secret"]
    assert masked.endswith(secret[-4:]) and secret not in masked
    assert secret not in api.get("/api/governance/webhooks/").content.decode()
    patched = api.patch(f"/api/governance/webhooks/{pk}/", {"name": "ops 2"})
    assert patched.status_code == 200 and secret not in patched.content.decode()
    # Not in the audit trail, not in clear text in the table.
    assert AuditEvent.objects.filter(action="webhook.subscription_create").exists()
    assert not any(secret in e.canonical for e in AuditEvent.objects.all())
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM governance_webhooksubscription")
        (stored,) = cursor.fetchone()
    assert secret not in stored
    rotated = api.post(f"/api/governance/webhooks/{pk}/rotate-secret/").json()["secret"]
    assert rotated != secret and WebhookSubscription.objects.get(pk=pk).secret == rotated
    assert not any(rotated in e.canonical for e in AuditEvent.objects.all())


def test_bad_subscriptions_answer_400_naming_the_field(api_as, ada):
    api = api_as(ada)
    cases = [
        ({"url": "http://127.0.0.1:9/x"}, "url", "loopback"),
        ({"url": "http://169.254.169.254/"}, "url", "link-local"),
        ({"event_types": ["no.such"]}, "event_types", ""),
        ({"event_types": []}, "event_types", ""),
        ({"project": 99999}, "project", "no such project"),
    ]
    for change, field, reason in cases:
        body = {"name": "x", "url": "https://example.org/h", "event_types": ["job.failed"]}
        response = api.post("/api/governance/webhooks/", {**body, **change})
        assert response.status_code == 400, (change, response.json())
        fields = response.json()["error"]["fields"]
        assert any(key.startswith(field) for key in fields), fields
        assert reason in json.dumps(fields)
    assert not WebhookSubscription.objects.exists()


def test_only_admins_manage_webhooks(api_as, rosa, eve, anna):
    for user in (rosa, eve, anna):
        assert api_as(user).get("/api/governance/webhooks/").status_code == 403
        response = api_as(user).post(
            "/api/governance/webhooks/",
            {"name": "x", "url": "https://example.org/h", "event_types": ["job.failed"]},
        )
        assert response.status_code == 403


def test_allowing_private_addresses_needs_its_own_permission(db):
    """A user who may add webhooks but lacks allow_private cannot point one inside."""
    operator = UserFactory(username="operator")
    operator.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["add_webhooksubscription", "view_webhooksubscription"]
        )
    )
    with pytest.raises(Exception) as refused:
        _subscribe(operator, "http://127.0.0.1:9/hook", allow_private=True)
    assert "allow_private" in refused.value.message_dict


def test_the_page_shows_the_secret_once(client, password, ada):
    client.login(username="ada", password=password)
    response = client.post(
        "/governance/webhooks/",
        {"name": "ops", "url": "https://example.org/hook", "event_types": ["job.failed"],
         "is_active": "on"},
    )  # fmt: skip
    assert response.status_code == 201
    secret = re.search(r'data-testid="secret">([^<]+)<', response.content.decode()).group(1)
    subscription = WebhookSubscription.objects.get()
    assert subscription.secret == secret
    page = client.get(f"/governance/webhooks/{subscription.pk}/").content.decode()
    assert secret not in page and secret[-4:] in page
    bad = client.post("/governance/webhooks/", {"name": "x", "url": "http://10.0.0.1/",
                                                "event_types": ["job.failed"]})  # fmt: skip
    assert bad.status_code == 400 and "private address" in bad.content.decode()


# -- Events from the audit path -----------------------------------------------------------


def test_every_issue_event_type_is_mapped_from_an_audit_action():
    mapped = {m.event_type for m in webhooks.webhook_event_mappings().values()}
    assert mapped == set(webhooks.EVENT_TYPES)
    actions = webhooks.webhook_event_mappings()
    assert actions["approval.requested"].event_type == "approval.requested"
    assert actions["approval.decided"].event_type == "approval.decided"
    assert actions["model.alias_set"].event_type == "alias.moved"
    assert actions["model.alias_remove"].event_type == "alias.moved"
    assert actions["monitoring.alert_fire"].event_type == "alert.fired"


def test_an_approval_event_reaches_matching_subscriptions_without_its_rationale(ada, rosa):
    project = annotation_services.project_create(created_by=rosa, name="P")
    other = annotation_services.project_create(created_by=rosa, name="Q")
    mine, _ = _subscribe(ada, "https://example.org/a", project_id=project.pk)
    everyone, _ = _subscribe(ada, "https://example.org/b")
    _subscribe(ada, "https://example.org/c", project_id=other.pk)
    _subscribe(ada, "https://example.org/d", event_types=["approval.decided"])
    event = _approval_event(project.pk, rationale="the committee's private reasoning")
    deliveries = WebhookDelivery.objects.order_by("subscription_id")
    assert [d.subscription_id for d in deliveries] == [mine.pk, everyone.pk]
    body = json.loads(WebhookEvent.objects.get().body)
    assert body["type"] == "approval.requested" and body["project"] == project.pk
    assert body["data"] == {"request": "7", "object_type": "governance.approvalrequest",
                            "kind": "promotion"}  # fmt: skip
    assert set(body) == {"id", "type", "timestamp", "project", "data"}
    assert WebhookEvent.objects.get().audit_sequence == event.sequence


def test_a_rolled_back_change_sends_nothing(ada):
    _subscribe(ada, "https://example.org/a")
    with transaction.atomic():
        _approval_event(None)
        transaction.set_rollback(True)
    assert not WebhookDelivery.objects.exists() and not WebhookEvent.objects.exists()


def test_unmapped_actions_and_unsubscribed_events_write_nothing(ada):
    services.audit_event_record(action="system.probe", object_type="x", object_id=1)
    _approval_event(None)  # no subscription yet
    assert not WebhookEvent.objects.exists()


def test_a_project_is_completed_once_when_its_last_item_gets_its_answers(ada, rosa, anna, ben):
    project = annotation_services.project_create(created_by=rosa, name="Done soon", overlap=2)
    for user in (anna, ben):
        annotation_services.project_member_add(project=project, user=user, role="annotator")
    annotation_services.items_create_bulk(project=project, rows=pairs(2))
    _subscribe(ada, "https://example.org/a", event_types=["annotation.project_completed"])
    label(project, anna)
    label(project, anna)
    label(project, ben)
    assert not AuditEvent.objects.filter(action="project.complete").exists()
    label(project, ben)
    completed = AuditEvent.objects.get(action="project.complete")
    assert completed.after == {"items": 2, "overlap": 2}
    body = json.loads(WebhookEvent.objects.get().body)
    assert body["type"] == "annotation.project_completed" and body["project"] == project.pk
    assert body["data"] == {"project": project.pk, "name": "Done soon", "items": 2, "overlap": 2}


def test_a_finished_import_job_is_a_job_finished_event(ada, rosa):
    import io

    project = annotation_services.project_create(created_by=rosa, name="Imports")
    _subscribe(ada, "https://example.org/a", event_types=["job.finished", "job.failed"])
    upload = io.BytesIO(b'{"prompt": "p", "responses": ["a", "b"]}\n{"prompt": ""}\n')
    upload.name = "bad.jsonl"
    job = annotation_services.import_job_create(project=project, user=rosa, file=upload)
    annotation_services.import_job_run(job_id=job.pk)
    body = json.loads(WebhookEvent.objects.get().body)
    assert body["type"] == "job.failed" and body["project"] == project.pk
    assert body["data"] == {"kind": "import", "job": job.pk, "status": "failed", "rows": 0,
                            "created": 0, "errors": 1}  # fmt: skip


# -- Delivery: signature, idempotency, redelivery, disabling -------------------------------


def _readme_verifier():
    """The receiver recipe exactly as the README shows it."""
    text = README.read_text()
    code = re.search(r"<!-- webhook-verify -->\s*```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 (our own README's snippet)
    return namespace["signature_verify"]


def test_a_delivery_is_signed_as_documented_and_sent_once(ada):
    with Receiver() as receiver:
        _, secret = _subscribe(ada, receiver.url)
        _approval_event(None)
        delivery = WebhookDelivery.objects.get()
        assert services.webhook_delivery_attempt(delivery_id=delivery.pk).status == "succeeded"
        # A second copy of the task (a broker redelivery) sends nothing.
        services.webhook_delivery_attempt(delivery_id=delivery.pk)
    (request,) = receiver.requests
    header = request.headers["Attune-Signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)
    assert webhooks.signature_verify(secret=secret, header=header, body=request.body)
    assert _readme_verifier()(secret=secret, header=header, body=request.body)
    assert not webhooks.signature_verify(secret=secret, header=header, body=request.body + b" ")
    assert not webhooks.signature_verify(secret="whsec_wrong", header=header, body=request.body)
    assert request.headers["Attune-Event"] == "approval.requested"
    assert request.headers["Attune-Delivery"] == str(delivery.delivery_id)
    assert json.loads(request.body)["id"] == str(delivery.event.event_id)
    attempt = delivery.log.get()
    assert (attempt.number, attempt.status_code, attempt.error) == (1, 200, "")
    assert attempt.response_excerpt == '{"received": true}'


def test_a_stale_copy_of_a_message_never_posts_before_the_backoff(ada):
    """A copy of attempt 1's message arriving after attempt 1 (a broker redelivery, a
    duplicate send) must not post again: only attempt 2's message, after the backoff, may."""
    with Receiver(plan=[500], default=200) as receiver:
        _subscribe(ada, receiver.url)
        _approval_event(None)
        delivery = WebhookDelivery.objects.get()
        services.webhook_delivery_attempt(delivery_id=delivery.pk, attempt=1)
        services.webhook_delivery_attempt(delivery_id=delivery.pk, attempt=1)  # stale copy
        assert [r.status for r in receiver.requests] == [500]
        services.webhook_delivery_attempt(delivery_id=delivery.pk, attempt=2)
    assert [r.status for r in receiver.requests] == [500, 200]
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.status == "succeeded"


def test_an_old_signature_is_refused_by_the_replay_window():
    body = b"{}"
    old = webhooks.signature_header(secret="s", body=body, timestamp=1_000_000_000)
    assert not webhooks.signature_verify(secret="s", header=old, body=body)
    assert not webhooks.signature_verify(secret="s", header="garbage", body=body)


def test_redelivery_is_a_new_delivery_of_the_same_event(api_as, ada):
    with Receiver() as receiver:
        _subscribe(ada, receiver.url)
        _approval_event(None)
        first = WebhookDelivery.objects.get()
        url = f"/api/governance/webhook-deliveries/{first.pk}/redeliver/"
        assert api_as(ada).post(url).status_code == 409  # still pending
        services.webhook_delivery_attempt(delivery_id=first.pk)
        response = api_as(ada).post(url)
        assert response.status_code == 202, response.json()
        again = WebhookDelivery.objects.get(pk=response.json()["id"])
        services.webhook_delivery_attempt(delivery_id=again.pk)
    one, two = receiver.requests
    assert json.loads(one.body)["id"] == json.loads(two.body)["id"]
    assert one.headers["Attune-Delivery"] != two.headers["Attune-Delivery"]
    assert again.redelivery_of_id == first.pk
    assert AuditEvent.objects.filter(action="webhook.redeliver").count() == 1
    log = api_as(ada).get(f"/api/governance/webhook-deliveries/{first.pk}/").json()
    assert log["status"] == "succeeded" and log["log"][0]["status_code"] == 200


def test_a_failing_receiver_disables_the_subscription_and_admins_are_told(
    ada, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 2
    with Receiver(default=503) as receiver:
        subscription, _ = _subscribe(ada, receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            for _ in range(2):
                _approval_event(None)
                delivery = WebhookDelivery.objects.order_by("-id").first()
                services.webhook_delivery_attempt(delivery_id=delivery.pk)
                services.webhook_delivery_attempt(delivery_id=delivery.pk, attempt=2)
    assert len(receiver.requests) == 4
    subscription.refresh_from_db()
    assert not subscription.is_active and subscription.consecutive_failures == 2
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"failed"}
    disabled = AuditEvent.objects.get(action="webhook.subscription_disable")
    assert disabled.actor_username == "" and disabled.after["is_active"] is False
    assert [m.to for m in mail.outbox] == [["ada@example.org"]]
    assert "disabled" in mail.outbox[0].subject
    _approval_event(None)  # a disabled subscription gets nothing more
    assert WebhookDelivery.objects.count() == 2
    # An admin enables it again: the failure count starts over.
    services.webhook_subscription_update(subscription=subscription, user=ada, is_active=True)
    subscription.refresh_from_db()
    assert subscription.is_active and subscription.consecutive_failures == 0


def test_a_success_resets_the_failure_count(ada, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    with Receiver(plan=[500], default=200) as receiver:
        subscription, _ = _subscribe(ada, receiver.url)
        for _ in range(2):
            _approval_event(None)
            services.webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.first().pk)
            subscription.refresh_from_db()
    assert [r.status for r in receiver.requests] == [500, 200]
    assert subscription.consecutive_failures == 0 and subscription.is_active


def test_backoff_grows_with_jitter(settings):
    import random

    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    settings.WEBHOOK_RETRY_MAX_SECONDS = 3600
    rng = random.Random(3)
    delays = [services.webhook_retry_delay(attempt=n, rng=rng) for n in range(1, 13)]
    below_cap = [d for d in delays if d < 3600]
    assert len(below_cap) >= 8 and all(b > a for a, b in itertools.pairwise(below_cap))
    assert 10 <= delays[0] <= 15 and delays[-1] == 3600


def test_a_delivery_left_sending_by_a_dead_worker_is_queued_again(ada):
    from datetime import timedelta

    from django.utils import timezone

    _subscribe(ada, "https://example.org/a")
    _approval_event(None)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="sending", claimed_at=timezone.now() - timedelta(hours=1)
    )
    assert services.webhook_deliveries_reap() == {"requeued": 1, "resent": 0}
    delivery.refresh_from_db()
    assert delivery.status == "pending"


def test_the_real_approval_workflow_sends_requested_and_decided_to_the_project(
    ada, rosa, eve, snapshot, base
):
    """The approval services' own audit events (not hand-written ones) reach the
    subscription of the subject's project, the decision included, without rationales."""
    from tests.governance.conftest import version_make

    version = version_make(snapshot=snapshot, base=base)
    _subscribe(
        ada, "https://example.org/p", event_types=["approval.requested", "approval.decided"],
        project_id=snapshot.project_id,
    )  # fmt: skip
    request = services.approval_request_open(
        kind="model.promote", subject=version, payload={"alias": "production"},
        requested_by=rosa, justification="Better held-out accuracy.",
    )  # fmt: skip
    services.approval_request_decide(
        request=request, reviewer=eve, verdict="approve", rationale="Private reasoning here."
    )
    bodies = [json.loads(e.body) for e in WebhookEvent.objects.order_by("id")]
    assert [b["type"] for b in bodies] == ["approval.requested", "approval.decided"]
    assert {b["project"] for b in bodies} == {snapshot.project_id}
    assert bodies[0]["data"]["kind"] == "model.promote"
    assert bodies[1]["data"]["verdict"] == "approve" and bodies[1]["data"]["approvals"] == 1
    assert WebhookDelivery.objects.count() == 2
    assert "Private reasoning" not in json.dumps(bodies)
    assert "Better held-out" not in json.dumps(bodies)


def test_old_finished_logs_are_pruned_and_unfinished_ones_kept(ada):
    from datetime import timedelta

    from django.utils import timezone

    _subscribe(ada, "https://example.org/a")
    for _ in range(2):
        _approval_event(None)
    finished, waiting = WebhookDelivery.objects.order_by("pk")
    WebhookDelivery.objects.filter(pk=finished.pk).update(status="succeeded")
    WebhookEvent.objects.update(created_at=timezone.now() - timedelta(days=31))
    assert services.webhook_log_prune() == 1
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [waiting.pk]
    assert services.webhook_log_prune(older_than=timedelta(days=60)) == 0
