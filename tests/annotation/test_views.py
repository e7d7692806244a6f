"""The annotation web UI, as the personas use it.

Rosa (researcher) runs the "Helpfulness" project; Anna and Ben label in it, Rex reviews.
Vic (viewer) and Nobody are not members: the project does not exist for them.
"""

from __future__ import annotations

import io
import json
import re

import pytest

from annotation import services
from annotation.consensus import consensus_recompute
from annotation.models import Adjudication, Annotation, Assignment, DatasetSnapshot, Item, Project
from governance.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(rosa, anna, ben, rex):
    project = services.project_create(
        created_by=rosa, name="Helpfulness", overlap=2, guidelines="Prefer **helpful** answers."
    )
    for user, role in ((anna, "annotator"), (ben, "annotator"), (rex, "reviewer")):
        services.project_member_add(project=project, user=user, role=role)
    services.items_create_bulk(
        project=project,
        rows=[
            {"external_id": f"q{i}", "prompt": f"Question {i}?", "responses": [f"a{i}", f"b{i}"]}
            for i in range(3)
        ],
    )
    return project


@pytest.fixture
def login(client, password):
    def as_user(user):
        assert client.login(username=user.username, password=password)
        return client

    return as_user


def url(project, page="", *rest):
    tail = "/".join(str(part) for part in rest)
    return f"/annotation/projects/{project.pk}/{page}{tail + '/' if tail else ''}"


def label_page(client, project) -> tuple[int, str, str]:
    """Open the labelling page; return (item id, idempotency key, html)."""
    response = client.get(url(project, "label/"))
    assert response.status_code == 200
    html = response.content.decode()
    item_id = int(re.search(r'data-item-id="(\d+)"', html).group(1))
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    return item_id, key, html


def answer(choice="A", **extra):
    return json.dumps({"preference": {"choice": choice, **extra}, "rationale": "clearer"})


def label_directly(project, user, choice):
    """Label the user's next item through the services (test set-up, not under test)."""
    assignment = services.assignment_next(project=project, annotator=user)
    services.annotation_submit(
        project=project,
        item_id=assignment.item_id,
        annotator=user,
        answer={"preference": {"choice": choice}},
        idempotency_key=f"{user.username}-{assignment.item_id}",
    )
    return assignment.item_id


# --- Annotators ----------------------------------------------------------------------------


def test_annotator_labels_an_item_through_the_form(project, anna, login):
    client = login(anna)
    item_id, key, html = label_page(client, project)
    for testid in ("progress", "session-count", "response-0", "response-1", "choice", "submit",
                   "help"):  # fmt: skip
        assert f'data-testid="{testid}"' in html
    assert "<strong>helpful</strong>" in html  # guidelines rendered from Markdown
    assert "q0" not in html  # annotators never see the external id

    response = client.post(
        url(project, "label/"),
        {"item_id": item_id, "idempotency_key": key, "answer": answer("B", strength=3)},
    )

    assert response.status_code == 302 and response["Location"] == url(project, "label/")
    annotation = Annotation.objects.get(annotator=anna)
    assert (annotation.item_id, annotation.label, annotation.strength) == (item_id, 2, 3)
    assert annotation.full_answer["rationale"] == "clearer"
    next_item, _, html = label_page(client, project)
    assert next_item != item_id
    assert re.search(r'data-testid="session-count">1<', html)


def test_the_form_works_without_javascript(project, anna, login):
    client = login(anna)
    item_id, key, _ = label_page(client, project)
    client.post(
        url(project, "label/"),
        {"item_id": item_id, "idempotency_key": key, "answer": "",
         "q-preference-choice": "A", "q-preference-strength": "1", "q-rationale": "shorter"},
    )  # fmt: skip
    annotation = Annotation.objects.get(annotator=anna)
    assert annotation.full_answer == {
        "preference": {"choice": "A", "strength": 1},
        "rationale": "shorter",
    }


def test_a_double_submit_creates_one_annotation(project, anna, login):
    client = login(anna)
    item_id, key, _ = label_page(client, project)
    data = {"item_id": item_id, "idempotency_key": key, "answer": answer("A")}
    first = client.post(url(project, "label/"), data)
    again = client.post(url(project, "label/"), data)
    assert first.status_code == again.status_code == 302
    assert Annotation.objects.filter(annotator=anna).count() == 1


