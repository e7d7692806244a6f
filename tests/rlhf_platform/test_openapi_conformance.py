"""The live API against its own OpenAPI schema, with Schemathesis.

A real server (pytest-django's live server, on a free port) over a seeded database; the
Schemathesis CLI reads ``/api/schema/`` from it and sends generated requests — valid and
invalid — to every operation as an admin, a bounded number per operation so the whole
test stays well under a minute.  It must find no 5xx, and every answer must conform to
the schema: a documented status code, a documented content type, a body that matches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from annotation import exports, services
from tests.annotation.conftest import label, pairs

pytestmark = [pytest.mark.schemathesis, pytest.mark.django_db(transaction=True)]

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# Bounded so the test fits CI (about 280 cases, ~35 s); raise them for a deeper run, e.g.
# SCHEMATHESIS_PHASES=examples,coverage,fuzzing SCHEMATHESIS_MAX_EXAMPLES=50 make test
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10")  # per operation
PHASES = os.environ.get("SCHEMATHESIS_PHASES", "fuzzing")


def _seed(*, ada, rosa, anna, ben) -> None:
    """A project with items, answers and a snapshot, so generated ids can hit real rows."""
    project = services.project_create(created_by=rosa, name="Seeded", overlap=2)
    for user in (anna, ben, ada):
        services.project_member_add(project=project, user=user, role="annotator")
    services.items_create_bulk(project=project, rows=pairs(6))
    for user in (anna, ben):
        label(project, user, "A")
    exports.dataset_export(project=project, fmt="trl", user=rosa, filters={})


def test_the_api_conforms_to_its_schema(live_server, ada, rosa, anna, ben, tmp_path):
    _seed(ada=ada, rosa=rosa, anna=anna, ben=ben)
    token = Token.objects.create(user=ada)
    report = tmp_path / "report.json"
    command = [
        str(SCHEMATHESIS), "run", f"{live_server.url}/api/schema/",
        "--header", f"Authorization: Token {token.key}",
        "--checks", ",".join(CHECKS),
        "--max-examples", MAX_EXAMPLES,
        "--phases", PHASES,
        "--seed", "1",
        "--workers", "1",
        "--request-timeout", "20",
        "--no-shrink",
        "--suppress-health-check", "all",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    output = run.stdout + run.stderr
    print(output)  # shown by pytest when the test fails
    assert run.returncode == 0, output[-12000:]
    summary = json.loads(report.read_text())
    assert summary["test_cases"]["generated"] > 0
    assert summary["test_cases"]["with_failures"] == 0
    assert summary["operations"]["tested"] == summary["operations"]["total"]
