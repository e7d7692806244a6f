"""The audit trail: one service writes it, a keyed chain over stored canonical text detects
tampering, the tables refuse UPDATE/DELETE/TRUNCATE, signed checkpoints catch cut-off tails
and rollbacks, archives verify offline, and only admins and the ethics committee read it."""

import base64
import datetime as dt
import decimal
import hashlib
import hmac
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from governance import tasks
from governance.audit import GENESIS_HASH, audit_maintenance, canonical_text
from governance.models import AuditAnchor, AuditEvent
from governance.selectors import audit_chain_verify
from governance.services import (
    audit_archive_export,
    audit_checkpoint_write,
    audit_event_record,
    audit_prune,
)
from rlhf_platform import request_context

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
OTHER_KEY = b"k" * 32


def _record(n: int, **kwargs) -> list[AuditEvent]:
    return [
        audit_event_record(
            action="test.thing", object_type="test", object_id=i, after={"i": i}, **kwargs
        )
        for i in range(n)
    ]


def _tamper(sql: str, params=()):
    """Change the table as a DBA with raw SQL would, past the append-only triggers."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A superuser can switch triggers off; the chain must still catch the change.
            cursor.execute("SET session_replication_role = replica")
            cursor.execute(sql, params)
            cursor.execute("SET session_replication_role = DEFAULT")
        else:
            for name in ("governance_auditevent_no_update", "governance_auditevent_no_delete"):
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
            cursor.execute(sql, params)


def _break():
    report = audit_chain_verify()
    assert not report.ok, "tampering went unnoticed"
    return report.first_break


def _hmac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


# --- Writing and the canonical form (point 7) ----------------------------------------------


def test_events_are_chained_signed_and_verify(ada, settings):
    with request_context.bind(request_id_value="req-1", ip="10.0.0.7", user=ada):
        first, second, third = _record(3)
    assert (first.sequence, second.sequence, third.sequence) == (1, 2, 3)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert first.actor_id == ada.pk and first.actor_username == "ada"
    assert first.request_id == "req-1" and first.client_ip == "10.0.0.7"
    stored = AuditEvent.objects.get(pk=second.pk)
    key_id = next(iter(settings.AUDIT_HMAC_KEYS))
    assert stored.key_id == key_id
    # The hash is the HMAC of the stored text, which names the previous hash and the key.
    assert stored.hash == _hmac(settings.AUDIT_HMAC_KEYS[key_id], stored.canonical)
    payload = json.loads(stored.canonical)
    assert payload["prev_hash"] == first.hash and payload["key_id"] == key_id
    assert stored.canonical == canonical_text(payload)
    report = audit_chain_verify()
    assert report.ok and report.checked == 3


def test_event_is_part_of_the_callers_transaction():
    _record(1)
    with pytest.raises(RuntimeError), transaction.atomic():
        _record(1)
        raise RuntimeError("the change failed")
    assert AuditEvent.objects.count() == 1
    assert audit_chain_verify().ok


AWKWARD = {
    "z": {"b": -0.0, "a": 1e16},
    "big": 1.5e300,
    "tiny": 5e-324,
    "text": 'Grüße, 世界 🎉 \u2028 "q" \\',
    "nested": [{"y": 2, "x": [3, {"d": None, "c": True}]}],
    "ratio": 0.1 + 0.2,
    "neg": -1e16,
}


def test_awkward_payloads_verify_after_the_database_round_trip():
    # jsonb turns -0.0 into 0, rewrites 1e16 and reorders keys; the stored text does not move.
    event = audit_event_record(action="test.awkward", before=AWKWARD, after=[AWKWARD, -0.0])
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (
        '"before":{"big":1.5e+300,"neg":-10000000000000000,"nested":[{"x":[3,{"c":true,'
        '"d":null}],"y":2}],"ratio":0.30000000000000004,"text":"Grüße, 世界 🎉 \u2028 \\"q\\" '
        '\\\\","tiny":5e-324,"z":{"a":10000000000000000,"b":0}}' in stored.canonical
    )
    assert stored.before["z"]["a"] == 10**16 and stored.after[1] == 0
    report = audit_chain_verify()
    assert report.ok, report.first_break


def test_values_json_cannot_hold_are_recorded_as_text():
    event = audit_event_record(
        action="test.text",
        after={
            "nan": math.nan,
            "inf": math.inf,
            "minf": -math.inf,
            "huge": 2**64,
            "price": decimal.Decimal("12.30"),
            "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
            "day": dt.date(2026, 1, 2),
            "took": dt.timedelta(seconds=90),
            "tags": {"b", "a"},
            7: "int key",
            "lone": "a\ud800b",
            "nul": "a\x00b",
        },
    )
    after = AuditEvent.objects.get(pk=event.pk).after
    assert after == {
        "nan": "NaN",
        "inf": "Infinity",
        "minf": "-Infinity",
        "huge": "18446744073709551616",
        "price": "12.30",
        "when": "2026-01-02T03:04:05+00:00",
        "day": "2026-01-02",
        "took": "P0DT00H01M30S",
        "tags": ["a", "b"],
        "7": "int key",
        "lone": "a\ufffdb",
        "nul": "a\ufffdb",
    }
    assert audit_chain_verify().ok


def test_a_model_instance_in_a_payload_is_a_programming_error(ada):
    with pytest.raises(TypeError, match="not JSON"):
        audit_event_record(action="test.bad", after={"user": ada})
    assert not AuditEvent.objects.exists()


def test_events_from_ordinary_requests_verify(api_as, rosa):
    client = api_as(rosa)
    response = client.post(
        "/api/annotation/projects/",
        {"name": "Ünïcode 🎉 project", "gold_ratio": -0.0, "guidelines": "Be kind\u2028always"},
    )
    assert response.status_code == 201, response.content
    project_id = response.json()["id"]
    response = client.patch(
        f"/api/annotation/projects/{project_id}/", {"gold_ratio": 0.30000000000000004}
    )
    assert response.status_code == 200, response.content
    assert AuditEvent.objects.filter(object_id=str(project_id)).count() >= 2
    report = audit_chain_verify()
    assert report.ok, report.first_break
    assert report.checked == AuditEvent.objects.count()


# --- Tampering is detected and named (point 8) ---------------------------------------------


def test_edited_column_is_found():
    events = _record(5)
    _tamper(
        "UPDATE governance_auditevent SET action = %s WHERE id = %s",
        ["test.innocent", events[2].pk],
    )
    brk = _break()
    assert brk.sequence == 3 and brk.event_id == events[2].pk
    assert "column 'action' differs from the signed payload" in brk.reason


def test_edited_json_column_is_found():
    events = _record(3)
    _tamper(
        "UPDATE governance_auditevent SET after = %s WHERE id = %s", ['{"i": 99}', events[1].pk]
    )
    brk = _break()
    assert brk.sequence == 2 and "column 'after'" in brk.reason


def test_edited_payload_text_is_found():
    events = _record(3)
    forged = events[1].canonical.replace('"action":"test.thing"', '"action":"test.other"')
    _tamper("UPDATE governance_auditevent SET canonical = %s WHERE id = %s", [forged, events[1].pk])
    brk = _break()
    assert brk.sequence == 2 and "HMAC does not match" in brk.reason


@pytest.mark.parametrize("recompute", ["sha256", "wrong-key-hmac"])
def test_edited_payload_with_recomputed_hashes_is_found(recompute, settings):
    """The attack that used to pass: edit an event and recompute every hash after it."""
    events = _record(4)
    key_id = next(iter(settings.AUDIT_HMAC_KEYS))
    prev = events[0].hash
    for event in events[1:]:
        payload = json.loads(event.canonical)
        payload["prev_hash"] = prev
        if event.sequence == 2:
            payload["after"] = {"i": 99}
        text = canonical_text(payload)
        digest = (
            hashlib.sha256(text.encode()).hexdigest()
            if recompute == "sha256"
            else _hmac(OTHER_KEY, text)
        )
        _tamper(
            "UPDATE governance_auditevent SET canonical = %s, after = %s, prev_hash = %s, "
            "hash = %s WHERE id = %s",
            [text, json.dumps(payload["after"]), prev, digest, event.pk],
        )
        prev = digest
    assert AuditEvent.objects.get(sequence=2).key_id == key_id
    brk = _break()
    assert brk.sequence == 2 and "HMAC does not match" in brk.reason


def test_deleted_event_is_found():
    events = _record(5)
    _tamper("DELETE FROM governance_auditevent WHERE id = %s", [events[1].pk])
    brk = _break()
    assert brk.sequence == 2 and brk.event_id is None
    assert "event(s) 2..2 missing" in brk.reason


def test_deleted_first_events_are_found():
    events = _record(3)
    _tamper("DELETE FROM governance_auditevent WHERE id = %s", [events[0].pk])
    brk = _break()
    assert brk.sequence == 1 and "missing" in brk.reason


def test_reordered_events_are_found():
    events = _record(4)
    _tamper("UPDATE governance_auditevent SET sequence = 100 WHERE id = %s", [events[1].pk])
    _tamper("UPDATE governance_auditevent SET sequence = 2 WHERE id = %s", [events[2].pk])
    _tamper("UPDATE governance_auditevent SET sequence = 3 WHERE id = %s", [events[1].pk])
    brk = _break()
    assert brk.sequence == 2 and brk.event_id == events[2].pk
    assert "prev_hash does not match" in brk.reason


def test_forged_event_without_the_key_is_found():
    events = _record(4)
    # Make room after event 2 and forge an event there, hashed without the key.
    _tamper("UPDATE governance_auditevent SET sequence = sequence + 100 WHERE sequence > 2")
    payload = json.loads(events[2].canonical)
    payload.update(actor_username="mallory", action="model.promote", prev_hash=events[1].hash)
    text = canonical_text(payload)
    _tamper(
        "INSERT INTO governance_auditevent (sequence, timestamp, actor_username, action, "
        "object_type, object_id, request_id, prev_hash, hash, key_id, canonical) "
        "VALUES (3, %s, 'mallory', 'model.promote', 'test', '2', '', %s, %s, %s, %s)",
        [events[2].timestamp, events[1].hash, _hmac(OTHER_KEY, text), events[2].key_id, text],
    )
    brk = _break()
    assert brk.sequence == 3 and "HMAC does not match" in brk.reason


def test_replaced_key_is_found(settings):
    _record(2)
    key_id = next(iter(settings.AUDIT_HMAC_KEYS))
    settings.AUDIT_HMAC_KEYS = {key_id: OTHER_KEY}
    brk = _break()
    assert brk.sequence == 1 and "HMAC does not match" in brk.reason


def test_rotated_keys_verify_old_and_new_events(settings):
    old_id = next(iter(settings.AUDIT_HMAC_KEYS))
    old = _record(2)
    settings.AUDIT_HMAC_KEYS = {"kid-new": OTHER_KEY, **settings.AUDIT_HMAC_KEYS}
    new = _record(2)
    assert {e.key_id for e in old} == {old_id} and {e.key_id for e in new} == {"kid-new"}
    assert audit_chain_verify().ok
    # Dropping the old key too early leaves its events unverifiable, and says so.
    settings.AUDIT_HMAC_KEYS = {"kid-new": OTHER_KEY}
    brk = _break()
    assert brk.sequence == 1 and f"key id {old_id!r}, which is not in AUDIT_HMAC_KEYS" in brk.reason


# --- Checkpoints outside the table ---------------------------------------------------------


def test_checkpoint_is_a_signed_file_of_the_head(settings):
    assert audit_checkpoint_write() is None  # empty chain: nothing to vouch for
    events = _record(3)
    path = audit_checkpoint_write()
    document = json.loads(path.read_text())
    assert path.parent == settings.AUDIT_CHECKPOINT_DIR
    assert (document["sequence"], document["hash"]) == (3, events[-1].hash)
    assert document["key_id"] == next(iter(settings.AUDIT_HMAC_KEYS))
    assert audit_checkpoint_write() == path  # the head did not move: no new file
    report = audit_chain_verify()
    assert report.ok and report.checkpoints == 1


def test_deleted_newest_events_are_found_by_the_checkpoint():
    events = _record(4)
    audit_checkpoint_write()
    _tamper("DELETE FROM governance_auditevent WHERE sequence >= 3")
    brk = _break()
    assert brk.sequence == 3 and "the chain ends at sequence 2" in brk.reason
    assert events[-1].sequence == 4


def test_truncated_table_is_found_by_the_checkpoint():
    _record(3)
    audit_checkpoint_write()
    with transaction.atomic(), audit_maintenance(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("TRUNCATE governance_auditevent")
        else:
            cursor.execute("DELETE FROM governance_auditevent")
    assert not AuditEvent.objects.exists()
    brk = _break()
    assert brk.sequence == 1 and "truncated" in brk.reason


def test_rolled_back_chain_is_found_by_the_checkpoint():
    # A restore from an old backup, after which the application wrote on.
    _record(3)
    audit_checkpoint_write()
    _tamper("DELETE FROM governance_auditevent WHERE sequence >= 2")
    _record(3)
    brk = _break()
    assert brk.sequence == 3 and "rewritten or rolled back" in brk.reason


def test_forged_checkpoint_file_is_found(settings):
    _record(2)
    path = audit_checkpoint_write()
    document = json.loads(path.read_text())
    document["hash"] = "f" * 64
    path.write_text(json.dumps(document))
    brk = _break()
    assert brk.sequence == 2 and "checkpoint" in brk.reason and "HMAC" in brk.reason


def test_checkpoint_task_and_command(settings, capsys):
    assert tasks.audit_checkpoint.name == "governance.audit_checkpoint"
    assert tasks.audit_checkpoint.queue == "default" and tasks.audit_checkpoint.time_limit
    entry = settings.CELERY_BEAT_SCHEDULE["governance-audit-checkpoint"]
    assert entry["task"] == "governance.audit_checkpoint"
    _record(1)
    assert tasks.audit_checkpoint() is not None
    _record(1)
    call_command("audit_checkpoint")
    assert "checkpoint-000000000002-" in capsys.readouterr().out
    assert len(list(settings.AUDIT_CHECKPOINT_DIR.glob("checkpoint-*.json"))) == 2


# --- The command's report ------------------------------------------------------------------


def test_audit_verify_command_exit_codes(capsys):
    events = _record(3)
    call_command("audit_verify")
    out = capsys.readouterr().out
    assert "3 events verified" in out and "no signed checkpoint" in out
    _tamper("UPDATE governance_auditevent SET object_id = 'z' WHERE id = %s", [events[0].pk])
    with pytest.raises(CommandError, match=r"BROKEN at event sequence=1 .*'object_id'"):
        call_command("audit_verify")


def test_audit_verify_exits_non_zero_from_the_shell():
    """The command's exit status is what cron jobs and CI read."""
    from django.core.management import execute_from_command_line

    events = _record(2)
    _tamper("UPDATE governance_auditevent SET object_id = 'z' WHERE id = %s", [events[1].pk])
    with pytest.raises(SystemExit) as exc:
        execute_from_command_line(["manage.py", "audit_verify"])
    assert exc.value.code != 0


