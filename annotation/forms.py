"""HTML forms of the annotation pages, and the question widgets of a project's schema.

The labelling page posts the answer as JSON built by ``static/js/labelling.js``; without
JavaScript (and on the adjudication page) the answer is read from plain inputs named
``q-<question>...`` instead.  Either way ``annotation.schema.answer_validate`` (called by
the services) has the last word, so nothing here decides what a valid answer is.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from rlhf_platform.validation import JSONInputError, json_parse, path_join, text_validate

from . import importers
from .importers.redaction import DETECTORS
from .models import DatasetSnapshot, Project

PAIRWISE_LABELS = {"A": "A is better", "B": "B is better", "tie": "Tie"}
STRENGTH_LABELS = {1: "Slightly", 2: "Clearly", 3: "Much"}
IMPORT_FORMAT_LABELS = {
    "auto": "Detect automatically",
    "jsonl": "Attune JSONL",
    "csv": "CSV",
    "trl": "TRL prompt/chosen/rejected",
    "label_studio": "Label Studio",
    "argilla": "Argilla",
}


class ProjectCreateForm(forms.Form):
    """The few settings a researcher chooses when creating a project from the web UI."""

    name = forms.CharField(max_length=200, validators=[text_validate])
    guidelines = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Markdown.",
        validators=[text_validate],
    )
    overlap = forms.IntegerField(
        min_value=1, max_value=50, initial=3, help_text="Distinct annotators per item."
    )
    gold_ratio = forms.FloatField(
        min_value=0.0, max_value=0.5, initial=0.0, help_text="Share of gold items served (0–0.5)."
    )
    blind = forms.BooleanField(
        required=False, initial=True, help_text="Annotators never see others' answers."
    )


class ItemImportForm(forms.Form):
    """An uploaded file of items and its format."""

    file = forms.FileField()
    format = forms.ChoiceField(
        choices=[(name, IMPORT_FORMAT_LABELS.get(name, name)) for name in importers.FORMATS],
        initial="auto",
    )
    background = forms.BooleanField(
        required=False,
        label="Import on a worker (for large files)",
        help_text="The page returns at once; the job's outcome is listed below.",
    )


PII_DETECTOR_LABELS = {
    "email": "E-mail addresses",
    "iban": "IBANs",
    "card": "Payment card numbers (Luhn-checked)",
    "us_ssn": "US social security numbers",
    "uk_nino": "UK National Insurance numbers",
    "phone": "Phone numbers",
}


class DataProtectionForm(forms.Form):
    """A project's PII redaction and retention settings (researchers)."""

    pii_detectors = forms.MultipleChoiceField(
        choices=[(name, PII_DETECTOR_LABELS[name]) for name in DETECTORS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Redact on import",
    )
    retention_days = forms.IntegerField(
        required=False, min_value=1, max_value=36500, label="Delete items older than (days)"
    )
    archive_retention_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=36500,
        label="Delete all data this many days after archiving",
    )

    @classmethod
    def for_project(cls, project: Project) -> DataProtectionForm:
        return cls(
            initial={
                "pii_detectors": project.pii_detectors,
                "retention_days": project.retention_days,
                "archive_retention_days": project.archive_retention_days,
            }
        )


class DatasetExportForm(forms.Form):
    """Export format and the filters a researcher usually sets."""

    format = forms.ChoiceField(choices=DatasetSnapshot.Format.choices, initial="trl")
    include_ties = forms.BooleanField(required=False)
    min_confidence = forms.FloatField(min_value=0.0, max_value=1.0, initial=0.0)
    include_sensitive_text = forms.BooleanField(
        required=False, label="Include sensitive free text (rationales, sensitive comments)"
    )

    def filters(self) -> dict[str, Any]:
        return {
            "include_ties": self.cleaned_data["include_ties"],
            "include_sensitive_text": self.cleaned_data["include_sensitive_text"],
            "min_confidence": self.cleaned_data["min_confidence"],
        }


def response_labels(n_responses: int) -> list[str]:
    """How responses are named to people: A/B for a pair, 1..k otherwise."""
    return ["A", "B"] if n_responses == 2 else [str(i + 1) for i in range(n_responses)]


