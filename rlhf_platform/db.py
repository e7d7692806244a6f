"""Bulk writes that stay fast at millions of rows on PostgreSQL and correct on SQLite.

PostgreSQL: rows are streamed with COPY into a temporary table, then merged with one
``INSERT ... SELECT ... ON CONFLICT``.  SQLite: Django's ``bulk_create`` with the same
conflict handling.  Both run in the caller's transaction (a savepoint there; their own
transaction when the caller has none, which PostgreSQL's ``ON COMMIT DROP`` table needs).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction
from django.db.models import JSONField, Model

_json_encode = json.JSONEncoder(ensure_ascii=False).encode


def _json_copy_value(value: Any) -> Any:
    return None if value is None else _json_encode(value)


def bulk_upsert(
    *,
    model: type[Model],
    rows: Sequence[dict[str, Any]],
    conflict_fields: Sequence[str],
    update_fields: Sequence[str] = (),
) -> int:
    """Insert ``rows`` (dicts of column attname -> value); on a conflict on
    ``conflict_fields`` update ``update_fields``, or skip the row when there are none.

    Returns how many rows were inserted or updated (on SQLite, with ``update_fields``
    empty, how many were given; callers that need exact counts use PostgreSQL's figure).
    """
    if not rows:
        return 0
    columns = list(rows[0].keys())
    if connection.vendor == "sqlite":
        return _sqlite_upsert(model, rows, columns, conflict_fields, update_fields)
    if connection.vendor != "postgresql":
        objs = [model(**row) for row in rows]
        kwargs: dict[str, Any] = {"batch_size": 500}
        if update_fields:
            kwargs |= {
                "update_conflicts": True,
                "unique_fields": conflict_fields,
                "update_fields": update_fields,
            }
        else:
            kwargs |= {"ignore_conflicts": True}
        model.objects.bulk_create(objs, **kwargs)
        return len(rows)

    table = model._meta.db_table
    fields = {f.attname: f for f in model._meta.concrete_fields}
    qn = connection.ops.quote_name
    col_sql = ", ".join(qn(fields[c].column) for c in columns)
    temp = f"_bulk_{table}"
    if update_fields:
        updates = ", ".join(
            f"{qn(fields[c].column)} = EXCLUDED.{qn(fields[c].column)}" for c in update_fields
        )
        on_conflict = f"DO UPDATE SET {updates}"
    else:
        on_conflict = "DO NOTHING"
    conflict_sql = ", ".join(qn(fields[c].column) for c in conflict_fields)
    # In autocommit the temporary table would be dropped at the end of its own statement.
    with transaction.atomic(), connection.cursor() as cursor:
        # Only the given columns, no constraints: the real table's constraints apply on merge.
        cursor.execute(f"DROP TABLE IF EXISTS {qn(temp)}")
        # Identifiers come from model metadata, quoted; no value is formatted into SQL.
        cursor.execute(
            f"CREATE TEMP TABLE {qn(temp)} ON COMMIT DROP AS "  # noqa: S608
            f"SELECT {col_sql} FROM {qn(table)} WITH NO DATA"
        )
        raw = cursor.cursor
        json_columns = [c for c in columns if isinstance(fields[c], JSONField)]
        with raw.copy(f"COPY {qn(temp)} ({col_sql}) FROM STDIN") as copy:
            write_row = copy.write_row
            if json_columns:
                for row in rows:
                    values = dict(row)
                    for c in json_columns:
                        values[c] = _json_copy_value(values[c])
                    write_row([values[c] for c in columns])
            else:
                for row in rows:
                    write_row([row[c] for c in columns])
        cursor.execute(
            f"INSERT INTO {qn(table)} ({col_sql}) SELECT {col_sql} FROM {qn(temp)} "  # noqa: S608
            f"ON CONFLICT ({conflict_sql}) {on_conflict}"
        )
        return cursor.rowcount


def rows_fetch(sql: str, params: Iterable[Any] = ()) -> list[tuple]:
    """Run a read query and return all rows as tuples (no model instances)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


def _sqlite_upsert(model, rows, columns, conflict_fields, update_fields) -> int:
    """One prepared ``INSERT ... ON CONFLICT`` run over all rows with ``executemany``.

    ``bulk_create`` on SQLite splits into statements of at most 999 parameters (under a
    hundred rows here) and builds each in Python; this is several times faster.  Values
    are prepared by their fields where the database needs a conversion (JSON, dates).
    """
    fields = {f.attname: f for f in model._meta.concrete_fields}
    qn = connection.ops.quote_name
    prepare = [
        fields[c] if fields[c].get_internal_type() in _SQLITE_CONVERTED else None for c in columns
    ]
    col_sql = ", ".join(qn(fields[c].column) for c in columns)
    conflict_sql = ", ".join(qn(fields[c].column) for c in conflict_fields)
    if update_fields:
        updates = ", ".join(
            f"{qn(fields[c].column)} = excluded.{qn(fields[c].column)}" for c in update_fields
        )
        on_conflict = f"DO UPDATE SET {updates}"
    else:
        on_conflict = "DO NOTHING"
    placeholders = ", ".join(["%s"] * len(columns))
    # Identifiers come from model metadata, quoted; values go as parameters.
    sql = (
        f"INSERT INTO {qn(model._meta.db_table)} ({col_sql}) VALUES ({placeholders}) "  # noqa: S608
        f"ON CONFLICT ({conflict_sql}) {on_conflict}"
    )
    params = [
        [
            row[c] if f is None else f.get_db_prep_save(row[c], connection)
            for c, f in zip(columns, prepare, strict=True)
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
    return len(rows)


_SQLITE_CONVERTED = {"JSONField", "DateTimeField", "DateField", "DecimalField", "UUIDField"}