# --- The database refuses (point 8) --------------------------------------------------------


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="the triggers under test are PostgreSQL's"
)
def test_postgres_refuses_update_delete_and_truncate():
    event = _record(1)[0]
    for sql in (
        "UPDATE governance_auditevent SET action = 'x' WHERE id = %s",
        "DELETE FROM governance_auditevent WHERE id = %s",
        "TRUNCATE governance_auditevent",
        "TRUNCATE governance_auditanchor",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [event.pk] if "%s" in sql else None)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    # Maintenance (prune) may delete, never update.
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        audit_maintenance(),
    ):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    assert AuditEvent.objects.get(pk=event.pk).action == "test.thing"


@pytest.mark.skipif("connection.vendor != 'sqlite'", reason="the triggers under test are SQLite's")
def test_sqlite_refuses_update_and_delete():
    event = _record(1)[0]
    with pytest.raises((DatabaseError, IntegrityError), match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises((DatabaseError, IntegrityError), match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.thing"


def test_maintenance_allows_delete_only_inside_it():
    event = _record(1)[0]
    with transaction.atomic(), audit_maintenance():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert not AuditEvent.objects.exists()
    _record(1)
    with pytest.raises((DatabaseError, IntegrityError), match="append-only"), transaction.atomic():
        AuditEvent.objects.all().delete()


# --- Start-up refuses unsafe settings ------------------------------------------------------


def _django_setup(**env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUDIT_")}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "rlhf_platform.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


GOOD_KEY = "kid1:" + base64.b64encode(b"s" * 32).decode()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "0", "SECRET_KEY": "x"}, "AUDIT_HMAC_KEYS is not set"),
        ({"DEBUG": "0", "SECRET_KEY": "x", "AUDIT_HMAC_KEYS": "kid1:c2hvcnQ="}, "at least 32"),
        ({"DEBUG": "1", "AUDIT_HMAC_KEYS": "bad id:" + "A" * 44}, "key id 'bad id'"),
        ({"DEBUG": "1", "AUDIT_RETENTION_DAYS": "30"}, "below the legal minimum of 183"),
    ],
)
def test_start_up_refuses_unsafe_audit_settings(env, message):
    result = _django_setup(**env)
    assert result.returncode != 0 and message in result.stderr


