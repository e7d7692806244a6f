"""The annotation API, as programs use it: permissions, the annotator loop, errors."""

import hashlib
import io
import json

import pytest

from annotation.consensus import consensus_recompute
from annotation.models import Annotation, DatasetSnapshot, Item, Project
from governance.models import AuditEvent
from tests.annotation.conftest import label

pytestmark = pytest.mark.django_db
BASE = "/api/annotation/projects"


def test_researcher_creates_a_project_and_becomes_its_member(api_as, rosa, anna):
    response = api_as(rosa).post(f"{BASE}/", {"name": "Harmlessness", "overlap": 3}, format="json")
    assert response.status_code == 201, response.content
    project = Project.objects.get(pk=response.json()["id"])
    assert response.json()["question_schema"]["questions"][0]["type"] == "pairwise"
    assert api_as(rosa).get(f"{BASE}/{project.pk}/").status_code == 200
    assert AuditEvent.objects.filter(action="project.create", object_id=str(project.pk)).exists()
    # Anna is not a member: the project does not exist for her, and she may not create one.
    assert api_as(anna).get(f"{BASE}/{project.pk}/").status_code == 404
    assert api_as(anna).get(f"{BASE}/").json()["results"] == []
    assert api_as(anna).post(f"{BASE}/", {"name": "x"}, format="json").status_code == 403


def test_invalid_project_settings_name_the_field(api_as, rosa):
    response = api_as(rosa).post(f"{BASE}/", {"name": "x", "overlap": 0}, format="json")
    assert response.status_code == 400 and "overlap" in response.json()["error"]["fields"]
    bad_schema = {"questions": [{"name": "q", "type": "essay"}]}
    response = api_as(rosa).post(
        f"{BASE}/", {"name": "x", "question_schema": bad_schema}, format="json"
    )
    assert response.status_code == 400
    assert "question_schema.questions[0].type" in response.json()["error"]["fields"]
    assert not Project.objects.exists()


