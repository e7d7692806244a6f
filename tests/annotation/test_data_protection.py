"""Data protection: PII redaction on import (counted, never kept), encrypted rationales and
reasons, pseudonymous exports — checked by reading the raw tables and the exported files."""

from __future__ import annotations

import hmac
import io
import json
from hashlib import sha256

import pyarrow.parquet as pq
import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.db.models import Value
from django.db.models.fields import TextField
from django.test import override_settings

from annotation import exports, services
from annotation.consensus import consensus_recompute
from annotation.importers.redaction import DETECTORS, Redactor
from annotation.models import Adjudication, Annotation, Assignment, ImportJob, Item
from governance.models import AuditEvent

pytestmark = pytest.mark.django_db

# Personal data planted in imported items; none of it may reach the database.
PII = {
    "email": "jane.doe@example.org",
    "phone": "(415) 555-2671",
    "card": "4111 1111 1111 1111",
    "us_ssn": "123-45-6789",
    "uk_nino": "AB 12 34 56 C",
    "iban": "GB82 WEST 1234 5698 7654 32",
}
# What annotators and reviewers write: stored only encrypted.
RATIONALE = "B cites my neighbour Bartholomew Quist directly"
SKIP_REASON = "I know the author personally, Zebedee Marchbank"
ADJUDICATION_REASON = "Reviewer note: Ottoline Vashti agreed on the call"


def _pii_rows(n: int) -> list[dict]:
    return [
        {
            "external_id": f"pii-{i}",
            "prompt": f"Write to {PII['email']} or call {PII['phone']} about order {i}.",
            "responses": [
                f"Card {PII['card']}, SSN {PII['us_ssn']}.",
                f"NINO {PII['uk_nino']}, IBAN {PII['iban']}, order 1234567890123.",
            ],
            "metadata": {"source": {"contact": PII["email"]}},
        }
        for i in range(n)
    ]