def _int_or_raw(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value  # left for answer_validate to name as the wrong type


def _json_field(data, name: str, field: str) -> Any:
    try:
        return json_parse(data[name])
    except JSONInputError as exc:
        raise ValidationError({path_join(field, exc.path): [exc.reason]}) from None


def answer_from_post(*, questions: list[dict], data, n_responses: int) -> Any:
    """The answer a form posted: the ``answer`` JSON field when present, else plain inputs.

    Questions left blank are left out, so the services report required ones by name.
    """
    if data.get("answer", "").strip():
        return _json_field(data, "answer", "answer")
    answer: dict[str, Any] = {}
    for q in questions:
        name, prefix = q["name"], f"q-{q['name']}"
        field = f"answer.{name}"
        if q["type"] == "pairwise":
            choice = data.get(f"{prefix}-choice", "")
            if choice:
                value: dict[str, Any] = {"choice": choice}
                strength = data.get(f"{prefix}-strength", "")
                if q.get("strength") and choice != "tie" and strength:
                    value["strength"] = _int_or_raw(strength)
                answer[name] = value
        elif q["type"] in ("ranking", "rating"):
            raw = [data.get(f"{prefix}-{i}", "") for i in range(n_responses)]
            if not any(raw):
                continue
            if q["type"] == "rating":
                answer[name] = [_int_or_raw(v) if v else None for v in raw]
                continue
            ranks = [_int_or_raw(v) for v in raw]
            if "" in raw or len(set(ranks)) != n_responses:
                raise ValidationError({field: ["give every response a different rank"]})
            answer[name] = sorted(range(n_responses), key=lambda i: ranks[i])
        elif q["type"] == "text":
            if data.get(prefix, ""):
                answer[name] = data[prefix]  # checked by annotation.schema with the rest
        elif q["type"] == "spans":
            if data.get(prefix, "").strip():
                answer[name] = _json_field(data, prefix, field)
        elif q["type"] == "tags":
            tags = data.getlist(prefix)
            if tags:
                answer[name] = tags
    return answer


def errors_by_field(exc: ValidationError) -> dict[str, list[str]]:
    """A ValidationError as ``{"field": ["reason", ...]}`` (``__all__`` for bare ones)."""
    if hasattr(exc, "error_dict"):
        return {field: list(reasons) for field, reasons in exc.message_dict.items()}
    return {"__all__": list(exc.messages)}


def _question_of(field: str) -> str | None:
    """``answer.preference.choice`` -> ``preference``."""
    if not field.startswith("answer."):
        return None
    return field.split(".", 2)[1].split("[", 1)[0]


def question_widgets(
    *,
    questions: list[dict],
    responses: list[dict],
    answer: Any = None,
    errors: dict[str, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """What the templates need to draw each question, pre-filled from ``answer``."""
    answer = answer if isinstance(answer, dict) else {}
    errors = errors or {}
    labels = response_labels(len(responses))
    widgets = []
    for q in questions:
        name, value = q["name"], answer.get(q["name"])
        widget: dict[str, Any] = {
            "q": q,
            "name": name,
            "type": q["type"],
            "input": f"q-{name}",
            "title": name.replace("_", " ").capitalize(),
            "errors": [
                f"{field}: {reason}"
                for field, reasons in errors.items()
                if _question_of(field) == name
                for reason in reasons
            ],
        }
        if q["type"] == "pairwise":
            value = value if isinstance(value, dict) else {}
            allowed = ["A", "B", "tie"] if q.get("allow_tie", True) else ["A", "B"]
            widget["choices"] = [
                {"value": c, "label": PAIRWISE_LABELS[c], "key": str(i + 1),
                 "checked": value.get("choice") == c}
                for i, c in enumerate(allowed)
            ]  # fmt: skip
            widget["strengths"] = [
                {"value": s, "label": label, "checked": value.get("strength") == s}
                for s, label in STRENGTH_LABELS.items()
            ]
        elif q["type"] == "ranking":
            ranks = {}
            if isinstance(value, list):
                ranks = {r: position + 1 for position, r in enumerate(value)}
            widget["rows"] = [
                {"index": i, "label": label, "selected": ranks.get(i),
                 "options": list(range(1, len(responses) + 1))}
                for i, label in enumerate(labels)
            ]  # fmt: skip
        elif q["type"] == "rating":
            ratings = value if isinstance(value, list) else []
            widget["rows"] = [
                {"index": i, "label": label,
                 "selected": ratings[i] if i < len(ratings) else None,
                 "options": list(range(q["min"], q["max"] + 1))}
                for i, label in enumerate(labels)
            ]  # fmt: skip
        elif q["type"] == "text":
            widget["value"] = value if isinstance(value, str) else ""
        elif q["type"] == "spans":
            widget["value"] = json.dumps(value if isinstance(value, list) else [])
            widget["labels"] = q.get("labels") or []
        elif q["type"] == "tags":
            chosen = value if isinstance(value, list) else []
            widget["options"] = [{"value": o, "checked": o in chosen} for o in q["options"]]
        widgets.append(widget)
    return widgets


def answer_summary(*, question: dict | None, value: Any, n_responses: int) -> str:
    """One answer to a question in words, for reviewers (e.g. ``B is better (much)``)."""
    if question is None or value is None:
        return "—"
    labels = response_labels(n_responses)
    if question["type"] == "pairwise" and isinstance(value, dict):
        text = PAIRWISE_LABELS.get(value.get("choice"), str(value.get("choice")))
        if value.get("strength"):
            text += f" ({STRENGTH_LABELS.get(value['strength'], value['strength'])})".lower()
        return text
    if question["type"] == "ranking" and isinstance(value, list):
        return " > ".join(labels[i] if 0 <= i < len(labels) else str(i) for i in value)
    if question["type"] == "rating" and isinstance(value, list):
        return ", ".join(f"{labels[i]}: {v}" for i, v in enumerate(value) if i < len(labels))
    return str(value)
