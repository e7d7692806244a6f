"""The control-chart, model-evolution and preference pages in a real browser: every chart
draws from its /api/monitoring/ answer under the app's strict policy, with no policy
violation, script error or console error."""

from __future__ import annotations

import pytest

from annotation import services as annotation_services
from monitoring import preferences
from tests.browser.test_content_security import reported, violations  # noqa: F401
from tests.monitoring.conftest import snapshot, version  # noqa: F401
from tests.monitoring.test_charts import CORRECT
from tests.monitoring.votes import Voter, history_make, outcomes_day_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def watched(version, rosa, vic):  # noqa: F811
    for day, correct in enumerate(CORRECT):
        outcomes_day_make(version=version, day=day, correct=correct)
    project, users = history_make(
        researcher=rosa, voters=[Voter("pia"), Voter("quin", day=5, lead_ms_after=900)],
        days=8, items_per_day=10, seed=2,
    )  # fmt: skip
    annotation_services.project_member_add(project=project, user=vic, role="viewer")
    preferences.preference_points_refresh(project_id=project.pk)
    return version, project, users


#: What Chromium logs for a policy violation; each also raises a securitypolicyviolation
#: event, which ``reported`` checks precisely (it knows the one expected of plotly.js).
CSP_CONSOLE = "violates the following Content Security Policy directive"


def _console_errors(page) -> list[str]:
    """Console errors other than policy violations (checked through ``reported``)."""
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and CSP_CONSOLE not in m.text else None
        ),
    )
    return errors


def test_the_new_charts_draw_without_errors(page, live_server, login, vic, watched, violations):  # noqa: F811
    version, project, users = watched  # noqa: F811
    console = _console_errors(page)
    login("vic")
    pages = {
        f"/monitoring/control/?version={version.pk}&project={project.pk}&we=1": [
            "#chart-accuracy-spc", "#chart-agreement-spc",
        ],
        f"/monitoring/evolution/?model={version.registered_model.name}": [
            "#chart-evolution-accuracy", "#chart-evolution-ece", "#chart-evolution-reliability",
            "#chart-evolution-compare",
        ],
        f"/monitoring/preferences/?project={project.pk}&annotator={users['quin'].pk}&metric=speed": [
            "#chart-preference-shares", "#chart-preference-agreement", "#chart-annotator",
        ],
    }  # fmt: skip
    for path, charts in pages.items():
        page.goto(f"{live_server.url}{path}")
        for chart in charts:
            page.wait_for_selector(f"{chart} .main-svg")
        assert reported(page, violations) == [], path
    # The accuracy collapse of the last day is marked out of control.
    page.goto(f"{live_server.url}/monitoring/control/?version={version.pk}")
    page.wait_for_selector("#chart-accuracy-spc .main-svg")
    assert page.locator("#chart-accuracy-spc .legendtext", has_text="out of control").count() == 1
    assert console == []