@pytest.mark.parametrize(
    ("posted", "field"),
    [
        (answer("C"), "answer.preference.choice"),
        (json.dumps({"rationale": "no choice"}), "answer.preference"),
        ("{not json", "answer"),
    ],
)
def test_an_invalid_answer_is_a_400_naming_the_field_and_stores_nothing(
    project, anna, login, posted, field
):
    client = login(anna)
    item_id, key, _ = label_page(client, project)
    response = client.post(
        url(project, "label/"), {"item_id": item_id, "idempotency_key": key, "answer": posted}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert f"<code>{field}</code>" in html
    assert f'data-item-id="{item_id}"' in html and key in html  # same item, same key
    assert not Annotation.objects.exists()


def test_label_page_is_blind_to_other_annotators(project, anna, ben, login):
    ben_item = services.assignment_next(project=project, annotator=ben).item_id
    services.annotation_submit(
        project=project, item_id=ben_item, annotator=ben, idempotency_key="k",
        answer={"preference": {"choice": "B"}, "rationale": "BEN-SECRET"},
    )  # fmt: skip
    consensus_recompute(project=project)
    item_id, _, html = label_page(login(anna), project)
    assert item_id == ben_item  # the item nearest completion comes first
    assert "BEN-SECRET" not in html and "ben" not in html.lower().replace("benefit", "")
    assert "consensus" not in html.lower()


def test_skip_gives_the_item_back(project, anna, login):
    client = login(anna)
    item_id, _, _ = label_page(client, project)
    response = client.post(url(project, "skip/"), {"item_id": item_id})
    assert response.status_code == 302
    assert Assignment.objects.get(annotator=anna, item_id=item_id).status == "skipped"
    assert label_page(client, project)[0] != item_id


def test_skip_needs_a_reason_when_the_project_asks_for_one(project, anna, login):
    services.project_update(project=project, skip_policy=Project.SkipPolicy.REASON)
    client = login(anna)
    item_id, _, html = label_page(client, project)
    assert 'id="skip-reason"' in html
    response = client.post(url(project, "skip/"), {"item_id": item_id}, follow=True)
    assert "reason" in response.content.decode()
    assert Assignment.objects.get(annotator=anna, item_id=item_id).status == "locked"


def test_an_annotator_who_is_done_is_told_so(project, anna, login):
    for _ in range(3):
        label_directly(project, anna, "A")
    response = login(anna).get(url(project, "label/"))
    assert response.status_code == 200 and b'data-testid="done"' in response.content


def test_queue_page_shows_progress_and_guidelines(project, anna, login):
    label_directly(project, anna, "A")
    html = login(anna).get(url(project, "queue/")).content.decode()
    assert "<strong>helpful</strong>" in html
    assert re.search(r"<strong>1</strong> done / <strong>2</strong> available", html)
    assert url(project, "label/") in html


# --- Who may see what ----------------------------------------------------------------------


@pytest.mark.parametrize("page", ["", "queue/", "label/", "review/", "review/{item}/"])
def test_non_members_get_404(project, vic, nobody, login, page):
    item = Item.objects.filter(project=project).first()
    for outsider in (vic, nobody):
        assert login(outsider).get(url(project, page.format(item=item.pk))).status_code == 404


def test_anonymous_users_are_sent_to_login(project, client):
    response = client.get(url(project, "label/"))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_annotators_get_403_on_review_pages(project, anna, login):
    client = login(anna)
    item = Item.objects.filter(project=project).first()
    assert client.get(url(project, "review/")).status_code == 403
    assert client.get(url(project, "review/", item.pk)).status_code == 403
    response = client.post(url(project, "review/", item.pk), {"q-preference-choice": "A"})
    assert response.status_code == 403
    assert not Adjudication.objects.exists()


def test_reviewers_cannot_label(project, rex, login):
    assert login(rex).get(url(project, "label/")).status_code == 403


def test_project_list_offers_what_each_user_may_do(project, anna, rex, vic, login):
    html = login(anna).get("/annotation/").content.decode()
    assert "Helpfulness" in html and "Start labelling" in html
    assert url(project, "review/") not in html and "New project" not in html
    html = login(rex).get("/annotation/").content.decode()
    assert url(project, "review/") in html and "Start labelling" not in html
    assert "Helpfulness" not in login(vic).get("/annotation/").content.decode()


def test_researcher_creates_a_project_from_the_list(rosa, anna, login):
    response = login(rosa).post(
        "/annotation/", {"name": "Safety", "guidelines": "", "overlap": 3, "gold_ratio": 0.1}
    )
    created = Project.objects.get(name="Safety")
    assert response.status_code == 302 and response["Location"] == url(created)
    assert created.blind is False and created.gold_ratio == 0.1
    assert login(rosa).post("/annotation/", {"name": "", "overlap": 0}).status_code == 400
    assert login(anna).post("/annotation/", {"name": "Mine", "overlap": 3}).status_code == 403
    assert not Project.objects.filter(name="Mine").exists()


# --- Reviewers -----------------------------------------------------------------------------


def test_reviewer_adjudicates_a_disagreement(project, anna, ben, rex, login):
    item_id = label_directly(project, anna, "A")
    assert label_directly(project, ben, "B") == item_id
    consensus_recompute(project=project)
    client = login(rex)
    queue = client.get(url(project, "review/")).content.decode()
    assert url(project, "review/", item_id) in queue

    page = client.get(url(project, "review/", item_id)).content.decode()
    assert "anna" in page and "ben" in page and "Dawid–Skene" in page

    missing_reason = client.post(url(project, "review/", item_id), {"q-preference-choice": "B"})
    assert missing_reason.status_code == 400 and b"<code>reason</code>" in missing_reason.content
    assert not Adjudication.objects.exists()

    response = client.post(
        url(project, "review/", item_id),
        {"q-preference-choice": "B", "q-preference-strength": "2", "reason": "B cites sources"},
    )
    assert response.status_code == 302 and response["Location"] == url(project, "review/")
    adjudication = Adjudication.objects.get(item_id=item_id)
    assert (adjudication.label, adjudication.reviewer, adjudication.reason) == (
        2,
        rex,
        "B cites sources",
    )
    assert AuditEvent.objects.filter(action="item.adjudicate", actor_username="rex").exists()
    assert (
        url(project, "review/", item_id) not in client.get(url(project, "review/")).content.decode()
    )


# --- Dashboard, imports, exports -----------------------------------------------------------


def test_dashboard_serves_every_asset_itself(project, anna, ben, rosa, login, client):
    label_directly(project, anna, "A")
    label_directly(project, ben, "A")
    consensus_recompute(project=project)
    response = login(rosa).get(url(project))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<script src="/static/vendor/plotly/plotly.min.js"' in html
    assert '<script src="/static/js/charts.js"' in html
    assert 'id="dashboard-data"' in html and 'data-testid="annotators"' in html
    assert "http://" not in html and "https://" not in html
    assert client.get("/static/vendor/plotly/plotly.min.js").status_code == 200


def test_annotators_do_not_see_their_peers_quality(project, anna, ben, login):
    label_directly(project, ben, "A")
    consensus_recompute(project=project)
    html = login(anna).get(url(project)).content.decode()
    assert 'data-testid="annotators"' not in html
    assert "Import items" not in html and "Recompute now" not in html


def test_recompute_now_is_for_reviewers_and_researchers(project, anna, rex, login):
    assert login(anna).post(url(project, "recompute/")).status_code == 403
    assert not project.stats.exists()
    assert login(rex).post(url(project, "recompute/")).status_code == 302
    assert project.stats.count() == 1


def test_export_through_the_form_and_download_the_snapshot(project, anna, ben, rosa, vic, login):
    label_directly(project, anna, "A")
    label_directly(project, ben, "A")
    consensus_recompute(project=project)
    client = login(rosa)
    response = client.post(
        url(project, "export/"), {"format": "trl", "min_confidence": "0", "include_ties": "on"}
    )
    assert response.status_code == 302
    snapshot = DatasetSnapshot.objects.get(project=project)
    assert snapshot.row_count == 1 and snapshot.filters["include_ties"] is True
    download_url = url(project, "snapshots/", snapshot.pk, "download")
    assert download_url in client.get(url(project)).content.decode()

    download = client.get(download_url)
    assert download.status_code == 200
    body = b"".join(download.streaming_content)
    with snapshot.file.open("rb") as handle:
        assert body == handle.read()
    assert json.loads(body.splitlines()[0])["prompt"] == "Question 0?"
    assert login(vic).get(download_url).status_code == 404


def test_export_needs_the_export_permission(project, anna, login):
    response = login(anna).post(url(project, "export/"), {"format": "trl", "min_confidence": "0"})
    assert response.status_code == 403
    assert not DatasetSnapshot.objects.exists()


def test_import_with_a_bad_row_names_the_line_and_imports_nothing(project, rosa, login):
    before = Item.objects.filter(project=project).count()
    rows = [{"prompt": "fine", "responses": ["x", "y"]}, {"prompt": "one", "responses": ["x"]}]
    upload = io.BytesIO("".join(json.dumps(row) + "\n" for row in rows).encode())
    upload.name = "items.jsonl"
    response = login(rosa).post(url(project, "import/"), {"file": upload, "format": "jsonl"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Line 2: responses" in html and "Nothing was imported" in html
    assert Item.objects.filter(project=project).count() == before


def test_import_adds_items(project, rosa, login):
    upload = io.BytesIO(b"prompt,response_a,response_b\nWhy?,Because,No idea\n")
    upload.name = "items.csv"
    response = login(rosa).post(url(project, "import/"), {"file": upload, "format": "auto"})
    assert response.status_code == 302
    assert Item.objects.filter(project=project, prompt="Why?").exists()


def test_non_blind_projects_show_how_others_answered_the_last_item(
    client, password, rosa, anna, ben
):
    project = services.project_create(created_by=rosa, name="Open", overlap=2, blind=False)
    for user in (anna, ben):
        services.project_member_add(project=project, user=user, role="annotator")
    services.items_create_bulk(
        project=project, rows=[{"prompt": f"p{i}", "responses": ["a", "b"]} for i in range(3)]
    )
    first = services.assignment_next(project=project, annotator=ben)
    services.annotation_submit(project=project, item_id=first.item_id, annotator=ben,
                               answer={"preference": {"choice": "B"}}, idempotency_key="b1")  # fmt: skip
    client.login(username="anna", password=password)
    url = f"/annotation/projects/{project.pk}/label/"
    page = client.get(url)
    assert b'data-testid="previous"' not in page.content  # nothing answered yet
    item_id = Assignment.objects.get(annotator=anna, status="locked").item_id
    assert item_id == first.item_id  # nearest to completion comes first
    client.post(url, {"item_id": item_id, "idempotency_key": "a1", "q-preference-choice": "A"})
    page = client.get(url).content.decode()
    assert 'data-testid="previous"' in page and "B × 1" in page


def test_blind_projects_never_show_others_answers(client, password, project, anna, ben):
    first = services.assignment_next(project=project, annotator=ben)
    services.annotation_submit(project=project, item_id=first.item_id, annotator=ben,
                               answer={"preference": {"choice": "B"}}, idempotency_key="b1")  # fmt: skip
    client.login(username="anna", password=password)
    url = f"/annotation/projects/{project.pk}/label/"
    client.get(url)
    item_id = Assignment.objects.get(annotator=anna, status="locked").item_id
    client.post(url, {"item_id": item_id, "idempotency_key": "a1", "q-preference-choice": "A"})
    assert b'data-testid="previous"' not in client.get(url).content


def test_annotators_see_their_own_quality(client, password, project, anna, ben):
    for user in (anna, ben):
        a = services.assignment_next(project=project, annotator=user)
        services.annotation_submit(project=project, item_id=a.item_id, annotator=user,
                                   answer={"preference": {"choice": "A"}}, idempotency_key=f"k{user.pk}")  # fmt: skip
    consensus_recompute(project=project)
    client.login(username="anna", password=password)
    page = client.get(f"/annotation/projects/{project.pk}/queue/").content.decode()
    assert 'data-testid="own-quality"' in page and "100%" in page
