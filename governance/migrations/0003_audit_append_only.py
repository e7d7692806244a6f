"""Make the audit table append-only in the database itself.

PostgreSQL: a trigger rejects every UPDATE and DELETE (TRUNCATE stays possible for the
table's owner, which test-database flushes need; it is not an application path).
SQLite: a trigger rejects UPDATE (DELETE must stay possible there because Django's test
flush empties tables with DELETE).  audit_verify catches what the database lets through.
"""

from django.db import migrations

PG_FORWARD = """
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
PG_BACKWARD = """
DROP TRIGGER IF EXISTS governance_auditevent_no_update_delete ON governance_auditevent;
DROP FUNCTION IF EXISTS governance_auditevent_append_only();
"""
SQLITE_FORWARD = """
CREATE TRIGGER IF NOT EXISTS governance_auditevent_no_update
BEFORE UPDATE ON governance_auditevent
BEGIN
    SELECT RAISE(ABORT, 'governance_auditevent is append-only: UPDATE refused');
END;
"""
SQLITE_BACKWARD = "DROP TRIGGER IF EXISTS governance_auditevent_no_update;"


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_FORWARD)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("governance", "0002_roles")]
    operations = [migrations.RunPython(forward, backward)]