def _raw_database_text() -> str:
    """Every cell of every table, as the database stores it (no model code involved)."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


# -- the detectors ----------------------------------------------------------------------


def test_each_detector_replaces_its_kind_with_a_typed_placeholder_and_counts_it():
    redactor = Redactor(DETECTORS)
    text = redactor.text(
        "Mail jane.doe@example.org, call +44 20 7946 0958 or (415) 555-2671; card "
        "4111-1111-1111-1111; SSN 123-45-6789; NINO AB123456C; IBAN DE89370400440532013000."
    )
    assert text == (
        "Mail [EMAIL], call [PHONE] or [PHONE]; card [CARD]; SSN [US_SSN]; NINO [UK_NINO]; "
        "IBAN [IBAN]."
    )
    assert dict(redactor.counts) == {
        "email": 1, "phone": 2, "card": 1, "us_ssn": 1, "uk_nino": 1, "iban": 1,
    }  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "Order 4111111111111112 shipped",  # 16 digits, Luhn fails
        "Invoice 1234567890123 paid",  # 13 digits, no issuer prefix, Luhn fails
        "In 2024 we sold 3,500 units at 19.99",
        "SSN-like 000-12-3456 and 666-12-3456 are never issued",
        "Reference GB00 WEST 1234 5698 7654 32 has a bad check",  # IBAN mod-97 fails
        "Version 1.2.3 released on 2026-12-01",
        "QQ 12 34 56 C is not a valid NINO prefix",
    ],
)
def test_numbers_that_only_look_like_personal_data_are_left_alone(text):
    redactor = Redactor(DETECTORS)
    assert redactor.text(text) == text
    assert not redactor.counts


def test_only_the_chosen_detectors_run():
    redactor = Redactor(["email"])
    assert redactor.text("a@b.org 4111 1111 1111 1111") == "[EMAIL] 4111 1111 1111 1111"
    assert dict(redactor.counts) == {"email": 1}
    with pytest.raises(ValueError, match="unknown PII detector"):
        Redactor(["email", "passport"])


# -- imports ----------------------------------------------------------------------------


def test_an_import_stores_placeholders_and_counts_what_it_redacted(project):
    result = services.items_create_bulk(project=project, rows=_pii_rows(3))
    assert result.created == 3
    assert result.redactions == {
        "card": 3, "email": 6, "iban": 3, "phone": 3, "uk_nino": 3, "us_ssn": 3,
    }  # fmt: skip
    item = Item.objects.get(project=project, external_id="pii-0")
    assert item.prompt == "Write to [EMAIL] or call [PHONE] about order 0."
    assert item.responses[0]["text"] == "Card [CARD], SSN [US_SSN]."
    assert item.responses[1]["text"] == "NINO [UK_NINO], IBAN [IBAN], order 1234567890123."
    assert item.metadata == {"source": {"contact": "[EMAIL]"}}
    # The import's audit event carries the counts, not the text.
    event = AuditEvent.objects.filter(action="items.import").latest("sequence")
    assert event.after["redactions"]["email"] == 6
    raw = _raw_database_text()
    for value in PII.values():
        assert value not in raw


def test_a_project_without_detectors_imports_text_unchanged(rosa):
    project = services.project_create(created_by=rosa, name="Raw", pii_detectors=[])
    result = services.items_create_bulk(project=project, rows=_pii_rows(1))
    assert result.redactions == {}
    assert PII["email"] in Item.objects.get(project=project).prompt


def test_a_background_import_job_reports_its_redaction_counts(project, rosa, api_as):
    upload = io.BytesIO(("\n".join(json.dumps(r) for r in _pii_rows(2)) + "\n").encode())
    upload.name = "pii.jsonl"
    job = services.import_job_create(project=project, user=rosa, file=upload, fmt="jsonl")
    services.import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.redactions["email"] == 4
    body = api_as(rosa).get(f"/api/annotation/import-jobs/{job.pk}/").json()
    assert body["redactions"] == {
        "card": 2, "email": 4, "iban": 2, "phone": 2, "uk_nino": 2, "us_ssn": 2,
    }  # fmt: skip


def test_the_import_api_answers_the_redaction_counts(project, rosa, api_as):
    upload = io.BytesIO(("\n".join(json.dumps(r) for r in _pii_rows(1)) + "\n").encode())
    upload.name = "pii.jsonl"
    response = api_as(rosa).post(
        f"/api/annotation/projects/{project.pk}/import/",
        {"file": upload, "format": "jsonl"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["redactions"]["iban"] == 1


# -- settings ---------------------------------------------------------------------------


def test_new_projects_redact_everything_by_default(project):
    assert project.pii_detectors == list(DETECTORS)
    assert project.retention_days is None and project.archive_retention_days is None


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"pii_detectors": ["email", "passport"]}, "pii_detectors", "passport"),
        ({"pii_detectors": "email"}, "pii_detectors", "list"),
        ({"retention_days": 0}, "retention_days", "1"),
        ({"retention_days": "soon"}, "retention_days", "integer"),
        ({"archive_retention_days": 100000}, "archive_retention_days", "36500"),
    ],
)
def test_bad_data_protection_settings_answer_400_naming_the_field(
    project, rosa, api_as, body, field, reason
):
    response = api_as(rosa).patch(f"/api/annotation/projects/{project.pk}/", body)
    assert response.status_code == 400, response.content
    fields = response.json()["error"]["fields"]
    name = next(k for k in fields if k.startswith(field))
    assert reason in " ".join(fields[name])


def test_settings_change_through_the_api_and_are_audited(project, rosa, api_as):
    response = api_as(rosa).patch(
        f"/api/annotation/projects/{project.pk}/",
        {"pii_detectors": ["email", "phone"], "retention_days": 90},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["pii_detectors"] == ["email", "phone"] and body["retention_days"] == 90
    assert body["legal_hold"] is False
    event = AuditEvent.objects.filter(action="project.update").latest("sequence")
    assert event.after == {"pii_detectors": ["email", "phone"], "retention_days": 90}
    # A legal hold is not the API's to set.
    api_as(rosa).patch(f"/api/annotation/projects/{project.pk}/", {"legal_hold": True})
    project.refresh_from_db()
    assert project.legal_hold is False


def test_the_dashboard_form_saves_settings_and_shows_errors(client, password, project, rosa):
    client.login(username=rosa.username, password=password)
    url = f"/annotation/projects/{project.pk}/data-protection/"
    response = client.post(url, {"pii_detectors": ["card"], "retention_days": "30"})
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.pii_detectors == ["card"] and project.retention_days == 30
    response = client.post(url, {"pii_detectors": ["card"], "retention_days": "-3"})
    assert response.status_code == 400
    assert "greater than or equal to 1" in response.content.decode()
    page = client.get(f"/annotation/projects/{project.pk}/").content.decode()
    assert 'data-testid="data-protection"' in page


def test_rationales_cannot_be_declared_not_sensitive(rosa):
    from django.core.exceptions import ValidationError

    schema = {"questions": [{"name": "p", "type": "pairwise"},
                            {"name": "why", "type": "text", "sensitive": False}]}  # fmt: skip
    with pytest.raises(ValidationError) as exc:
        services.project_create(created_by=rosa, name="x", question_schema=schema)
    assert "question_schema.questions[1].sensitive" in exc.value.message_dict


# -- encryption at rest and exports --------------------------------------------------------


@pytest.fixture
def protected(rosa, anna, ben, rex):
    """A project with a rationale, a plain comment and a sensitive comment; PII items;
    answers from anna and ben (rationales name people), a skip and an adjudication."""
    schema = {
        "questions": [
            {"name": "preference", "type": "pairwise"},
            {"name": "rationale", "type": "text"},
            {"name": "suggestion", "type": "text", "purpose": "comment"},
            {"name": "private_note", "type": "text", "purpose": "comment", "sensitive": True},
        ]
    }
    project = services.project_create(
        created_by=rosa, name="Protected", question_schema=schema, overlap=2
    )
    for user in (anna, ben):
        services.project_member_add(project=project, user=user, role="annotator")
    services.project_member_add(project=project, user=rex, role="reviewer")
    services.items_create_bulk(project=project, rows=_pii_rows(3))
    for user in (anna, ben):
        for _ in range(2):
            assignment = services.assignment_next(project=project, annotator=user)
            services.annotation_submit(
                project=project,
                item_id=assignment.item_id,
                annotator=user,
                answer={
                    "preference": {"choice": "A" if user == anna else "B"},
                    "rationale": f"{RATIONALE}; mail him at bart@quist.example",
                    "suggestion": "shorter please",
                    "private_note": "Annotator Wilhelmina Frost, my phone +44 20 7946 0958",
                },
                idempotency_key=f"{user.pk}-{assignment.item_id}",
            )
    assignment = services.assignment_next(project=project, annotator=anna)
    services.assignment_skip(
        project=project, item_id=assignment.item_id, annotator=anna, reason=SKIP_REASON
    )
    services.adjudication_record(
        project=project,
        item_id=Item.objects.filter(project=project).order_by("pk").first().pk,
        reviewer=rex,
        answer={"preference": {"choice": "A"}},
        reason=ADJUDICATION_REASON,
    )
    consensus_recompute(project=project)
    return project


SECRETS = (
    "Bartholomew Quist",
    "bart@quist.example",
    "Zebedee Marchbank",
    "Ottoline Vashti",
    "Wilhelmina Frost",
    *PII.values(),
)


def test_nothing_sensitive_is_stored_in_clear_text(protected, anna):
    raw = _raw_database_text()
    for secret in SECRETS:
        assert secret not in raw, secret
    # The plain comment is not sensitive: it stays readable (and searchable) in the table.
    assert "shorter please" in raw
    # The model reads everything back in clear text.
    annotation = Annotation.objects.filter(project=protected, annotator=anna).first()
    assert annotation.full_answer["rationale"].startswith(RATIONALE)
    assert annotation.full_answer["private_note"].startswith("Annotator Wilhelmina")
    assert annotation.answer == {"preference": {"choice": "A"}, "suggestion": "shorter please"}
    assert Assignment.objects.get(project=protected, status="skipped").skip_reason == SKIP_REASON
    assert Adjudication.objects.get(project=protected).reason == ADJUDICATION_REASON
    # The raw columns hold Fernet tokens.
    with connection.cursor() as cursor:
        cursor.execute("SELECT reason FROM annotation_adjudication")
        (token,) = cursor.fetchone()
    assert token.startswith("gAAAAA")


def test_the_review_page_and_the_api_read_the_decrypted_text(
    protected, client, password, rex, anna, api_as
):
    client.login(username=rex.username, password=password)
    item = Adjudication.objects.get(project=protected).item
    page = client.get(f"/annotation/projects/{protected.pk}/review/{item.pk}/").content.decode()
    assert RATIONALE in page and ADJUDICATION_REASON in page


def _export_text(snapshot) -> str:
    with snapshot.file.open("rb") as handle:
        data = handle.read()
    if snapshot.format == "parquet":
        return json.dumps(pq.read_table(io.BytesIO(data)).to_pylist())
    return data.decode("utf-8")


@pytest.mark.parametrize("fmt", ["trl", "parquet", "csv", "label_studio", "argilla"])
def test_exports_hold_pseudonyms_and_no_personal_data(protected, rosa, anna, ben, fmt):
    snapshot = exports.dataset_export(
        project=protected, fmt=fmt, user=rosa, filters={"include_ties": True}
    )
    text = _export_text(snapshot)
    assert snapshot.row_count > 0
    for secret in (*SECRETS, anna.username, ben.username, anna.email, ben.email):
        assert secret not in text, (fmt, secret)
    for user in (anna, ben):
        assert f'"{user.pk}"' not in text and f"'{user.pk}'" not in text
    if fmt in ("csv", "label_studio", "argilla"):
        # Per-annotator formats name each annotator by pseudonym only, and keep the
        # answers that are not sensitive.
        assert exports.pseudonym(protected, anna.pk) in text
        assert exports.pseudonym(protected, ben.pk) in text
        assert "shorter please" in text and "rationale" not in text


@pytest.mark.parametrize("fmt", ["csv", "label_studio", "argilla"])
def test_sensitive_text_is_exported_only_when_asked_and_then_redacted(protected, rosa, anna, fmt):
    snapshot = exports.dataset_export(
        project=protected, fmt=fmt, user=rosa, filters={"include_sensitive_text": True}
    )
    text = _export_text(snapshot)
    # Decrypted for the export, with the personal data an annotator typed redacted
    # (detectors find contact data and numbers, not names: the README says so).
    assert "mail him at [EMAIL]" in text and "my phone [PHONE]" in text
    assert RATIONALE in text
    for secret in ("bart@quist.example", "+44 20 7946 0958", anna.username, *PII.values()):
        assert secret not in text
    event = AuditEvent.objects.get(action="dataset.export", object_id=str(snapshot.pk))
    assert event.after["filters"]["include_sensitive_text"] is True


def test_pseudonyms_are_stable_per_project_and_need_the_server_key(protected, project, anna):
    first = exports.pseudonym(protected, anna.pk)
    assert first == exports.pseudonym(protected, anna.pk)
    assert first.startswith("ann-") and len(first) == 20
    assert anna.username not in first and str(anna.pk) != first[4:]
    # Another project: another pseudonym (not linkable across projects).
    assert exports.pseudonym(project, anna.pk) != first
    # Knowing the database (the project's salt) is not enough to recompute it.
    salt_only = hmac.new(protected.pseudonym_key.encode(), str(anna.pk).encode(), sha256)
    assert "ann-" + salt_only.hexdigest()[:16] != first
    with override_settings(PSEUDONYM_KEY="another-server-key"):
        assert exports.pseudonym(protected, anna.pk) != first


def test_adjudication_audit_events_carry_no_reason(protected):
    event = AuditEvent.objects.get(action="item.adjudicate")
    assert "reason" not in event.after and ADJUDICATION_REASON not in event.canonical


def test_the_encryption_migration_encrypts_existing_rows_and_reverses(protected, anna):
    """0006 on rows written in clear text (as before it), then backwards."""
    import importlib

    migration = importlib.import_module("annotation.migrations.0006_data_protection_encrypt")
    plain = Value("an old clear reason", output_field=TextField())
    Adjudication.objects.filter(project=protected).update(reason=plain)
    annotation = Annotation.objects.filter(project=protected, annotator=anna).first()
    Annotation.objects.filter(pk=annotation.pk).update(
        answer={"preference": {"choice": "A"}, "rationale": "old clear rationale"},
        answer_private=Value("", output_field=TextField()),
    )
    migration.encrypt_rows(django_apps, None)
    raw = _raw_database_text()
    assert "an old clear reason" not in raw and "old clear rationale" not in raw
    annotation.refresh_from_db()
    assert annotation.full_answer["rationale"] == "old clear rationale"
    assert "rationale" not in annotation.answer
    assert Adjudication.objects.get(project=protected).reason == "an old clear reason"
    migration.decrypt_rows(django_apps, None)
    raw = _raw_database_text()
    assert "an old clear reason" in raw and "old clear rationale" in raw
    assert SKIP_REASON in raw  # every encrypted row went back to clear text
    # ...and forwards again leaves nothing in clear text.
    migration.encrypt_rows(django_apps, None)
    assert SKIP_REASON not in _raw_database_text()
    assert ImportJob.objects.count() == 0
