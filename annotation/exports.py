"""Dataset exports: TRL JSONL, Parquet (Hugging Face ``datasets``), CSV, Label Studio and
Argilla JSON.  Every export streams to a file, is content-hashed, and is recorded as an
immutable ``DatasetSnapshot`` (the lineage later training runs point at).

Pairwise labels become ``chosen``/``rejected`` from the consensus label.  ``margin`` is
the consensus confidence times the mean strength (1–3) of the agreeing annotators divided
by 3, or the confidence alone where no strength was asked — so a unanimous "much better"
is 1.0 and a split vote is small.  Ties are left out unless ``include_ties`` is set (then
they appear with margin 0).  Annotators appear only as pseudonyms (:func:`pseudonym`: an
HMAC keyed by a server setting and the project), stable across exports of that project;
sensitive free text (rationales, comments marked sensitive) is left out unless
``include_sensitive_text`` is set, and every free-text answer exported has its e-mail
addresses, phone, card and national-id numbers replaced by placeholders.  CSV cells a
spreadsheet would run as a formula are escaped (``rlhf_platform.spreadsheet``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from governance.services import audit_event_record
from rlhf_platform.spreadsheet import csv_writer

from . import schema
from .importers.redaction import DETECTORS, Redactor
from .models import Annotation, DatasetSnapshot, Item, ItemConsensus, Project

FILTER_DEFAULTS: dict[str, Any] = {
    "min_confidence": 0.0,
    "min_annotations": 1,
    "include_ties": False,
    "include_gold": False,
    # Rationales and comments marked sensitive are encrypted at rest and left out of
    # exports unless asked for (the choice is kept in the snapshot's filters and audited).
    "include_sensitive_text": False,
    # {external_id: k}: write those items' rows k times (oversampling, e.g. the RLHF loop's
    # error memory; 0 leaves an item out, e.g. held out for evaluation); TRL and Parquet.
    "repeat": {},
}
MAX_REPEAT = 20
EXTENSIONS = {
    "trl": "jsonl",
    "parquet": "parquet",
    "csv": "csv",
    "label_studio": "json",
    "argilla": "json",
}
# What a download of each format is served as.
MEDIA_TYPES = {
    "trl": "application/jsonl",
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
    "label_studio": "application/json",
    "argilla": "application/json",
}
BATCH = 2000


def pseudonym(project: Project, annotator_id: int) -> str:
    """A stable, keyed pseudonym for an annotator within one project: ``ann-`` and 16 hex
    digits of HMAC-SHA256(key, user id).

    The key is derived from the server's ``PSEUDONYM_KEY`` (a setting, never stored in the
    database) and the project's own salt, so pseudonyms cannot be linked across projects
    and a copy of the database (or of an export) cannot be reversed by hashing every user
    id: that needs the setting too.  64 bits: collisions within a project of a million
    annotators have a probability of about 3e-8.
    """
    key = hmac.new(
        settings.PSEUDONYM_KEY.encode(), project.pseudonym_key.encode(), hashlib.sha256
    ).digest()
    digest = hmac.new(key, str(annotator_id).encode(), hashlib.sha256)
    return "ann-" + digest.hexdigest()[:16]


def _export_answer(
    project: Project, annotation: Annotation, redactor: Redactor, filters: dict
) -> dict:
    """An annotation's answer as exported: without its sensitive text answers, or with them
    decrypted when ``include_sensitive_text`` is set; either way with the personal data an
    annotator typed into free text replaced by placeholders."""
    answer = annotation.full_answer if filters["include_sensitive_text"] else annotation.answer
    text_questions = {
        q["name"] for q in project.question_schema["questions"] if q["type"] == "text"
    }
    return {
        name: redactor.text(value) if name in text_questions and isinstance(value, str) else value
        for name, value in answer.items()
    }


def filters_validate(filters: Any) -> dict[str, Any]:
    """Check export filters; return them with defaults filled in."""
    if filters is None:
        filters = {}
    if not isinstance(filters, dict):
        raise ValidationError({"filters": ["must be an object"]})
    unknown = sorted(set(filters) - set(FILTER_DEFAULTS))
    if unknown:
        raise ValidationError({f"filters.{unknown[0]}": ["unknown filter"]})
    clean = {**FILTER_DEFAULTS, **filters}
    if (
        not isinstance(clean["min_confidence"], int | float)
        or not 0 <= clean["min_confidence"] <= 1
    ):
        raise ValidationError({"filters.min_confidence": ["must be a number 0..1"]})
    if not isinstance(clean["min_annotations"], int) or clean["min_annotations"] < 1:
        raise ValidationError({"filters.min_annotations": ["must be an integer ≥ 1"]})
    for name in ("include_ties", "include_gold", "include_sensitive_text"):
        if not isinstance(clean[name], bool):
            raise ValidationError({f"filters.{name}": ["must be true or false"]})
    repeat = clean["repeat"]
    if not isinstance(repeat, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        and 0 <= v <= MAX_REPEAT
        for k, v in repeat.items()
    ):  # fmt: skip
        raise ValidationError(
            {"filters.repeat": [f"must map external ids to integers 0..{MAX_REPEAT}"]}
        )
    return clean


def _repeated(row: dict, filters: dict) -> int:
    """How many times a preference row is written (1 unless ``repeat`` names its item)."""
    return filters["repeat"].get(row["external_id"], 1)


def _labelled_items(
    project: Project, filters: dict[str, Any]
) -> Iterator[list[tuple[Item, ItemConsensus]]]:
    """Batches of (item, consensus), by item id, with the filters applied."""
    consensus = ItemConsensus.objects.filter(
        project=project,
        confidence__gte=filters["min_confidence"],
        n_annotations__gte=filters["min_annotations"],
    )
    if not filters["include_gold"]:
        consensus = consensus.filter(item__is_gold=False)
    last = 0
    while True:
        batch = list(
            consensus.filter(item_id__gt=last).select_related("item").order_by("item_id")[:BATCH]
        )
        if not batch:
            return
        yield [(c.item, c) for c in batch]
        last = batch[-1].item_id


def _annotations_for(items: list[Item], filters: dict) -> dict[int, list[Annotation]]:
    annotations = Annotation.objects.filter(item__in=[i.pk for i in items]).order_by("id")
    if not filters["include_sensitive_text"]:
        # Not exported: do not decrypt it either.
        annotations = annotations.defer("answer_private")
    grouped: dict[int, list[Annotation]] = defaultdict(list)
    for annotation in annotations:
        grouped[annotation.item_id].append(annotation)
    return grouped


def _preference_row(
    project: Project, item: Item, cons: ItemConsensus, filters: dict
) -> dict | None:
    """A TRL row for one item, or None when the item is a tie that is left out."""
    primary = schema.primary_question(project.question_schema)
    responses = item.responses
    kind = primary["type"] if primary else None
    if kind == "pairwise":
        choice = schema.PAIRWISE_CHOICES.get(cons.label)
        if choice == "tie":
            if not filters["include_ties"]:
                return None
            chosen, rejected, margin = responses[0], responses[1], 0.0
        else:
            chosen, rejected = (
                (responses[0], responses[1]) if choice == "A" else (responses[1], responses[0])
            )
            margin = cons.confidence * ((cons.mean_strength or 3.0) / 3.0)
    elif kind == "ranking":
        # The consensus label is the best response; the pair is best vs. the first other.
        best = cons.label
        other = next(i for i in range(len(responses)) if i != best)
        chosen, rejected, margin = responses[best], responses[other], cons.confidence
    else:
        return None
    return {
        "prompt": item.prompt,
        "chosen": chosen["text"],
        "rejected": rejected["text"],
        "margin": round(float(margin), 6),
        "external_id": item.external_id,
        "n_annotations": cons.n_annotations,
        "confidence": round(float(cons.confidence), 6),
        "agreement": round(float(cons.agreement), 6),
        "consensus_method": cons.method,
        "chosen_model": chosen.get("model"),
        "rejected_model": rejected.get("model"),
    }


class _HashingWriter:
    """A text file that hashes what is written to it."""

    def __init__(self, handle):
        self.handle = handle
        self.sha = hashlib.sha256()

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        self.sha.update(data)
        self.handle.write(data)
        return len(text)


def _write_trl(project, filters, out: _HashingWriter) -> int:
    count = 0
    for batch in _labelled_items(project, filters):
        for item, cons in batch:
            row = _preference_row(project, item, cons, filters)
            if row is not None:
                line = json.dumps(row, ensure_ascii=False) + "\n"
                for _ in range(_repeated(row, filters)):
                    out.write(line)
                    count += 1
    return count


def _answer_redactor() -> Redactor:
    """Every detector, whatever the project imports with: what annotators type is theirs."""
    return Redactor(DETECTORS, phone_region=settings.PII_PHONE_REGION)


def _write_csv(project, filters, out: _HashingWriter) -> int:
    writer = csv_writer(out)
    redactor = _answer_redactor()
    max_k = 2
    writer.writerow(
        [
            "external_id",
            "prompt",
            "response_a",
            "response_b",
            "annotator",
            "answer",
            "label",
            "strength",
            "lead_time_ms",
            "created_at",
            "consensus_label",
            "consensus_confidence",
        ]
    )
    count = 0
    for batch in _labelled_items(project, filters):
        annotations = _annotations_for([i for i, _ in batch], filters)
        for item, cons in batch:
            texts = [r["text"] for r in item.responses[:max_k]]
            for a in annotations.get(item.pk, []):
                writer.writerow(
                    [
                        item.external_id,
                        item.prompt,
                        *texts,
                        pseudonym(project, a.annotator_id),
                        json.dumps(
                            _export_answer(project, a, redactor, filters), ensure_ascii=False
                        ),
                        a.label,
                        a.strength or "",
                        a.lead_time_ms,
                        a.created_at.isoformat(),
                        cons.label,
                        round(cons.confidence, 6),
                    ]
                )
                count += 1
    return count


def _json_array(rows: Iterator[dict], out: _HashingWriter) -> int:
    out.write("[\n")
    count = 0
    for row in rows:
        out.write((",\n" if count else "") + json.dumps(row, ensure_ascii=False))
        count += 1
    out.write("\n]\n")
    return count


def _label_studio_rows(project, filters) -> Iterator[dict]:
    choice_to_ls = {"A": "left", "B": "right", "tie": "tie"}
    redactor = _answer_redactor()
    for batch in _labelled_items(project, filters):
        annotations = _annotations_for([i for i, _ in batch], filters)
        for item, cons in batch:
            data = {
                "prompt": item.prompt,
                **{f"answer{i + 1}": r["text"] for i, r in enumerate(item.responses)},
            }
            results = []
            for a in annotations.get(item.pk, []):
                value = next(iter(a.answer.values()), None)
                choice = value.get("choice") if isinstance(value, dict) else None
                results.append(
                    {
                        "completed_by": pseudonym(project, a.annotator_id),
                        "created_at": a.created_at.isoformat(),
                        "lead_time": a.lead_time_ms / 1000,
                        "result": [
                            {
                                "type": "pairwise",
                                "from_name": "comparison",
                                "to_name": "answers",
                                "value": {"selected": choice_to_ls.get(choice, choice)},
                            }
                        ],
                        "attune_answer": _export_answer(project, a, redactor, filters),
                    }
                )
            yield {
                "id": item.pk,
                "data": {**data, "external_id": item.external_id},
                "annotations": results,
                "meta": {"consensus_label": cons.label, "confidence": cons.confidence},
            }


def _argilla_rows(project, filters) -> Iterator[dict]:
    redactor = _answer_redactor()
    for batch in _labelled_items(project, filters):
        annotations = _annotations_for([i for i, _ in batch], filters)
        for item, cons in batch:
            fields = {
                "prompt": item.prompt,
                **{f"response{i + 1}": r["text"] for i, r in enumerate(item.responses)},
            }
            responses = [
                {
                    "user_id": pseudonym(project, a.annotator_id),
                    "status": "submitted",
                    "values": {
                        name: {"value": value}
                        for name, value in _export_answer(project, a, redactor, filters).items()
                    },
                }
                for a in annotations.get(item.pk, [])
            ]
            yield {
                "id": item.external_id,
                "fields": fields,
                "responses": responses,
                "metadata": {
                    **item.metadata,
                    "consensus_label": cons.label,
                    "consensus_confidence": cons.confidence,
                },
            }


def _write_parquet(project, filters, path: Path) -> int:
    writer = None
    count = 0
    try:
        for batch in _labelled_items(project, filters):
            rows = [
                r
                for item, cons in batch
                if (r := _preference_row(project, item, cons, filters))
                for _ in range(_repeated(r, filters))
            ]
            if not rows:
                continue
            table = pa.Table.from_pylist(rows, schema=_PARQUET_SCHEMA)
            if writer is None:
                writer = pq.ParquetWriter(path, _PARQUET_SCHEMA)
            writer.write_table(table)
            count += len(rows)
        if writer is None:
            writer = pq.ParquetWriter(path, _PARQUET_SCHEMA)
    finally:
        if writer is not None:
            writer.close()
    return count


_PARQUET_SCHEMA = pa.schema(
    [
        ("prompt", pa.string()),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("margin", pa.float64()),
        ("external_id", pa.string()),
        ("n_annotations", pa.int32()),
        ("confidence", pa.float64()),
        ("agreement", pa.float64()),
        ("consensus_method", pa.string()),
        ("chosen_model", pa.string()),
        ("rejected_model", pa.string()),
    ]
)


def _file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def dataset_export(
    *, project: Project, fmt: str, user, filters: dict | None = None
) -> DatasetSnapshot:
    """Export the project's labelled items and record an immutable snapshot (audited).

    The file is written to a temporary name and moved into place only once complete, and
    the snapshot row is created in the same transaction as its audit event: a failed export
    leaves neither a row nor a partial file.
    """
    if fmt not in EXTENSIONS:
        raise ValidationError({"format": [f"must be one of {', '.join(EXTENSIONS)}"]})
    clean = filters_validate(filters)
    directory = Path(settings.MEDIA_ROOT) / "snapshots" / str(project.pk)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=directory, suffix=".partial")
    tmp = Path(tmp_name)
    try:
        if fmt == "parquet":
            os.close(fd)
            count = _write_parquet(project, clean, tmp)
            sha = _file_sha256(tmp)
        else:
            with os.fdopen(fd, "wb") as handle:
                out = _HashingWriter(handle)
                if fmt == "trl":
                    count = _write_trl(project, clean, out)
                elif fmt == "csv":
                    count = _write_csv(project, clean, out)
                elif fmt == "label_studio":
                    count = _json_array(_label_studio_rows(project, clean), out)
                else:
                    count = _json_array(_argilla_rows(project, clean), out)
                sha = out.sha.hexdigest()
        final = directory / f"{sha}.{EXTENSIONS[fmt]}"
        tmp.replace(final)
        with transaction.atomic():
            snapshot = DatasetSnapshot.objects.create(
                project=project,
                format=fmt,
                filters=clean,
                row_count=count,
                sha256=sha,
                file=str(final.relative_to(settings.MEDIA_ROOT)),
                size_bytes=final.stat().st_size,
                created_by=user,
            )
            audit_event_record(
                action="dataset.export",
                obj=snapshot,
                after={
                    "project": project.pk,
                    "format": fmt,
                    "filters": clean,
                    "rows": count,
                    "sha256": sha,
                },
            )
        return snapshot
    finally:
        tmp.unlink(missing_ok=True)
