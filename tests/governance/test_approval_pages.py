"""The review pages, the API for programs, and the admin's refusal of a direct alias move.

Eve (ethics committee) reviews; Anna (annotator), Vic (viewer) and Nobody get nothing;
Rosa (researcher) asked, so she reads her request but cannot decide it."""

from __future__ import annotations

import pytest

from governance import services
from governance.models import ApprovalRequest, AuditEvent
from models_registry import services as models_services
from models_registry.models import ModelAlias

pytestmark = pytest.mark.django_db


@pytest.fixture
def request_open(rosa, version):
    return services.approval_request_open(
        kind="model.promote", subject=version, payload={"alias": "production"},
        requested_by=rosa, justification="It beats the current one.",
    )  # fmt: skip


def signed_in(client, user, password):
    assert client.login(username=user.username, password=password)
    return client


def test_the_committee_reads_the_queue_and_the_evidence(client, password, eve, request_open):
    signed_in(client, eve, password)
    queue = client.get("/governance/approvals/")
    assert queue.status_code == 200
    assert request_open.title in queue.content.decode()
    page = client.get(f"/governance/approvals/{request_open.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    for section in ("summary", "gates", "evidence-change", "evidence-metrics",
                    "evidence-calibration", "evidence-lineage", "evidence-alerts", "decide-form"):  # fmt: skip
        assert f'data-testid="{section}"' in html, section
    assert "It beats the current one." in html  # the justification, decrypted for readers
    assert 'id="reliability-data"' in html and "js/models.js" in html  # the registry's chart
    assert "Krippendorff" in html and "0.820" in html  # the snapshot's agreement
    assert "<script>" not in html and "style=" not in html
    assert 'for="rationale"' in html and 'name="rationale"' in html and "required" in html


@pytest.mark.parametrize("persona", ["anna", "vic", "nobody"])
def test_others_are_refused(client, password, persona, request, request_open):
    user = request.getfixturevalue(persona)
    signed_in(client, user, password)
    assert client.get("/governance/approvals/").status_code == 403
    assert client.get(f"/governance/approvals/{request_open.pk}/").status_code == 403
    response = client.post(
        f"/governance/approvals/{request_open.pk}/", {"verdict": "approve", "rationale": "x"}
    )
    assert response.status_code == 403
    assert not request_open.decisions.exists()


