"""Refuse UPDATE, DELETE and TRUNCATE on the audit tables, and seal the unsigned events.

The triggers refuse every UPDATE; DELETE and TRUNCATE only inside
``governance.audit.audit_maintenance`` — the prune service and the test suite's flush — which
sets ``attune.audit_maintenance`` for one transaction (PostgreSQL) or makes the
``attune_audit_maintenance()`` SQL function that each Django connection registers answer 1
(SQLite; any other client lacks the function, so its DELETE fails).  This guards against the
application's own mistakes; against a person with SQL access it is the HMAC key and the
checkpoints that detect, and separate database roles that prevent (README, "Audit").

SQLite drops a table's triggers when a migration rebuilds the table: a later migration that
alters these tables on SQLite must create them again (``SQLITE_FORWARD``).

Events written before the chain was keyed (empty ``canonical``) are sealed by one signed
``AuditAnchor`` of kind ``legacy``: their range, last hash and a digest of their content.
"""

import hashlib

from django.db import migrations

TABLES = ("governance_auditevent", "governance_auditanchor")

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION governance_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'UPDATE' AND current_setting('attune.audit_maintenance', true) = 'on' THEN
        RETURN OLD;  -- the row for DELETE; ignored for the statement-level TRUNCATE
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""
PG_TRIGGERS = """
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION governance_audit_append_only();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION governance_audit_append_only();
"""
PG_DROP = """
DROP TRIGGER IF EXISTS {table}_append_only ON {table};
DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};
"""
# 0003's trigger, replaced here (and restored on the way back).
PG_OLD_DROP = """
DROP TRIGGER IF EXISTS governance_auditevent_no_update_delete ON governance_auditevent;
DROP FUNCTION IF EXISTS governance_auditevent_append_only();
"""
PG_OLD_RESTORE = """
CREATE OR REPLACE FUNCTION governance_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'governance_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER governance_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON governance_auditevent
    FOR EACH ROW EXECUTE FUNCTION governance_auditevent_append_only();
"""

SQLITE_FORWARD = (
    "CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} BEGIN "
    "SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END",
    "CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
    "WHEN NOT attune_audit_maintenance() BEGIN "
    "SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END",
)
SQLITE_BACKWARD = (
    "DROP TRIGGER IF EXISTS {table}_no_delete",
    "DROP TRIGGER IF EXISTS governance_auditanchor_no_update",
)


def triggers_create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_OLD_DROP, params=None)
        schema_editor.execute(PG_FUNCTION, params=None)
        for table in TABLES:
            schema_editor.execute(PG_TRIGGERS.format(table=table), params=None)
    elif vendor == "sqlite":
        for table in TABLES:
            for sql in SQLITE_FORWARD:
                schema_editor.execute(sql.format(table=table))


def triggers_drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(PG_DROP.format(table=table), params=None)
        schema_editor.execute("DROP FUNCTION IF EXISTS governance_audit_append_only()", None)
        schema_editor.execute(PG_OLD_RESTORE, params=None)
    elif vendor == "sqlite":
        for table in TABLES:
            for sql in SQLITE_BACKWARD:
                schema_editor.execute(sql.format(table=table))


def legacy_events_seal(apps, schema_editor):
    """Sign the range, last hash and content digest of the events written without a key."""
    from django.utils import timezone

    from governance.audit import document_sign, legacy_row_text, timestamp_text

    AuditEvent = apps.get_model("governance", "AuditEvent")
    AuditAnchor = apps.get_model("governance", "AuditAnchor")
    rows = AuditEvent.objects.using(schema_editor.connection.alias).filter(canonical="")
    digest, first, last, count = hashlib.sha256(), None, None, 0
    for row in rows.order_by("sequence").values().iterator():
        digest.update((legacy_row_text(row) + "\n").encode("utf-8"))
        first, last, count = first or row, row, count + 1
    if first is None:
        return
    document = document_sign(
        {
            "v": 1,
            "kind": "legacy",
            "first_sequence": first["sequence"],
            "last_sequence": last["sequence"],
            "count": count,
            "first_prev_hash": first["prev_hash"],
            "last_hash": last["hash"],
            "content_sha256": digest.hexdigest(),
            "file": "",
            "created_at": timestamp_text(timezone.now()),
        }
    )
    document.pop("v")
    document["file_name"] = document.pop("file")
    AuditAnchor.objects.using(schema_editor.connection.alias).create(**document)


class Migration(migrations.Migration):
    dependencies = [("governance", "0004_audit_keyed_chain")]
    operations = [
        migrations.RunPython(legacy_events_seal, migrations.RunPython.noop),
        migrations.RunPython(triggers_create, triggers_drop),
    ]
