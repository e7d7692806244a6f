"""`manage.py field_encryption_rotate` end to end on real rows: written under key A, keys
become [B, A], rotate, keys become [B] — everything still reads, the raw columns hold no
clear text, and nothing decrypts under A alone any more."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from annotation import services
from annotation.models import Adjudication, Annotation, Assignment, Item
from rlhf_platform.crypto import FieldDecryptionError

pytestmark = pytest.mark.django_db

KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()
RATIONALE = "rationale naming Perpetua Holloway"
SKIP = "skip reason naming Octavius Brandt"
REASON = "adjudication naming Isolde Fairweather"


def _raw(table: str, column: str) -> list[str]:
    """The column's stored values, read with SQL (no model code)."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote(column)} FROM {quote(table)} WHERE {quote(column)} <> ''")  # noqa: S608 -- our own table names
        return [row[0] for row in cursor.fetchall()]


def _tokens() -> dict[str, list[str]]:
    return {
        "answer_private": _raw("annotation_annotation", "answer_private"),
        "skip_reason": _raw("annotation_assignment", "skip_reason"),
        "reason": _raw("annotation_adjudication", "reason"),
    }


def test_rotation_moves_every_sensitive_value_to_the_new_key(rosa, anna, rex):
    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY_A]):
        project = services.project_create(created_by=rosa, name="Rotate", overlap=1)
        services.project_member_add(project=project, user=anna, role="annotator")
        services.items_create_bulk(
            project=project,
            rows=[{"external_id": f"r{i}", "prompt": f"p{i}", "responses": ["a", "b"]}
                  for i in range(3)],
        )  # fmt: skip
        for i in range(2):
            assignment = services.assignment_next(project=project, annotator=anna)
            services.annotation_submit(
                project=project, item_id=assignment.item_id, annotator=anna,
                answer={"preference": {"choice": "A"}, "rationale": f"{RATIONALE} {i}"},
                idempotency_key=f"k{i}",
            )  # fmt: skip
        assignment = services.assignment_next(project=project, annotator=anna)
        services.assignment_skip(
            project=project, item_id=assignment.item_id, annotator=anna, reason=SKIP
        )
        services.adjudication_record(
            project=project, item_id=Item.objects.filter(project=project).first().pk,
            reviewer=rex, answer={"preference": {"choice": "B"}}, reason=REASON,
        )  # fmt: skip
        before = _tokens()
    assert [len(v) for v in before.values()] == [2, 1, 1]

    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY_B, KEY_A]):
        out = io.StringIO()
        call_command("field_encryption_rotate", stdout=out)
        assert "annotation.Annotation.answer_private: 2 re-encrypted" in out.getvalue()
        assert "annotation.Assignment.skip_reason: 1 re-encrypted" in out.getvalue()
        assert "annotation.Adjudication.reason: 1 re-encrypted" in out.getvalue()
    after = _tokens()
    for column, tokens in after.items():
        assert set(tokens).isdisjoint(before[column]), column

    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY_B]):
        texts = sorted(a.full_answer["rationale"] for a in Annotation.objects.all())
        assert texts == [f"{RATIONALE} 0", f"{RATIONALE} 1"]
        assert Assignment.objects.get(status="skipped").skip_reason == SKIP
        assert Adjudication.objects.get().reason == REASON
    # The raw columns hold tokens only.
    for tokens in after.values():
        for token in tokens:
            assert token.startswith("gAAAAA")
            for secret in ("Perpetua", "Octavius", "Isolde"):
                assert secret not in token
    # Key A alone no longer opens anything: the old key can be dropped.
    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY_A]), pytest.raises(FieldDecryptionError):
        Adjudication.objects.get().reason  # noqa: B018
