"""Bad input gets a 400 naming the field and the reason — never a 500, on either database.

Every free-text input of the annotation API and pages is tried with a NUL character
(PostgreSQL text cannot hold it) and a lone surrogate (not Unicode), and every JSON input
with 100,000 levels of nesting (Python's decoder raised RecursionError).
"""

import json

import pytest

from annotation import services
from annotation.models import Adjudication, Annotation, Assignment, Project
from tests.annotation.conftest import label

pytestmark = pytest.mark.django_db
BASE = "/api/annotation/projects"
DEEP = "[" * 100_000 + "]" * 100_000
NUL = "\\u0000"  # as written inside a JSON string
SURROGATE = "\\ud800"


def post_raw(client, url: str, body: str):
    """POST a JSON text exactly as given (escapes included)."""
    return client.post(url, data=body, content_type="application/json")


def fields_of(response) -> dict:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["status"] == 400 and error["code"] == "invalid"
    return error["fields"]


# -- project creation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ('{"name": "x", "question_schema": ' + DEEP + "}", "question_schema", "nested deeper"),
        ('{"name": "x' + SURROGATE + '"}', "name", "unpaired surrogate"),
        ('{"name": "x", "guidelines": "g' + SURROGATE + '"}', "guidelines", "unpaired surrogate"),
        ('{"name": "x", "guidelines": "g' + NUL + '"}', "guidelines", "NUL character"),
        (
            '{"name": "x", "question_schema": {"questions": [{"name": "t", "type": "tags", '
            '"options": ["ok", "b' + NUL + '"]}]}}',
            "question_schema.questions[0].options[1]",
            "NUL character",
        ),
        ('{"name": ', "body", "not valid JSON"),
        ('{"name": "x", "overlap": NaN}', "body", "NaN"),
    ],
)
def test_project_creation_refuses_bad_input(api_as, rosa, body, field, reason):
    fields = fields_of(post_raw(api_as(rosa), f"{BASE}/", body))
    assert list(fields) == [field] and reason in fields[field][0]
    assert not Project.objects.exists()


def test_project_services_refuse_unstorable_text(rosa, project):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        services.project_update(project=project, guidelines="bad\x00")
    assert caught.value.message_dict == {"guidelines": ["contains a NUL character"]}
    with pytest.raises(ValidationError) as caught:
        services.project_create(created_by=rosa, name="x\ud800")
    assert caught.value.message_dict == {"name": ["contains an unpaired surrogate"]}


# -- the annotator loop -------------------------------------------------------------------


@pytest.fixture
def locked(project, anna):
    """Anna holds a lock on an item of the project."""
    return services.assignment_next(project=project, annotator=anna)


@pytest.mark.parametrize(
    ("answer", "field", "reason"),
    [
        ('{"preference": {"choice": "A"}, "rationale": "x' + SURROGATE + '"}',
         "answer.rationale", "contains an unpaired surrogate"),
        ('{"preference": {"choice": "A"}, "rationale": "x' + NUL + '"}',
         "answer.rationale", "contains a NUL character"),
        ('{"preference": ' + DEEP + "}", "answer", "is nested deeper than 64 levels"),
    ],
)  # fmt: skip
def test_submit_refuses_bad_answers(api_as, anna, project, locked, answer, field, reason):
    body = f'{{"item": {locked.item_id}, "idempotency_key": "k1", "answer": {answer}}}'
    fields = fields_of(post_raw(api_as(anna), f"{BASE}/{project.pk}/submit/", body))
    assert fields == {field: [reason]}
    assert not Annotation.objects.exists()


def test_submit_refuses_an_unstorable_idempotency_key(anna, project, locked):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        services.annotation_submit(
            project=project, item_id=locked.item_id, annotator=anna,
            answer={"preference": {"choice": "A"}}, idempotency_key="k\x00",
        )  # fmt: skip
    assert caught.value.message_dict == {"idempotency_key": ["contains a NUL character"]}


def test_skip_and_adjudicate_refuse_unstorable_reasons(api_as, anna, rex, project, locked):
    body = f'{{"item": {locked.item_id}, "reason": "r{SURROGATE}"}}'
    assert fields_of(post_raw(api_as(anna), f"{BASE}/{project.pk}/skip/", body)) == {
        "reason": ["contains an unpaired surrogate"]
    }
    assert Assignment.objects.get(pk=locked.pk).status == Assignment.Status.LOCKED
    body = f'{{"item": {locked.item_id}, "answer": {{"preference": {{"choice": "A"}}}}, "reason": "r{SURROGATE}"}}'
    assert fields_of(post_raw(api_as(rex), f"{BASE}/{project.pk}/adjudicate/", body)) == {
        "reason": ["contains an unpaired surrogate"]
    }
    assert not Adjudication.objects.exists()