def test_anonymous_users_are_sent_to_log_in(client, request_open):
    response = client.get(f"/governance/approvals/{request_open.pk}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_requester_reads_but_cannot_decide(client, password, rosa, request_open):
    signed_in(client, rosa, password)
    html = client.get(f"/governance/approvals/{request_open.pk}/").content.decode()
    assert 'data-testid="cannot-decide"' in html and "you cannot decide it" in html
    response = client.post(
        f"/governance/approvals/{request_open.pk}/", {"verdict": "approve", "rationale": "mine"}
    )
    assert response.status_code == 403 and not request_open.decisions.exists()


def test_deciding_on_the_page(client, password, eve, ethan, rosa, request_open, version):
    signed_in(client, eve, password)
    url = f"/governance/approvals/{request_open.pk}/"
    missing = client.post(url, {"verdict": "approve", "rationale": "  "})
    assert missing.status_code == 400 and "Rationale: is required" in missing.content.decode()
    done = client.post(url, {"verdict": "approve", "rationale": "Lineage and gates checked."})
    assert done.status_code == 302 and done["Location"] == url
    again = client.post(url, {"verdict": "approve", "rationale": "twice"})
    assert again.status_code == 409
    signed_in(client, ethan, password)
    client.post(url, {"verdict": "approve", "rationale": "Agreed."})
    request_open.refresh_from_db()
    assert request_open.status == "executed"
    assert ModelAlias.objects.get(name="production").version == version
    # Rosa finds the outcome among her updates on the queue page.
    signed_in(client, rosa, password)
    queue = client.get("/governance/approvals/?status=all").content.decode()
    assert "Updates on your requests" in queue and "ethan" in queue


def test_queue_filters(client, password, eve, request_open, version):
    signed_in(client, eve, password)
    project = version.snapshot.project_id
    assert (
        request_open.title
        in client.get(f"/governance/approvals/?project={project}").content.decode()
    )
    assert (
        request_open.title
        not in client.get(f"/governance/approvals/?project={project + 1}").content.decode()
    )
    assert (
        request_open.title
        not in client.get("/governance/approvals/?kind=dataset.release").content.decode()
    )
    assert (
        request_open.title
        not in client.get("/governance/approvals/?status=executed").content.decode()
    )
    for bad in ("project=abc", "kind=nope", "status=nope"):
        assert client.get(f"/governance/approvals/?{bad}").status_code == 400, bad


def test_the_api_opens_and_decides(api_as, rosa, eve, ethan, version):
    opened = api_as(rosa).post(
        "/api/governance/approval-requests/",
        {"kind": "model.promote", "subject": str(version.pk), "payload": {"alias": "production"},
         "justification": "Ready."},
        format="json",
    )  # fmt: skip
    assert opened.status_code == 201, opened.json()
    body = opened.json()
    assert body["status"] == "pending" and {g["gate"] for g in body["gates"]} >= {
        "heldout_accuracy"
    }
    url = f"/api/governance/approval-requests/{body['id']}/decide/"
    mine = api_as(rosa).post(url, {"verdict": "approve", "rationale": "me"}, format="json")
    assert mine.status_code == 403
    bad = api_as(eve).post(url, {"verdict": "maybe"}, format="json")
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"verdict", "rationale"}
    api_as(eve).post(url, {"verdict": "approve", "rationale": "ok"}, format="json")
    final = api_as(ethan).post(url, {"verdict": "approve", "rationale": "ok"}, format="json")
    assert final.status_code == 200 and final.json()["status"] == "executed"
    assert [d["reviewer"] for d in final.json()["decisions"]] == ["eve", "ethan"]
    listed = api_as(eve).get("/api/governance/approval-requests/?status=executed").json()
    assert [r["id"] for r in listed["results"]] == [body["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "nope", "subject": "1", "justification": "x"}, "kind"),
        ({"kind": "model.promote", "subject": "999999", "justification": "x"}, "subject"),
        ({"kind": "model.promote", "subject": "x", "payload": {"alias": "p"}}, "justification"),
        ({"kind": "model.promote", "subject": "{v}", "payload": [], "justification": "x"}, "payload"),
        ({"kind": "model.promote", "subject": "{v}", "payload": {}, "justification": "x"},
         "payload.alias"),
    ],
)  # fmt: skip
def test_bad_api_requests_name_the_field(api_as, rosa, version, body, field):
    body = {
        k: (v.replace("{v}", str(version.pk)) if isinstance(v, str) else v) for k, v in body.items()
    }
    response = api_as(rosa).post("/api/governance/approval-requests/", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
    assert not ApprovalRequest.objects.exists()


def test_a_gate_failure_answers_409_through_the_api(api_as, rosa, eve, ethan, snapshot, base):
    from tests.governance.conftest import version_make

    weak = version_make(snapshot=snapshot, base=base, accuracy=0.5, name="weak-rm")
    opened = api_as(rosa).post(
        "/api/governance/approval-requests/",
        {"kind": "model.promote", "subject": str(weak.pk), "payload": {"alias": "production"},
         "justification": "Try."},
        format="json",
    )  # fmt: skip
    url = f"/api/governance/approval-requests/{opened.json()['id']}/decide/"
    blocked = api_as(eve).post(url, {"verdict": "approve", "rationale": "ok"}, format="json")
    assert blocked.status_code == 409
    assert "Held-out accuracy" in blocked.json()["error"]["message"]


def test_a_direct_alias_move_in_the_admin_is_refused_and_audited(client, password, ada, version):
    models_services.model_alias_set(
        registered_model=version.registered_model, alias="production", version=version
    )
    alias = ModelAlias.objects.get()
    signed_in(client, ada, password)
    change = client.post(
        f"/admin/models_registry/modelalias/{alias.pk}/change/", {"name": "production"}
    )
    assert change.status_code == 403 and "approved request" in change.content.decode()
    delete = client.post(f"/admin/models_registry/modelalias/{alias.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    add = client.post("/admin/models_registry/modelalias/add/", {"name": "staging"})
    assert add.status_code == 403
    assert ModelAlias.objects.get().version == version
    refused = AuditEvent.objects.filter(action="approval.bypass_refused")
    assert [(e.after["channel"], e.after["alias"]) for e in refused] == [
        ("admin", "production"), ("admin", "production"), ("admin", "staging"),
    ]  # fmt: skip
    assert refused.first().actor_username == "ada"
    # Reading the alias in the admin still works.
    assert client.get(f"/admin/models_registry/modelalias/{alias.pk}/change/").status_code == 200
