"""The monitoring pages in a real browser: the attunement dashboard draws its charts from
calibration.json under the app's strict policy, and a real Evidently report runs inside
its sandboxed frame under its own policy — with no violation reported by either, and no
way from the frame's scripts to the app's page or cookies."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from django.core.files.base import ContentFile

from monitoring import drift, selectors, services
from monitoring.models import DriftReport
from tests.browser.test_content_security import reported, violations  # noqa: F401
from tests.monitoring.conftest import T0, outcomes_make, snapshot, version  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _frame(rng, shift: float) -> pd.DataFrame:
    p = np.clip(rng.normal(0.6 + shift, 0.15, 200), 0.01, 0.99)
    return pd.DataFrame(
        {
            "p_a": p,
            "margin": np.log(p / (1 - p)),
            "confidence": np.maximum(p, 1 - p),
            "label": rng.choice(["a", "b"], 200),
            "error": rng.choice(["yes", "no"], 200),
        }
    )


@pytest.fixture
def watched(version):  # noqa: F811
    day2 = T0 + timedelta(days=1)
    outcomes_make(version=version, probs=[0.9, 0.8, 0.3, 0.6], labels=[1, 1, 0, 0], at=T0)
    outcomes_make(version=version, probs=[0.9, 0.7], labels=[0, 1], at=day2)
    services.metric_points_update(version=version, times=[T0, day2])
    rng = np.random.default_rng(0)
    result, _, html = drift.drift_evidently(
        _frame(rng, 0.0), _frame(rng, 0.2),
        numerical=selectors.DRIFT_NUMERICAL, categorical=selectors.DRIFT_CATEGORICAL,
    )  # fmt: skip
    report = DriftReport.objects.create(
        version=version, method="evidently", status="done", reference_start=T0,
        reference_end=day2, current_start=day2, current_end=day2, result=result,
        dataset_drift=result["dataset_drift"],
    )  # fmt: skip
    report.html.save(f"drift-{report.pk}.html", ContentFile(html.encode()))
    return report


def test_dashboard_charts_draw(page, live_server, login, vic, watched, violations):  # noqa: F811
    login("vic")
    page.goto(f"{live_server.url}/monitoring/?version={watched.version_id}&window=day")
    page.wait_for_selector("#chart-trend .main-svg")
    page.wait_for_selector("#chart-reliability .main-svg")
    assert reported(page, violations) == []


def test_evidently_report_runs_in_its_sandbox(page, live_server, login, vic, watched, violations):  # noqa: F811
    login("vic")
    page.goto(f"{live_server.url}/monitoring/drift/{watched.pk}/")
    page.wait_for_selector("iframe.report-frame")
    frame = page.frame_locator("iframe.report-frame")
    frame.get_by_text("Share of Drifted Columns").wait_for()  # its scripts ran and drew
    inner = next(f for f in page.frames if f.url.endswith("/evidently.html"))
    assert inner.evaluate("window.__csp") == []
    # An opaque origin: the report's scripts reach neither the page nor the session.
    reach = "() => { try { return [parent.document.title, document.cookie]; } catch (e) { return e.name; } }"
    assert inner.evaluate(reach) == "SecurityError"
    assert reported(page, violations) == []
