"""Pages, login, theme, and the demo workspace."""

import pytest
from django.core.management import call_command

from governance.models import AuditEvent, UserPreference
from rlhf_platform.demo import DEMO_USERS

pytestmark = pytest.mark.django_db


def test_anonymous_home_redirects_to_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_wrong_credentials_are_refused_and_only_the_failure_is_audited(client, anna):
    before = AuditEvent.objects.count()
    response = client.post("/accounts/login/", {"username": "anna", "password": "wrong"})
    assert response.status_code == 200
    assert b"didn't match" in response.content
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.latest("sequence")
    assert event.action == "auth.login_failed" and event.after == {"username": "anna"}


def test_login_and_logout(client, anna, password):
    response = client.post("/accounts/login/", {"username": "anna", "password": password})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_theme_is_remembered_per_user(client, anna, password):
    client.login(username="anna", password=password)
    assert client.post("/preferences/theme/", {"theme": "dark"}).status_code == 302
    assert UserPreference.objects.get(user=anna).theme == "dark"
    client.cookies.clear()  # another browser: the preference follows the user
    client.login(username="anna", password=password)
    assert b'data-theme="dark"' in client.get("/").content


def test_bad_theme_is_a_400_and_changes_nothing(client, anna, password):
    client.login(username="anna", password=password)
    response = client.post("/preferences/theme/", {"theme": "neon"})
    assert response.status_code == 400 and b"theme" in response.content
    assert not UserPreference.objects.filter(user=anna).exists()


def test_theme_redirect_stays_on_site(client, anna, password):
    client.login(username="anna", password=password)
    response = client.post(
        "/preferences/theme/", {"theme": "light", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_every_page_asset_is_served_by_the_app(client, ada, password):
    client.login(username="ada", password=password)
    for url in ("/", "/governance/audit/", "/api/docs/", "/accounts/login/"):
        html = client.get(url).content.decode()
        assert "cdn" not in html.lower(), url
        assert "https://" not in html and "http://" not in html.replace("http://www.w3.org", ""), (
            url
        )
    assert client.get("/static/css/attune.css").status_code == 200
    assert client.get("/static/js/attune.js").status_code == 200


def test_demo_workspace_is_idempotent_and_every_demo_user_logs_in(client, settings, tmp_path):
    settings.DEBUG = True
    call_command("demo_setup")
    call_command("demo_setup")
    roles_seen = set()
    for demo in DEMO_USERS:
        assert client.login(username=demo.username, password=demo.password), demo.username
        html = client.get("/").content.decode()
        for role in demo.roles:
            assert f'data-role="{role}"' in html
            roles_seen.add(role)
        if demo.username == "viewer":  # the demo project's dashboard is shared with them
            assert "Polite or rude? (demo)</a>" in html
        client.logout()
    assert roles_seen == {
        "admin",
        "researcher",
        "annotator",
        "reviewer",
        "ethics_committee",
        "viewer",
    }
    assert AuditEvent.objects.filter(action="user.create").count() == len(DEMO_USERS)
    # The demo's model: MiniLM as a base model and one training job queued on a snapshot.
    from models_registry.models import BaseModel, TrainingJob

    job = TrainingJob.objects.get(registered_model__name="demo-reward")
    assert job.base_model == BaseModel.objects.get(name="all-minilm-l6-v2")
    assert job.snapshot.row_count > 0 and job.created_by.username == "researcher"
    # The version it registers gets the demo's model-card text; a version registered before
    # cards existed (its card empty) gets it when demo_setup runs again.
    from models_registry import selectors, services
    from rlhf_platform.demo import DEMO_CARD

    assert job.card_seed == DEMO_CARD
    TrainingJob.objects.filter(pk=job.pk).update(card_seed={}, status="registering")
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"not really weights")
    version = services.model_version_register(
        job=TrainingJob.objects.get(pk=job.pk), directory=tmp_path, metrics={}, calibration={}
    )
    assert selectors.model_card_current(version=version).intended_use == ""
    call_command("demo_setup")
    card = selectors.model_card_current(version=version)
    assert (
        card.human_fields() == DEMO_CARD
        and selectors.model_card_gate_check(version=version)["passed"]
    )


def test_demo_setup_refuses_without_debug(settings):
    from django.core.management import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError, match="public passwords"):
        call_command("demo_setup")
