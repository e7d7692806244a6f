"""A person at the keyboard: an annotator labels three items without the mouse and sees
progress advance; a reviewer adjudicates a disagreement."""

import re

import pytest

from annotation import services
from annotation.consensus import consensus_recompute
from annotation.models import Adjudication, Annotation
from governance.models import AuditEvent
from tests.annotation.conftest import pairs
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def project(rosa, anna, rex):
    project = services.project_create(created_by=rosa, name="Browser demo", overlap=3)
    services.project_member_add(project=project, user=anna, role="annotator")
    services.project_member_add(project=project, user=rex, role="reviewer")
    services.items_create_bulk(project=project, rows=pairs(6))
    # Two other annotators disagree on the first items: material for the reviewer.
    for name, choice in (("bob", "A"), ("cy", "B")):
        user = UserFactory(username=name)
        services.project_member_add(project=project, user=user, role="annotator")
        for _ in range(2):
            a = services.assignment_next(project=project, annotator=user)
            services.annotation_submit(project=project, item_id=a.item_id, annotator=user,
                                       answer={"preference": {"choice": choice}}, idempotency_key=f"{name}{a.item_id}")  # fmt: skip
    consensus_recompute(project=project)
    return project


def _done_count(page) -> int:
    text = page.get_by_test_id("progress").inner_text()
    return int(re.search(r"(\d+)\s+done", text).group(1))


def test_annotator_labels_three_items_with_the_keyboard(page, live_server, login, project, anna):
    login("anna")
    page.goto(f"{live_server.url}/annotation/projects/{project.pk}/label/")
    assert _done_count(page) == 0
    seen_items = set()
    for step, key in enumerate(["1", "2", "3"], start=1):
        form = page.locator("form[data-item-id]")
        item_id = form.get_attribute("data-item-id")
        assert item_id not in seen_items
        seen_items.add(item_id)
        page.locator("body").press("?")  # help opens and closes from the keyboard
        assert page.get_by_test_id("help").is_visible()
        page.keyboard.press("Escape")
        assert not page.get_by_test_id("help").is_visible()
        page.keyboard.press(key)
        choice = {"1": "A", "2": "B", "3": "tie"}[key]
        assert page.get_by_test_id("choice").get_attribute("data-choice") == choice
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert _done_count(page) == step
        assert page.get_by_test_id("session-count").inner_text().strip() == str(step)
    answers = dict(
        Annotation.objects.filter(annotator=anna).values_list(
            "item_id", "answer__preference__choice"
        )
    )
    assert sorted(answers.values()) == ["A", "B", "tie"]
    assert {str(i) for i in answers} == seen_items


def test_enter_without_a_choice_submits_nothing(page, live_server, login, project, anna):
    login("anna")
    page.goto(f"{live_server.url}/annotation/projects/{project.pk}/label/")
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert Annotation.objects.filter(annotator=anna).count() == 0


def test_reviewer_adjudicates_a_disagreement(page, live_server, login, project, rex):
    login("rex")
    page.goto(f"{live_server.url}/annotation/projects/{project.pk}/review/")
    queue = page.get_by_test_id("review-queue")
    first = queue.locator("a[data-queue-link]").first
    item_id = int(first.locator("xpath=ancestor::tr").get_attribute("data-item-id"))
    first.click()
    page.get_by_test_id("answers").wait_for()
    assert page.get_by_test_id("answers").locator("tbody tr").count() == 2
    page.locator("#adjudicate-form").get_by_label("B is better").check()
    page.fill("#adjudication-reason", "B answers the question politely")
    page.get_by_test_id("adjudicate").click()
    page.wait_for_load_state()
    adjudication = Adjudication.objects.get(item_id=item_id)
    assert adjudication.label == 2 and adjudication.reviewer == rex
    assert AuditEvent.objects.filter(action="item.adjudicate", object_id=str(item_id)).exists()
    page.goto(f"{live_server.url}/annotation/projects/{project.pk}/review/")
    assert page.locator(f"tr[data-item-id='{item_id}']").count() == 0  # it left the queue
