"""The audit trail's filters: a bad value is a 400 naming the filter, on the API and the page.

Dates at the edge of the range with an offset (year 1 east of UTC, year 9999 west of it)
are valid ISO 8601 but have no UTC instant; they raised OverflowError (a 500).
"""

import pytest

from governance.services import audit_event_record

pytestmark = pytest.mark.django_db
API = "/api/governance/audit-events/"
PAGE = "/governance/audit/"
EDGES = [
    ("since", "0001-01-01T00:00:00+02:00"),
    ("until", "9999-12-31T23:59:59-02:00"),
]


@pytest.mark.parametrize(("name", "value"), EDGES)
def test_api_refuses_dates_outside_the_utc_range(api_as, eve, name, value):
    response = api_as(eve).get(API, {name: value})
    assert response.status_code == 400, response.content
    reasons = response.json()["error"]["fields"][name]
    assert "outside the supported range" in reasons[0]


@pytest.mark.parametrize(("name", "value"), EDGES)
def test_page_refuses_dates_outside_the_utc_range(client, eve, password, name, value):
    client.login(username="eve", password=password)
    response = client.get(PAGE, {name: value})
    assert response.status_code == 400
    assert "outside the supported range" in response.content.decode()


def test_the_widest_valid_range_still_filters(api_as, eve):
    audit_event_record(action="model.promote", object_type="model", object_id="1")
    response = api_as(eve).get(
        API, {"since": "0001-01-01T00:00:00-02:00", "until": "9999-12-31T23:59:59+02:00"}
    )
    assert response.status_code == 200
    assert [e["action"] for e in response.json()["results"]] == ["model.promote"]


def test_page_answers_400_for_any_invalid_filter(client, eve, password):
    client.login(username="eve", password=password)
    response = client.get(PAGE, {"since": "yesterday"})
    assert response.status_code == 400
    assert "Enter a valid date/time." in response.content.decode()
