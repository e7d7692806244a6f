"""The monitoring pages: the attunement dashboard and the drift report (with its stored
Evidently page served under its own, sandboxed Content Security Policy).

Rosa (researcher), Vic (viewer) and Ada (admin) read them; Anna (annotator) gets 403 and
an anonymous visitor is sent to the login page.  Only Ada may acknowledge an alert, and
doing so from the page goes through the service: the alert changes and the audit trail
says who did it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile

from governance.models import AuditEvent
from monitoring import services
from monitoring.models import Alert, DriftReport
from tests.conftest import csp_directives

from .conftest import T0, outcomes_make

pytestmark = pytest.mark.django_db

EVIDENTLY_PAGE = b"<html><head><script>render()</script></head><body>drift</body></html>"


@pytest.fixture
def watched(version, rosa):
    """Two days of outcomes (the second one worse), their points, detectors, a firing
    alert and an Evidently report with its HTML."""
    services.alert_rule_create(
        user=rosa, name="accuracy low", metric="accuracy", comparator="lt", threshold=0.5,
        window="hour", cooldown=timedelta(hours=1), registered_model=version.registered_model,
    )  # fmt: skip
    day2 = T0 + timedelta(days=1)
    first = outcomes_make(version=version, probs=[0.9, 0.8, 0.3], labels=[1, 1, 0], at=T0)
    second = outcomes_make(version=version, probs=[0.9, 0.9], labels=[0, 0], at=day2)
    services.metric_points_update(version=version, times=[T0, day2])
    services.detectors_update(version=version, outcomes=first + second)
    alert = services.alert_rules_evaluate(version=version, now=day2)[0]
    report = DriftReport.objects.create(
        version=version, method="evidently", status="done", reference_start=T0,
        reference_end=day2, current_start=day2, current_end=day2 + timedelta(days=1),
        dataset_drift=True, result={"columns": {"p_a": {"test": "ks", "statistic": 0.01,
        "threshold": 0.05, "drifted": True}}, "n_columns": 1, "n_drifted": 1},
    )  # fmt: skip
    report.html.save(f"drift-{report.pk}.html", ContentFile(EVIDENTLY_PAGE))
    return {"version": version, "alert": alert, "report": report}


def _pages(watched) -> list[str]:
    report = watched["report"].pk
    return [
        "/monitoring/",
        "/monitoring/calibration.json",
        f"/monitoring/drift/{report}/",
        f"/monitoring/drift/{report}/evidently.html",
    ]


@pytest.mark.parametrize("persona", ["ada", "rosa", "vic"])
def test_readers_see_every_page(client, request, persona, watched):
    client.force_login(request.getfixturevalue(persona))
    for url in _pages(watched):
        assert client.get(url).status_code == 200, url


def test_annotators_get_403_and_anonymous_visitors_the_login_page(client, anna, watched):
    for url in _pages(watched):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(
            "/accounts/login/?next="
        ), url
    client.force_login(anna)
    for url in _pages(watched):
        assert client.get(url).status_code == 403, url


def test_navigation_links_the_dashboard_for_readers_only(client, vic, anna, watched):
    client.force_login(vic)
    assert b'href="/monitoring/"' in client.get("/").content
    client.force_login(anna)
    assert b'href="/monitoring/"' not in client.get("/").content


def test_dashboard_shows_the_version_its_alerts_detectors_and_reports(client, rosa, watched):
    client.force_login(rosa)
    version = watched["version"]
    page = client.get("/monitoring/", {"version": version.pk, "window": "hour"})
    html = page.content.decode()
    assert page.status_code == 200
    assert f"Attunement: {version.ref}" in html
    assert "accuracy low" in html  # the open alert
    assert 'data-testid="acknowledge"' not in html  # Rosa may not acknowledge
    assert "Page–Hinkley" in html and "KSWIN" in html  # detector states
    assert f'href="/monitoring/drift/{watched["report"].pk}/"' in html
    series_url = f"/monitoring/calibration.json?version={version.pk}&amp;window=hour"
    assert f'data-series-url="{series_url}"' in html


def test_chart_data_follows_the_filters(client, vic, watched):
    client.force_login(vic)
    version = watched["version"]
    hourly = client.get("/monitoring/calibration.json", {"version": version.pk, "window": "hour"})
    body = hourly.json()
    assert [(p["n"], round(p["accuracy"], 3)) for p in body["points"]] == [(3, 1.0), (2, 0.0)]
    assert body["reliability"]["n"] == 2 and body["reliability"]["start"].startswith("2026-03-03")
    weekly = client.get("/monitoring/calibration.json", {"version": version.pk, "window": "week"})
    assert [p["n"] for p in weekly.json()["points"]] == [5]  # both days: one Monday week
    alias = client.get(
        "/monitoring/calibration.json",
        {"model": version.registered_model.name, "alias": "production", "window": "day"},
    )
    assert alias.json()["version"] == version.pk and len(alias.json()["points"]) == 2


def test_bad_filters_answer_400_naming_the_field(client, vic, watched):
    client.force_login(vic)
    page = client.get("/monitoring/", {"window": "year"})
    assert page.status_code == 400 and b"window:" in page.content
    data = client.get("/monitoring/calibration.json", {"model": "watched-rm", "alias": "nope"})
    assert data.status_code == 400 and data.json()["error"]["fields"] == {
        "alias": ["no such model or alias"]
    }
    assert data.json()["error"]["code"] == "invalid" and data.json()["error"]["request_id"]
    unknown = client.get("/monitoring/calibration.json", {"version": 999999})
    assert unknown.status_code == 400 and "version" in unknown.json()["error"]["fields"]


def test_admins_acknowledge_from_the_page_through_the_service(client, ada, rosa, watched):
    alert = watched["alert"]
    url = f"/monitoring/alerts/{alert.pk}/acknowledge/"
    client.force_login(rosa)
    assert client.post(url).status_code == 403
    alert.refresh_from_db()
    assert alert.state == Alert.State.FIRING

    client.force_login(ada)
    page = client.get("/monitoring/", {"version": alert.version_id})
    assert 'data-testid="acknowledge"' in page.content.decode()
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"] == f"/monitoring/?version={alert.version_id}"
    alert.refresh_from_db()
    assert alert.state == Alert.State.ACKNOWLEDGED and alert.acknowledged_by == ada
    event = AuditEvent.objects.filter(action="monitoring.alert_acknowledge").get()
    assert event.actor_id == ada.pk and event.object_id == str(alert.pk)
    again = client.post(url, follow=True)  # already acknowledged: said, not a 5xx
    assert "not firing" in again.content.decode()


def test_the_report_page_frames_the_stored_html_in_a_sandbox(client, vic, watched):
    client.force_login(vic)
    report = watched["report"]
    html = client.get(f"/monitoring/drift/{report.pk}/").content.decode()
    assert (
        f'<iframe class="report-frame" sandbox="allow-scripts" '
        f'src="/monitoring/drift/{report.pk}/evidently.html"'
    ) in html
    assert "ks" in html and "drift" in html


def test_only_the_report_route_allows_inline_script(client, vic, watched):
    client.force_login(vic)
    report = watched["report"]
    served = client.get(f"/monitoring/drift/{report.pk}/evidently.html")
    assert b"".join(served.streaming_content) == EVIDENTLY_PAGE
    assert served["Content-Type"] == "text/html; charset=utf-8"
    assert served["Content-Disposition"] == "inline"
    assert served["X-Frame-Options"] == "SAMEORIGIN"
    policy = csp_directives(served["Content-Security-Policy"])
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'unsafe-inline'"
    assert policy["connect-src"] == "'none'"
    assert policy["frame-ancestors"] == "'self'"
    assert "'self'" not in policy["script-src"]

    for url in ("/monitoring/", f"/monitoring/drift/{report.pk}/"):
        response = client.get(url)
        main = response["Content-Security-Policy"]
        assert "unsafe-inline" not in main and csp_directives(main)["script-src"] == "'self'", url
        assert "frame-ancestors 'none'" in main and response["X-Frame-Options"] == "DENY"


def test_a_report_without_html_has_no_frame_and_its_route_is_404(client, vic, version):
    report = DriftReport.objects.create(
        version=version, method="fast", status="done", reference_start=T0, reference_end=T0,
        current_start=T0, current_end=T0, dataset_drift=False,
    )  # fmt: skip
    client.force_login(vic)
    assert b"<iframe" not in client.get(f"/monitoring/drift/{report.pk}/").content
    assert client.get(f"/monitoring/drift/{report.pk}/evidently.html").status_code == 404
