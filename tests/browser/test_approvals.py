"""A member of the ethics committee approves a promotion with the keyboard alone, on the
review page, under the strict Content Security Policy: the evidence (the registry's
reliability plot included) draws with no violation, every control is reached with Tab,
chosen with Space and sent with Enter."""

from __future__ import annotations

import pytest

from governance import services
from models_registry.models import ModelAlias
from tests.browser.test_content_security import reported, violations  # noqa: F401
from tests.governance.conftest import base, ethan, snapshot, version  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def focused(page) -> str:
    return page.evaluate(
        "document.activeElement && (document.activeElement.id || document.activeElement.tagName)"
    )


def tab_to(page, element_id: str, limit: int = 80) -> None:
    """Press Tab until ``element_id`` has the focus (fails if it never gets it)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused(page) == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}")


@pytest.fixture
def approval(rosa, ethan, version):  # noqa: F811
    """Rosa's request, which Ethan has approved: Eve's approval decides it."""
    request = services.approval_request_open(
        kind="model.promote", subject=version, payload={"alias": "production"},
        requested_by=rosa, justification="It beats the current one.",
    )  # fmt: skip
    services.approval_request_decide(
        request=request, reviewer=ethan, verdict="approve", rationale="Checked."
    )
    return request


def test_a_committee_member_approves_with_the_keyboard(
    page,
    live_server,
    login,
    eve,
    approval,
    violations,  # noqa: F811
):
    request = approval
    login("eve")
    page.goto(f"{live_server.url}/governance/approvals/")
    # From the queue to the request, by keyboard: Tab to its link, Enter.
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == request.title:
            break
    else:
        raise AssertionError("Tab never reached the request's link")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/governance/approvals/{request.pk}/")
    page.wait_for_selector("#chart-reliability .main-svg")  # the registry's chart, reused

    tab_to(page, "verdict-approve")
    page.keyboard.press("Space")
    assert page.is_checked("#verdict-approve")
    page.keyboard.press("Tab")
    assert focused(page) == "rationale"
    page.keyboard.type("Gates green, lineage and agreement checked.")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.type") == "submit"
    page.keyboard.press("Enter")

    page.wait_for_selector('[data-testid="status"]:has-text("carried out")')
    assert "Your decision is recorded." in page.inner_text(".messages")
    assert ModelAlias.objects.get(name="production").version_id == int(request.subject_id)
    assert reported(page, violations) == []