def test_members_and_bulk_items(api_as, project, rosa, vic):
    client = api_as(rosa)
    assert (
        client.post(
            f"{BASE}/{project.pk}/members/", {"username": "vic", "role": "annotator"}
        ).status_code
        == 204
    )
    assert api_as(vic).get(f"{BASE}/{project.pk}/").status_code == 200
    rows = [{"external_id": "api-1", "prompt": "p", "responses": ["a", "b"]}]
    response = client.post(f"{BASE}/{project.pk}/items/", {"items": rows}, format="json")
    assert response.status_code == 201 and response.json() == {
        "rows": 1,
        "created": 1,
        "skipped_existing": 0,
        "redactions": {},
    }
    again = client.post(f"{BASE}/{project.pk}/items/", {"items": rows}, format="json")
    assert again.json() == {"rows": 1, "created": 0, "skipped_existing": 1, "redactions": {}}
    bad = [*rows, {"prompt": "", "responses": ["a", "b"]}]
    response = client.post(f"{BASE}/{project.pk}/items/", {"items": bad}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["rows"][0]["line"] == 2
    assert Item.objects.filter(project=project).count() == 6
    # An annotator may not add items, nor list them (gold answers live there).
    assert (
        api_as(vic).post(f"{BASE}/{project.pk}/items/", {"items": rows}, format="json").status_code
        == 403
    )
    assert api_as(vic).get(f"{BASE}/{project.pk}/items/").status_code == 403


def test_losing_one_of_two_roles_keeps_the_other(api_as, project, rosa, anna):
    # Anna annotates and reviews; taking reviewing away must leave her labelling.
    members = f"{BASE}/{project.pk}/members/"
    client = api_as(rosa)
    assert client.post(members, {"username": "anna", "role": "reviewer"}).status_code == 204
    assert client.delete(members, {"username": "anna", "role": "reviewer"}).status_code == 204
    anna_client = api_as(anna)
    next_item = anna_client.post(f"{BASE}/{project.pk}/next/")
    assert next_item.status_code == 200, next_item.content
    payload = {"item": next_item.json()["item"]["id"], "answer": {"preference": {"choice": "A"}}}
    submitted = anna_client.post(
        f"{BASE}/{project.pk}/submit/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert submitted.status_code == 201, submitted.content
    # ... but she no longer reviews or reads the reports.
    assert anna_client.get(f"{BASE}/{project.pk}/consensus/").status_code == 403
    assert anna_client.get(f"{BASE}/{project.pk}/stats/").status_code == 403
    removal = AuditEvent.objects.get(action="project.member_remove")
    assert removal.before == {"user": "anna", "role": "reviewer"}


def test_file_import_reports_line_numbers_and_writes_nothing(api_as, project, rosa):
    lines = [json.dumps({"prompt": f"p{i}", "chosen": "c", "rejected": "r"}) for i in range(5)]
    lines[3] = json.dumps({"prompt": "p3", "chosen": "c"})
    upload = io.BytesIO("\n".join(lines).encode())
    upload.name = "pairs.jsonl"
    response = api_as(rosa).post(
        f"{BASE}/{project.pk}/import/", {"file": upload, "format": "trl"}, format="multipart"
    )
    assert response.status_code == 400
    assert [r["line"] for r in response.json()["error"]["rows"]] == [4]
    assert Item.objects.filter(project=project).count() == 5
    upload = io.BytesIO("\n".join(lines[:3]).encode())
    upload.name = "pairs.jsonl"
    response = api_as(rosa).post(
        f"{BASE}/{project.pk}/import/", {"file": upload, "format": "trl"}, format="multipart"
    )
    assert response.status_code == 201 and response.json()["created"] == 3


class TestAnnotatorLoop:
    def test_next_submit_and_idempotent_retry(self, api_as, project, anna):
        client = api_as(anna)
        body = client.post(f"{BASE}/{project.pk}/next/").json()
        item = body["item"]
        assert set(item) == {"id", "prompt", "responses"}  # nothing about gold or sources
        assert all(set(r) == {"text"} for r in item["responses"])
        payload = {"item": item["id"], "answer": {"preference": {"choice": "A", "strength": 3}}}
        first = client.post(
            f"{BASE}/{project.pk}/submit/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
        )
        assert first.status_code == 201, first.content
        retry = client.post(
            f"{BASE}/{project.pk}/submit/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
        )
        assert retry.status_code == 200 and retry.json()["id"] == first.json()["id"]
        assert Annotation.objects.filter(annotator=anna).count() == 1
        assert client.post(f"{BASE}/{project.pk}/next/").json()["progress"]["done"] == 1

    @pytest.mark.parametrize(
        ("answer", "field"),
        [
            ({"preference": {"choice": "D"}}, "answer.preference.choice"),
            ({"preference": {"choice": "A", "strength": 0}}, "answer.preference.strength"),
            ({"preference": {"choice": "A"}, "rationale": 5}, "answer.rationale"),
        ],
    )
    def test_bad_answers_are_400_with_the_field(self, api_as, project, anna, answer, field):
        client = api_as(anna)
        item = client.post(f"{BASE}/{project.pk}/next/").json()["item"]
        response = client.post(f"{BASE}/{project.pk}/submit/", {"item": item["id"], "answer": answer,
                               "idempotency_key": "x"}, format="json")  # fmt: skip
        assert response.status_code == 400
        assert field in response.json()["error"]["fields"]
        assert not Annotation.objects.exists()

    def test_submit_without_assignment_is_409(self, api_as, project, anna):
        item = Item.objects.filter(project=project).first()
        response = api_as(anna).post(f"{BASE}/{project.pk}/submit/", {"item": item.pk, "answer": {"preference": {"choice": "A"}},
                                     "idempotency_key": "x"}, format="json")  # fmt: skip
        assert response.status_code == 409
        assert (
            response.json()["error"]["code"] == "conflict"
            and "item" in response.json()["error"]["fields"]
        )
        assert not Annotation.objects.exists()

    def test_submit_without_idempotency_key_is_400(self, api_as, project, anna):
        client = api_as(anna)
        item = client.post(f"{BASE}/{project.pk}/next/").json()["item"]
        response = client.post(
            f"{BASE}/{project.pk}/submit/",
            {"item": item["id"], "answer": {"preference": {"choice": "A"}}},
            format="json",
        )
        assert (
            response.status_code == 400 and "idempotency_key" in response.json()["error"]["fields"]
        )

    def test_skip(self, api_as, project, anna):
        client = api_as(anna)
        item = client.post(f"{BASE}/{project.pk}/next/").json()["item"]
        assert (
            client.post(
                f"{BASE}/{project.pk}/skip/", {"item": item["id"]}, format="json"
            ).status_code
            == 204
        )
        assert client.post(f"{BASE}/{project.pk}/next/").json()["item"]["id"] != item["id"]
        assert (
            client.post(
                f"{BASE}/{project.pk}/skip/", {"item": item["id"]}, format="json"
            ).status_code
            == 409
        )

    def test_roles_inside_the_project(self, api_as, project, rex, vic):
        # rex reviews but does not annotate; vic is not a member at all.
        assert api_as(rex).post(f"{BASE}/{project.pk}/next/").status_code == 403
        assert api_as(vic).post(f"{BASE}/{project.pk}/next/").status_code == 404


class TestReviewAndResults:
    def test_reviewer_adjudicates_and_annotators_may_not(self, api_as, project, anna, ben, rex):
        annotation = label(project, anna, "A")
        payload = {
            "item": annotation.item_id,
            "answer": {"preference": {"choice": "B"}},
            "reason": "B is kinder",
        }
        assert (
            api_as(anna)
            .post(f"{BASE}/{project.pk}/adjudicate/", payload, format="json")
            .status_code
            == 403
        )
        response = api_as(rex).post(f"{BASE}/{project.pk}/adjudicate/", payload, format="json")
        assert response.status_code == 201 and response.json()["label"] == 2
        missing_reason = {**payload, "reason": ""}
        assert (
            api_as(rex)
            .post(f"{BASE}/{project.pk}/adjudicate/", missing_reason, format="json")
            .status_code
            == 400
        )

    def test_consensus_and_stats(self, api_as, project, anna, ben, rex):
        for _ in range(3):
            label(project, anna, "A")
            label(project, ben, "A")
        consensus_recompute(project=project)
        consensus = api_as(rex).get(f"{BASE}/{project.pk}/consensus/").json()["results"]
        assert len(consensus) == 3 and {c["label"] for c in consensus} == {0}
        stats = api_as(rex).get(f"{BASE}/{project.pk}/stats/").json()
        assert stats["progress"]["complete"] == 3
        assert {a["annotator"] for a in stats["annotators"]} == {"anna", "ben"}
        assert stats["latest"]["metrics"]["raw_agreement"] == 1.0
        # Blind mode: annotators never see others' answers or the consensus.
        assert api_as(anna).get(f"{BASE}/{project.pk}/consensus/").status_code == 403
        assert api_as(anna).get(f"{BASE}/{project.pk}/stats/").status_code == 403

    def test_export_snapshot_and_download(self, api_as, project, anna, ben, rosa, rex):
        for _ in range(2):
            label(project, anna, "A", strength=3)
            label(project, ben, "A", strength=3)
        consensus_recompute(project=project)
        response = api_as(rosa).post(
            f"{BASE}/{project.pk}/exports/", {"format": "trl"}, format="json"
        )
        assert response.status_code == 201, response.content
        snapshot = response.json()
        assert snapshot["row_count"] == 2
        download = api_as(rosa).get(snapshot["download"])
        content = b"".join(download.streaming_content)
        assert hashlib.sha256(content).hexdigest() == snapshot["sha256"]
        rows = [json.loads(line) for line in content.decode().splitlines()]
        assert all(r["chosen"].startswith("good") for r in rows)
        # Unanimous, strength 3: the margin is the consensus confidence itself.
        assert all(
            r["margin"] == pytest.approx(r["confidence"], abs=1e-6) and r["margin"] > 0.5
            for r in rows
        )
        # Reviewers may neither export nor read snapshots (they hold every answer).
        assert (
            api_as(rex)
            .post(f"{BASE}/{project.pk}/exports/", {"format": "trl"}, format="json")
            .status_code
            == 403
        )
        assert api_as(rex).get(snapshot["download"]).status_code == 404
        bad = api_as(rosa).post(
            f"{BASE}/{project.pk}/exports/",
            {"format": "trl", "filters": {"min_confidence": 2}},
            format="json",
        )
        assert bad.status_code == 400 and "filters.min_confidence" in bad.json()["error"]["fields"]
        assert DatasetSnapshot.objects.count() == 1


def test_openapi_describes_the_annotation_api(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()[
        "paths"
    ]
    for suffix in (
        "next/",
        "submit/",
        "skip/",
        "adjudicate/",
        "consensus/",
        "stats/",
        "exports/",
        "import/",
        "items/",
    ):
        assert f"/api/annotation/projects/{{id}}/{suffix}" in paths, suffix
