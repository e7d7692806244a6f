"""The OpenAPI schema documents the error answers the API really gives, in the error shape."""

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path): op
        for path, methods in schema["paths"].items()
        for method, op in methods.items()
    }


def _error_ref(op, code: str) -> str:
    return op["responses"][code]["content"]["application/json"]["schema"]["$ref"]


def test_every_operation_documents_its_standard_errors(operations):
    for (method, path), op in operations.items():
        codes = set(op["responses"])
        if path != "/api/auth/token/":
            assert {"401", "403"} <= codes, (method, path)
        if "{" in path:
            assert "404" in codes, (method, path)
        if method in ("POST", "PUT", "PATCH") and "requestBody" in op:
            assert {"400", "415"} <= codes, (method, path)
        for code in codes - {"200", "201", "202", "204"}:
            assert _error_ref(op, code).endswith(("/Error", "/ImportError")), (method, path, code)


def test_views_add_what_is_particular_to_them(operations):
    for action in ("next", "submit", "skip"):
        assert (
            "409" in operations[("POST", f"/api/annotation/projects/{{id}}/{action}/")]["responses"]
        )
    imports = operations[("POST", "/api/annotation/projects/{id}/import/")]["responses"]
    assert {"201", "202"} <= set(imports) and _error_ref(
        imports and {"responses": imports}, "400"
    ).endswith("/ImportError")
    download = operations[("GET", "/api/annotation/snapshots/{id}/download/")]["responses"]["200"]
    assert set(download["content"]) == {
        "application/json", "application/jsonl", "application/vnd.apache.parquet", "text/csv"
    }  # fmt: skip
    recompute = operations[("POST", "/api/annotation/projects/{id}/recompute/")]["responses"]
    assert "202" in recompute and "content" in recompute["202"]


def test_unknown_api_paths_answer_404_in_the_error_shape():
    response = Client().get("/api/annotation/projects/0.5/members/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["status"] == 404
    page = Client().get("/annotation/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