def test_bulk_items_and_members_name_the_bad_field(api_as, rosa, project):
    body = (
        '{"items": [{"prompt": "ok", "responses": ["a", "b"]}, {"prompt": "p'
        + SURROGATE
        + '", "responses": ["a", "b"]}]}'
    )
    assert fields_of(post_raw(api_as(rosa), f"{BASE}/{project.pk}/items/", body)) == {
        "items[1].prompt": ["contains an unpaired surrogate"]
    }
    body = '{"username": "vic' + SURROGATE + '", "role": "annotator"}'
    assert fields_of(post_raw(api_as(rosa), f"{BASE}/{project.pk}/members/", body)) == {
        "username": ["contains an unpaired surrogate"]
    }


def test_token_endpoint_refuses_unstorable_usernames(api):
    body = '{"username": "ada' + SURROGATE + '", "password": "x"}'
    assert fields_of(post_raw(api, "/api/auth/token/", body)) == {
        "username": ["contains an unpaired surrogate"]
    }
    assert fields_of(post_raw(api, "/api/auth/token/", '{"username": ' + DEEP + "}")) == {
        "username": ["is nested deeper than 64 levels"]
    }


# -- the labelling and review pages ---------------------------------------------------------


def label_post(client, project, item_id, **data):
    return client.post(
        f"/annotation/projects/{project.pk}/label/",
        {"item_id": item_id, "idempotency_key": "k1", **data},
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"answer": '{"preference": {"choice": "A"}, "rationale": "x\\ud800"}'},
         "<code>answer.rationale</code>: contains an unpaired surrogate"),
        ({"q-preference-choice": "A", "q-rationale": "x\x00"},
         "<code>answer.rationale</code>: contains a NUL character"),
        ({"answer": '{"preference": ' + DEEP + "}"},
         "<code>answer.preference</code>: is nested deeper than 64 levels"),
        ({"answer": '{"preference": {"choice": "A"}}', "idempotency_key": "k\x00"},
         "<code>idempotency_key</code>: contains a NUL character"),
    ],
)  # fmt: skip
def test_labelling_page_refuses_bad_answers(client, password, anna, project, locked, data, message):
    client.login(username="anna", password=password)
    response = label_post(client, project, locked.item_id, **data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Annotation.objects.exists()


def test_review_page_refuses_an_unstorable_reason(client, password, rex, anna, ben, project):
    label(project, anna, "A")
    annotation = label(project, ben, "B")
    client.login(username="rex", password=password)
    response = client.post(
        f"/annotation/projects/{project.pk}/review/{annotation.item_id}/",
        {"q-preference-choice": "A", "reason": "because\x00"},
    )
    assert response.status_code == 400
    assert "contains a NUL character" in response.content.decode()
    assert not Adjudication.objects.exists()


def test_skip_page_refuses_an_unstorable_reason(client, password, anna, project, locked):
    client.login(username="anna", password=password)
    response = client.post(
        f"/annotation/projects/{project.pk}/skip/",
        {"item_id": locked.item_id, "reason": "tired\x00"},
        follow=True,
    )
    assert "reason: contains a NUL character" in response.content.decode()
    assert Assignment.objects.get(pk=locked.pk).status == Assignment.Status.LOCKED


def test_answers_are_still_taken(api_as, anna, project, locked):
    body = {"item": locked.item_id, "idempotency_key": "k1",
            "answer": {"preference": {"choice": "A"}, "rationale": "ünï 😀 fine"}}  # fmt: skip
    response = api_as(anna).post(
        f"{BASE}/{project.pk}/submit/", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    assert Annotation.objects.get().full_answer["rationale"] == "ünï 😀 fine"


# -- ids out of the database's range --------------------------------------------------------

HUGE = 3671302772171262132224  # found by Schemathesis: a 500 on submit


@pytest.mark.parametrize("action", ["submit", "skip", "adjudicate"])
def test_ids_beyond_64_bits_are_a_400(api_as, ada, project, action):
    body = {
        "item": HUGE,
        "answer": {"preference": {"choice": "A"}},
        "reason": "r",
        "idempotency_key": "k",
    }
    response = api_as(ada).post(f"{BASE}/{project.pk}/{action}/", body, format="json")
    assert "item" in fields_of(response)


def test_pages_take_ids_beyond_64_bits_as_no_item(client, password, anna, project, locked):
    client.login(username="anna", password=password)
    response = label_post(client, project, HUGE, answer='{"preference": {"choice": "A"}}')
    assert response.status_code == 400
    assert client.get(f"/annotation/projects/{HUGE}/label/").status_code == 404
    client.login(username="rex", password=password)
    assert client.get(f"/annotation/projects/{project.pk}/review/{HUGE}/").status_code == 404
