"""Encrypt what 0005 declared sensitive in the rows that already exist; reversible.

- ``Adjudication.reason`` and ``Assignment.skip_reason``: each clear-text value becomes a
  Fernet token (``rlhf_platform.crypto``); backwards, each token becomes clear text again.
- ``Annotation.answer``: the answers to sensitive text questions (every ``text`` question
  of schemas written before ``purpose``/``sensitive`` existed counts as a rationale) move
  to the encrypted ``answer_private``; backwards they move back into ``answer``.
- Projects already archived start their archive-retention clock now.

Values are read and written raw (cast to plain text), so neither direction passes clear
text through ``EncryptedTextField`` twice.  Work goes in batches by primary key.
"""

import json

from django.db import migrations, models
from django.db.models import Value
from django.db.models.functions import Cast
from django.utils import timezone

from rlhf_platform.crypto import FieldDecryptionError, secret_decrypt, secret_encrypt

BATCH = 1000


def _raw(name):
    return Cast(name, output_field=models.TextField())


def _token(text):
    return Value(text, output_field=models.TextField())


def _is_token(value):
    try:
        secret_decrypt(token=value)
    except FieldDecryptionError:
        return False
    return True


def _encrypt(text):
    """A token for clear text; None (left alone) for a value that already is one, so
    running forwards twice never encrypts twice."""
    return None if _is_token(text) else secret_encrypt(text=text)


def _decrypt(value):
    return secret_decrypt(token=value) if _is_token(value) else None


def _convert_column(model, field, convert):
    """Rewrite every non-empty raw value of ``field`` through ``convert`` (None: keep)."""
    last = 0
    while True:
        rows = list(
            model.objects.filter(pk__gt=last)
            .exclude(**{field: ""})
            .order_by("pk")
            .values_list("pk", _raw(field))[:BATCH]
        )
        if not rows:
            return
        for pk, value in rows:
            converted = convert(value)
            if converted is not None:
                model.objects.filter(pk=pk).update(**{field: _token(converted)})
        last = rows[-1][0]


def _sensitive_questions(question_schema):
    return {
        q["name"]
        for q in (question_schema or {}).get("questions", [])
        if q.get("type") == "text" and q.get("sensitive", True)
    }


def encrypt_rows(apps, schema_editor):
    Adjudication = apps.get_model("annotation", "Adjudication")
    Assignment = apps.get_model("annotation", "Assignment")
    Annotation = apps.get_model("annotation", "Annotation")
    Project = apps.get_model("annotation", "Project")
    _convert_column(Adjudication, "reason", _encrypt)
    _convert_column(Assignment, "skip_reason", _encrypt)
    for project_id, question_schema in Project.objects.values_list("pk", "question_schema"):
        sensitive = _sensitive_questions(question_schema)
        if not sensitive:
            continue
        last = 0
        while True:
            rows = list(
                Annotation.objects.filter(project_id=project_id, pk__gt=last)
                .order_by("pk")
                .values_list("pk", "answer")[:BATCH]
            )
            if not rows:
                break
            for pk, answer in rows:
                private = {k: v for k, v in answer.items() if k in sensitive and v}
                if not private and not (sensitive & set(answer)):
                    continue
                public = {k: v for k, v in answer.items() if k not in sensitive}
                token = secret_encrypt(text=json.dumps(private, ensure_ascii=False))
                Annotation.objects.filter(pk=pk).update(
                    answer=public, answer_private=_token(token if private else "")
                )
            last = rows[-1][0]
    Project.objects.filter(status="archived", archived_at__isnull=True).update(
        archived_at=timezone.now()
    )


def decrypt_rows(apps, schema_editor):
    Adjudication = apps.get_model("annotation", "Adjudication")
    Assignment = apps.get_model("annotation", "Assignment")
    Annotation = apps.get_model("annotation", "Annotation")
    _convert_column(Adjudication, "reason", _decrypt)
    _convert_column(Assignment, "skip_reason", _decrypt)
    last = 0
    while True:
        rows = list(
            Annotation.objects.filter(pk__gt=last)
            .exclude(answer_private="")
            .order_by("pk")
            .values_list("pk", "answer", _raw("answer_private"))[:BATCH]
        )
        if not rows:
            return
        for pk, answer, token in rows:
            private = json.loads(secret_decrypt(token=token))
            Annotation.objects.filter(pk=pk).update(
                answer={**answer, **private}, answer_private=_token("")
            )
        last = rows[-1][0]


class Migration(migrations.Migration):
    dependencies = [("annotation", "0005_data_protection")]

    operations = [migrations.RunPython(encrypt_rows, decrypt_rows)]
