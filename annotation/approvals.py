"""Annotation's governed change: releasing a dataset snapshot outside its project (to a
named recipient, for a stated purpose).  Registered from ``AnnotationConfig.ready()``.

A snapshot holds every annotator's answers (under pseudonyms) and the gold answers, so
handing it to anyone outside the project is a decision for the reviewers, not for one
researcher.  The approved release is recorded (``snapshot.release``) with the approval.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from governance.approvals import EvidenceSection, approval_kind_register
from governance.services import audit_event_record
from rlhf_platform.validation import text_problem

from . import selectors
from .models import DatasetSnapshot

RELEASE = "dataset.release"


def _release_validate(snapshot: DatasetSnapshot, payload: dict) -> dict:
    cleaned, errors = {}, {}
    for name, limit in (("recipient", 200), ("purpose", 2000)):
        value = payload.get(name)
        value = value.strip() if isinstance(value, str) else ""
        if not value:
            errors[f"payload.{name}"] = ["is required"]
        elif len(value) > limit or text_problem(value):
            errors[f"payload.{name}"] = [text_problem(value) or f"at most {limit} characters"]
        cleaned[name] = value
    if errors:
        raise ValidationError(errors)
    return cleaned


def _release_describe(snapshot: DatasetSnapshot, payload: dict) -> str:
    return (
        f"Release snapshot #{snapshot.pk} of “{snapshot.project.name}” "
        f"({snapshot.row_count} rows) to {payload['recipient']}"
    )


def _release_execute(snapshot: DatasetSnapshot, payload: dict, request) -> dict:
    """Record the approved release (the approval request is its authority)."""
    audit_event_record(
        action="snapshot.release", obj=snapshot,
        after={"recipient": payload["recipient"], "approval_request": request.pk,
               "sha256": snapshot.sha256, "rows": snapshot.row_count},
    )  # fmt: skip
    return {"snapshot": snapshot.pk, "recipient": payload["recipient"]}


def _release_context(snapshot: DatasetSnapshot, payload: dict) -> dict[str, Any]:
    lineage = selectors.snapshot_lineage(snapshot=snapshot)
    return {"snapshot": snapshot, "lineage": lineage, "agreement": lineage.get("agreement") or {},
            "payload": payload}  # fmt: skip


def approvals_register() -> None:
    """Register the release of a snapshot outside its project."""
    approval_kind_register(
        key=RELEASE, label="Release a dataset snapshot outside its project",
        model=DatasetSnapshot, request_action="export", validate=_release_validate,
        describe=_release_describe, execute=_release_execute,
        project_of=lambda snapshot: snapshot.project,
        evidence=[EvidenceSection(key="snapshot", title="The data to be released",
                                  template="annotation/evidence/snapshot.html",
                                  context=_release_context)],
    )  # fmt: skip
