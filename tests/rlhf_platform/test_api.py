"""API conventions: auth, the error shape, the schema and the docs page."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_unauthenticated_calls_are_401_with_the_error_shape(api):
    response = api.get("/api/governance/me/")
    assert response.status_code == 401
    body = response.json()["error"]
    assert body["status"] == 401 and body["code"] == "not_authenticated"
    assert body["fields"] == {} and body["request_id"] == response["X-Request-ID"]


def test_bad_token_is_401(api):
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert api.get("/api/governance/me/").status_code == 401


def test_token_and_session_auth(api_as, client, rosa, password):
    response = api_as(rosa).get("/api/governance/me/")
    assert response.status_code == 200
    assert response.json() == {
        "username": "rosa",
        "roles": ["researcher"],
        "is_superuser": False,
        "theme": "system",
    }
    client.login(username="rosa", password=password)
    assert client.get("/api/governance/me/").json()["username"] == "rosa"


def test_validation_errors_name_the_field(api_as, eve):
    response = api_as(eve).get("/api/governance/audit-events/", {"since": "not-a-date"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and "since" in error["fields"]


def test_unknown_object_is_404_in_the_error_shape(api_as, eve):
    response = api_as(eve).get("/api/governance/audit-events/999999/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_openapi_schema_and_docs(client, api_as, rosa):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    doc = schema.json()
    assert doc["openapi"].startswith("3.")
    assert "/api/governance/audit-events/" in doc["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    sidecar_js = "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    assert client.get(sidecar_js).status_code == 200


def test_programs_obtain_a_token_with_their_password(api, rosa, password):
    response = api.post("/api/auth/token/", {"username": "rosa", "password": password})
    assert response.status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert api.get("/api/governance/me/").json()["username"] == "rosa"
    wrong = APIClient().post("/api/auth/token/", {"username": "rosa", "password": "nope"})
    assert wrong.status_code == 400 and "non_field_errors" in wrong.json()["error"]["fields"]


def test_openapi_schema_is_generated_once_per_process(client):
    """The schema is the same for every caller, so it is built once, then served as built."""
    from drf_spectacular.generators import SchemaGenerator

    from rlhf_platform.views import SchemaView

    SchemaView._cache.clear()
    calls = []
    original = SchemaGenerator.get_schema

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    SchemaGenerator.get_schema = counting
    try:
        first = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        second = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    finally:
        SchemaGenerator.get_schema = original
    assert first.status_code == second.status_code == 200
    assert len(calls) == 1
    assert "/api/governance/audit-events/" in first.json()["paths"]
    assert b"/api/governance/audit-events/" in second.content  # YAML from the same dict
