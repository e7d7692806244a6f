"""The strict Content Security Policy, in a real browser: the pages that run scripts work
under it and the browser reports no violation — the dashboard's plotly.js charts, the
Swagger UI, the labelling page and the admin console."""

import pytest

from annotation import services
from annotation.consensus import consensus_recompute
from tests.annotation.conftest import pairs

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


# plotly.js 3+ also injects MapLibre's stylesheet (for map traces) as an inline <style>
# with content; the policy blocks it, which costs nothing here: no page draws a map.
PLOTLY_MAP_STYLES = ("style-src-elem", "/static/vendor/plotly/plotly.min.js")


@pytest.fixture
def violations(page):
    """Every CSP violation (the browser's securitypolicyviolation events) and script error
    on the pages the test visits, read with :func:`reported`."""
    page.add_init_script(
        "window.__csp = [];"
        "document.addEventListener('securitypolicyviolation', e => window.__csp.push("
        "[e.effectiveDirective, new URL(e.sourceFile || location.href).pathname, e.blockedURI]));"
    )
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"script error: {error}"))
    return errors


def reported(page, errors) -> list:
    found = [tuple(v) for v in page.evaluate("window.__csp")]
    return [v for v in found if v[:2] != PLOTLY_MAP_STYLES] + errors


@pytest.fixture
def project(rosa, anna):
    project = services.project_create(created_by=rosa, name="CSP demo", overlap=1)
    services.project_member_add(project=project, user=anna, role="annotator")
    services.items_create_bulk(project=project, rows=pairs(3))
    consensus_recompute(project=project)  # a first history row: the charts draw
    return project


def test_dashboard_charts_draw(page, live_server, login, project, violations):
    login("rosa")
    page.goto(f"{live_server.url}/annotation/projects/{project.pk}/")
    page.wait_for_selector("#chart-agreement .main-svg")
    page.wait_for_selector("#chart-progress .main-svg")
    # plotly.js's own stylesheet got its rules (through the CSSOM) under the policy.
    assert page.evaluate("document.getElementById('plotly.js-style-global').sheet.cssRules.length")
    assert reported(page, violations) == []


def test_api_docs_render(page, live_server, login, ada, violations):
    login("ada")
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag-section")  # the schema was fetched and drawn
    assert reported(page, violations) == []


def test_labelling_page_and_admin_console(page, live_server, login, project, ada, violations):
    login("anna")
    page.goto(f"{live_server.url}/annotation/projects/{project.pk}/label/")
    page.wait_for_selector("[data-item-id]")
    page.keyboard.press("1")  # the page's script answers the keyboard
    page.wait_for_selector("[data-choice='A']")
    assert reported(page, violations) == []
    page.context.clear_cookies()
    login("ada")
    page.goto(f"{live_server.url}/admin/auth/user/{ada.pk}/change/")
    page.wait_for_selector("#user_form")
    assert reported(page, violations) == []