def test_production_starts_with_a_key_and_development_generates_one(tmp_path):
    from cryptography.fernet import Fernet

    fernet = Fernet.generate_key().decode()
    production = {"DEBUG": "0", "SECRET_KEY": "x", "AUDIT_HMAC_KEYS": GOOD_KEY}
    result = _django_setup(**production, FIELD_ENCRYPTION_KEYS=fernet)
    assert result.returncode == 0, result.stderr
    # Production refuses to start without a field-encryption key too.
    refused = _django_setup(**production, FIELD_ENCRYPTION_KEYS="")
    assert refused.returncode != 0 and "FIELD_ENCRYPTION_KEYS is not set" in refused.stderr
    result = _django_setup(DEBUG="1", ATTUNE_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    key_id, _, secret = (tmp_path / "audit_hmac_keys").read_text().partition(":")
    assert key_id == "dev" and len(base64.b64decode(secret)) == 32
    assert Fernet((tmp_path / "field_encryption_keys").read_text().strip().encode())


# --- Retention, archive, prune (point 10) --------------------------------------------------


def _record_at(when: dt.datetime, n: int, monkeypatch) -> list[AuditEvent]:
    """Events written as if at ``when`` (the clock is the one thing a test cannot wait for)."""
    with monkeypatch.context() as patch:
        patch.setattr(timezone, "now", lambda: when)
        return _record(n)


def _verify_offline(*files: Path) -> subprocess.CompletedProcess:
    """`manage.py audit_archive_verify` with the key and no reachable database."""
    from django.conf import settings

    keys = ",".join(
        f"{kid}:{base64.b64encode(secret).decode()}"
        for kid, secret in settings.AUDIT_HMAC_KEYS.items()
    )
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "offline",
        "AUDIT_HMAC_KEYS": keys,
        # Production settings refuse to start without it (the command never uses it).
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/none",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "audit_archive_verify", *map(str, files)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_archive_is_signed_and_verifies_offline(settings):
    _record(3)
    anchor = audit_archive_export()
    assert (anchor.first_sequence, anchor.last_sequence, anchor.count) == (1, 3, 3)
    manifest = settings.AUDIT_ARCHIVE_DIR / anchor.file_name.replace(".jsonl", ".manifest.json")
    document = json.loads(manifest.read_text())
    assert document["first_prev_hash"] == GENESIS_HASH
    assert document["last_hash"] == AuditEvent.objects.get(sequence=3).hash
    assert AuditEvent.objects.filter(action="audit.archive").count() == 1
    result = _verify_offline(manifest)
    assert result.returncode == 0 and "archive OK: 3 events" in result.stdout, result.stderr
    # The next archive continues where this one ended; together they still verify.
    _record(1)
    second = audit_archive_export()
    assert second.first_sequence == 4
    result = _verify_offline(settings.AUDIT_ARCHIVE_DIR / second.file_name, manifest)
    assert result.returncode == 0, result.stderr


def test_edited_archive_is_found_offline(settings):
    _record(3)
    anchor = audit_archive_export()
    path = settings.AUDIT_ARCHIVE_DIR / anchor.file_name
    path.write_text(path.read_text().replace('"i\\":1', '"i\\":7'))
    result = _verify_offline(path)
    assert result.returncode != 0 and "SHA-256 differs" in result.stderr


def test_prune_deletes_only_old_archived_events_and_the_chain_still_verifies(monkeypatch):
    old = timezone.now() - dt.timedelta(days=200)
    _record_at(old, 3, monkeypatch)
    assert audit_prune().deleted == 0  # not archived yet: nothing may go
    audit_archive_export()  # 1..3 archived; event 4 is its audit.archive event
    _record(2)
    result = audit_prune()
    assert (result.through_sequence, result.deleted) == (3, 3)
    assert list(AuditEvent.objects.values_list("sequence", flat=True)) == [4, 5, 6, 7]
    assert AuditEvent.objects.get(sequence=7).action == "audit.prune"
    report = audit_chain_verify()
    assert report.ok and report.checked == 4, report.first_break
    # Without the signed archive anchor the pruned start reads as deleted events.
    with transaction.atomic(), audit_maintenance():
        AuditAnchor.objects.all().delete()
    brk = _break()
    assert brk.sequence == 1 and "missing" in brk.reason


def test_prune_refuses_younger_events(monkeypatch):
    _record_at(timezone.now() - dt.timedelta(days=100), 3, monkeypatch)
    audit_archive_export()
    assert audit_prune().deleted == 0  # archived, but only 100 days old
    with pytest.raises(ValueError, match="younger than AUDIT_RETENTION_DAYS"):
        audit_prune(older_than_days=30)
    with pytest.raises(CommandError, match="younger than AUDIT_RETENTION_DAYS"):
        call_command("audit_prune", "--older-than-days", "90")
    assert AuditEvent.objects.count() == 4


def test_prune_refuses_when_the_archive_file_does_not_verify(settings, monkeypatch):
    _record_at(timezone.now() - dt.timedelta(days=400), 2, monkeypatch)
    anchor = audit_archive_export()
    (settings.AUDIT_ARCHIVE_DIR / anchor.file_name).unlink()
    with pytest.raises(ValueError, match="archive does not verify"):
        audit_prune()
    assert AuditEvent.objects.count() == 3


def test_archive_refuses_a_broken_chain():
    events = _record(2)
    _tamper("UPDATE governance_auditevent SET action = 'x' WHERE id = %s", [events[0].pk])
    with pytest.raises(CommandError, match="does not verify at sequence=1"):
        call_command("audit_archive")
    assert not AuditAnchor.objects.exists()


# --- Reading the trail ---------------------------------------------------------------------


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


# --- Events written before the chain was keyed ---------------------------------------------


def _legacy_chain(n: int) -> None:
    """Unsigned events as the pre-HMAC code wrote them (SHA-256 links, no canonical text)."""
    prev = GENESIS_HASH
    for i in range(1, n + 1):
        digest = hashlib.sha256(f"{prev}{i}".encode()).hexdigest()
        AuditEvent.objects.create(
            sequence=i, timestamp=timezone.now(), action="legacy.thing", object_id=str(i),
            after={"z": -0.0, "a": 1e16}, prev_hash=prev, hash=digest,
        )  # fmt: skip
        prev = digest


def _seal_legacy_events() -> None:
    """Run the migration step that seals unsigned events, as `migrate` does."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module(
        "governance.migrations.0005_audit_append_only_truncate_and_legacy_seal"
    )
    # The step only reads the editor's connection (a real editor cannot open inside a test's
    # transaction on SQLite).
    migration.legacy_events_seal(apps, SimpleNamespace(connection=connection))


def test_unsigned_events_are_sealed_by_the_migration_and_verified():
    _legacy_chain(3)
    _seal_legacy_events()
    _record(2)
    assert AuditEvent.objects.get(sequence=4).prev_hash == AuditEvent.objects.get(sequence=3).hash
    report = audit_chain_verify()
    assert report.ok and (report.checked, report.legacy) == (5, 3), report.first_break
    _tamper("UPDATE governance_auditevent SET action = 'legacy.other' WHERE sequence = 2")
    brk = _break()
    assert brk.sequence == 3 and "no longer match the digest sealed" in brk.reason


def test_unsigned_event_outside_the_seal_is_found():
    # Downgrading a signed event to the unsigned form (to rewrite it without the key).
    _legacy_chain(2)
    _seal_legacy_events()
    events = _record(2)
    _tamper("UPDATE governance_auditevent SET canonical = '' WHERE id = %s", [events[1].pk])
    brk = _break()
    assert brk.sequence == 4 and "outside the sealed legacy range" in brk.reason
