"""The audit trail: one service writes it, the chain detects tampering, the table is
append-only, and only admins and the ethics committee can read it."""

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from governance.audit import GENESIS_HASH, event_digest
from governance.models import AuditEvent
from governance.selectors import audit_chain_verify
from governance.services import audit_event_record
from rlhf_platform import request_context

pytestmark = pytest.mark.django_db


def _record(n: int, **kwargs) -> list[AuditEvent]:
    return [
        audit_event_record(
            action="test.thing", object_type="test", object_id=i, after={"i": i}, **kwargs
        )
        for i in range(n)
    ]


def _tamper(sql: str, params=()):
    """Change the table as a DBA with raw SQL would, with the append-only trigger off."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A superuser can switch triggers off; the chain must still catch the change.
            cursor.execute("SET session_replication_role = replica")
            cursor.execute(sql, params)
            cursor.execute("SET session_replication_role = DEFAULT")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS governance_auditevent_no_update")
            cursor.execute(sql, params)


def test_events_are_chained_and_verify(ada):
    with request_context.bind(request_id_value="req-1", ip="10.0.0.7", user=ada):
        first, second, third = _record(3)
    assert (first.sequence, second.sequence, third.sequence) == (1, 2, 3)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert first.actor_id == ada.pk and first.actor_username == "ada"
    assert first.request_id == "req-1" and first.client_ip == "10.0.0.7"
    stored = AuditEvent.objects.values().get(pk=second.pk)
    assert event_digest(prev_hash=stored["prev_hash"], fields=stored) == second.hash
    report = audit_chain_verify()
    assert report.ok and report.checked == 3


def test_event_is_part_of_the_callers_transaction():
    _record(1)
    with pytest.raises(RuntimeError), transaction.atomic():
        _record(1)
        raise RuntimeError("the change failed")
    assert AuditEvent.objects.count() == 1
    assert audit_chain_verify().ok


def test_edited_event_is_found():
    events = _record(5)
    _tamper(
        "UPDATE governance_auditevent SET action = %s WHERE id = %s",
        ["test.innocent", events[2].pk],
    )
    report = audit_chain_verify()
    assert not report.ok
    assert report.first_break.sequence == 3
    assert "hash does not match" in report.first_break.reason


def test_deleted_event_is_found():
    events = _record(5)
    _tamper("DELETE FROM governance_auditevent WHERE id = %s", [events[1].pk])
    report = audit_chain_verify()
    assert not report.ok
    assert report.first_break.sequence == 3
    assert "missing" in report.first_break.reason


def test_deleted_last_events_are_invisible_without_an_anchor_but_the_rest_verifies():
    # Truncating the tail leaves a valid shorter chain: the verifier reports what it checked,
    # so operators compare the head against an externally kept anchor (documented).
    events = _record(3)
    _tamper("DELETE FROM governance_auditevent WHERE id = %s", [events[-1].pk])
    report = audit_chain_verify()
    assert report.ok and report.checked == 2


def test_inserted_event_is_found():
    events = _record(4)
    # Make room after event 2 and forge an event there with a self-consistent hash.
    _tamper("UPDATE governance_auditevent SET sequence = sequence + 100 WHERE sequence > 2")
    forged = {
        "sequence": 3,
        "timestamp": events[2].timestamp,
        "actor_id": None,
        "actor_username": "mallory",
        "action": "model.promote",
        "object_type": "test",
        "object_id": "x",
        "before": None,
        "after": None,
        "request_id": "",
        "client_ip": None,
    }
    digest = event_digest(prev_hash=events[1].hash, fields=forged)
    AuditEvent.objects.create(**forged, prev_hash=events[1].hash, hash=digest)
    _tamper("UPDATE governance_auditevent SET sequence = sequence - 99 WHERE sequence > 100")
    report = audit_chain_verify()
    assert not report.ok
    # The forged event itself links correctly; the next genuine event no longer does.
    assert report.first_break.sequence == 4
    assert "prev_hash" in report.first_break.reason


def test_audit_verify_command_exit_codes(capsys):
    events = _record(3)
    call_command("audit_verify")
    assert "3 events verified" in capsys.readouterr().out
    _tamper(
        "UPDATE governance_auditevent SET after = %s WHERE id = %s", ['{"i": 99}', events[0].pk]
    )
    with pytest.raises(CommandError, match=r"BROKEN at event sequence=1"):
        call_command("audit_verify")


def test_audit_verify_exits_non_zero_from_the_shell():
    """The command's exit status is what cron jobs and CI read."""
    from django.core.management import execute_from_command_line

    events = _record(2)
    _tamper("UPDATE governance_auditevent SET object_id = 'z' WHERE id = %s", [events[1].pk])
    with pytest.raises(SystemExit) as exc:
        execute_from_command_line(["manage.py", "audit_verify"])
    assert exc.value.code != 0


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="the trigger under test is PostgreSQL's"
)
def test_postgres_refuses_update_and_delete():
    event = _record(1)[0]
    for sql in (
        "UPDATE governance_auditevent SET action = 'x' WHERE id = %s",
        "DELETE FROM governance_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [event.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.thing"


@pytest.mark.skipif("connection.vendor != 'sqlite'", reason="the trigger under test is SQLite's")
def test_sqlite_refuses_update():
    event = _record(1)[0]
    with pytest.raises((DatabaseError, IntegrityError), match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    assert AuditEvent.objects.get(pk=event.pk).action == "test.thing"


def test_request_id_ties_the_events_of_one_request_together(client, ada, password):
    client.login(username="ada", password=password)
    response = client.post("/preferences/theme/", {"theme": "dark"}, HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    # An unusable incoming id is replaced, never stored.
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces\n")
    assert (
        response["X-Request-ID"] != "bad id with spaces\n" and len(response["X-Request-ID"]) == 32
    )


class TestAuditApi:
    url = "/api/governance/audit-events/"

    def test_admin_and_ethics_committee_read_and_filter(self, api_as, ada, eve):
        with request_context.bind(user=ada):
            _record(2)
            audit_event_record(action="model.promote", object_type="model", object_id="7")
        for user in (ada, eve):
            response = api_as(user).get(self.url, {"action": "model.promote"})
            assert response.status_code == 200, response.content
            assert [e["object_id"] for e in response.json()["results"]] == ["7"]
            assert response.json()["results"][0]["actor_username"] == "ada"

    @pytest.mark.parametrize("persona", ["rosa", "anna", "rex", "vic", "nobody"])
    def test_other_roles_are_refused(self, api_as, persona, request):
        _record(1)
        response = api_as(request.getfixturevalue(persona)).get(self.url)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"

    def test_never_writable_even_by_admin(self, api_as, ada):
        event = _record(1)[0]
        client = api_as(ada)
        assert client.post(self.url, {"action": "x"}).status_code == 405
        assert client.delete(f"{self.url}{event.sequence}/").status_code == 405
        assert client.patch(f"{self.url}{event.sequence}/", {"action": "x"}).status_code == 405
        assert AuditEvent.objects.count() == 1

    def test_unauthenticated_is_401(self, api):
        response = api.get(self.url)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Token")


class TestAuditPage:
    def test_ethics_committee_reads_the_trail(self, client, eve, password):
        audit_event_record(action="model.promote", object_type="model", object_id="42")
        client.login(username="eve", password=password)
        response = client.get("/governance/audit/", {"action_prefix": "model"})
        assert response.status_code == 200
        assert b"model.promote" in response.content

    def test_pages_keep_the_filters(self, client, eve, password):
        for i in range(60):
            audit_event_record(action="model.promote", object_type="model", object_id=str(i))
        client.login(username="eve", password=password)
        html = client.get("/governance/audit/", {"action_prefix": "model"}).content.decode()
        assert 'href="?action_prefix=model&page=2">Older</a>' in html
        assert "Page 1 of 2" in html

    def test_annotator_is_refused(self, client, anna, password):
        client.login(username="anna", password=password)
        assert client.get("/governance/audit/").status_code == 403

    def test_admin_console_is_read_only(self, client, ada, password):
        event = _record(1)[0]
        client.login(username="ada", password=password)
        assert client.get("/admin/governance/auditevent/").status_code == 200
        assert client.get("/admin/governance/auditevent/add/").status_code == 403
        response = client.post(f"/admin/governance/auditevent/{event.pk}/delete/", {"post": "yes"})
        assert response.status_code == 403
        assert AuditEvent.objects.filter(pk=event.pk).exists()
