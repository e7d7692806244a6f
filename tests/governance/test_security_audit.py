"""Every security action leaves exactly one audit event, whichever way it is made: the
admin console (as ada, with Django's test client), the ORM, a management command.

Each test notes the chain's head, performs one action, and reads what was appended."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.forms import MultiWidget
from guardian.shortcuts import assign_perm, remove_perm
from rest_framework.authtoken.models import Token

from annotation import services as annotation_services
from governance import security_audit
from governance.models import AuditEvent
from governance.services import user_create

pytestmark = pytest.mark.django_db
User = get_user_model()


class Trail:
    """The events appended since it was created."""

    def __init__(self):
        head = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True)
        self.head = head.first() or 0

    def new(self) -> list[AuditEvent]:
        return list(AuditEvent.objects.filter(sequence__gt=self.head).order_by("sequence"))

    def one(self) -> AuditEvent:
        events = self.new()
        assert len(events) == 1, [(e.action, e.object_type, e.object_id) for e in events]
        return events[0]


def _assert_event(event, *, action, actor, obj=None, object_type="", object_id=""):
    assert event.action == action
    assert event.actor_username == (actor.username if actor else "")
    if obj is not None:
        object_type, object_id = obj._meta.label_lower, str(obj.pk)
    assert (event.object_type, event.object_id) == (object_type, object_id)


def _admin_form_data(client, url: str, **changes) -> dict:
    """The POST data an admin change form would send unchanged, with ``changes`` applied
    (False drops a checkbox)."""
    form = client.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = changes.get(name, form[name].value())
        if value is None or value is False:
            continue
        if isinstance(field.widget, MultiWidget):
            for i, part in enumerate(field.widget.decompress(value)):
                data[f"{name}_{i}"] = "" if part is None else str(part)
        elif value is True:
            data[name] = "on"
        else:
            data[name] = value
    return data


@pytest.fixture
def admin_client_as_ada(client, ada):
    client.force_login(ada)
    return client


@pytest.fixture
def project(rosa):
    return annotation_services.project_create(created_by=rosa, name="Security project")


def _change_user(client, user, **changes):
    url = f"/admin/auth/user/{user.pk}/change/"
    response = client.post(url, _admin_form_data(client, url, **changes))
    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()


class TestThroughTheAdmin:
    def test_role_change_is_one_event_with_before_and_after(self, admin_client_as_ada, ada, anna):
        trail = Trail()
        reviewer = Group.objects.get(name="reviewer")
        _change_user(admin_client_as_ada, anna, groups=[reviewer.pk])
        event = trail.one()
        _assert_event(event, action="user.roles_set", actor=ada, obj=anna)
        assert event.before == {"roles": ["annotator"]} and event.after == {"roles": ["reviewer"]}

    def test_group_permission_change(self, admin_client_as_ada, ada):
        viewer = Group.objects.get(name="viewer")
        permission = Permission.objects.get(codename="view_auditevent")
        url = f"/admin/auth/group/{viewer.pk}/change/"
        trail = Trail()
        data = _admin_form_data(admin_client_as_ada, url, permissions=[permission.pk])
        assert admin_client_as_ada.post(url, data).status_code == 302
        event = trail.one()
        _assert_event(event, action="group.permissions_set", actor=ada, obj=viewer)
        assert event.after == {"permissions": ["governance.view_auditevent"]}

    def test_user_permission_change(self, admin_client_as_ada, ada, anna):
        permission = Permission.objects.get(codename="view_auditevent")
        trail = Trail()
        _change_user(admin_client_as_ada, anna, user_permissions=[permission.pk])
        event = trail.one()
        _assert_event(event, action="user.permissions_set", actor=ada, obj=anna)
        assert event.before == {"permissions": []}

    def test_superuser_grant(self, admin_client_as_ada, ada, anna):
        trail = Trail()
        _change_user(admin_client_as_ada, anna, is_superuser=True)
        assert anna.is_superuser
        event = trail.one()
        _assert_event(event, action="user.superuser_grant", actor=ada, obj=anna)
        assert event.after == {"is_superuser": True}

    def test_deactivation(self, admin_client_as_ada, ada, anna):
        trail = Trail()
        _change_user(admin_client_as_ada, anna, is_active=False)
        assert not anna.is_active
        _assert_event(trail.one(), action="user.deactivate", actor=ada, obj=anna)

    def test_user_creation(self, admin_client_as_ada, ada):
        trail = Trail()
        response = admin_client_as_ada.post(
            "/admin/auth/user/add/",
            {
                "username": "zoe",
                "password1": "a-long-passphrase-9",
                "password2": "a-long-passphrase-9",
                "usable_password": "true",
            },
        )
        assert response.status_code == 302, response.context["adminform"].form.errors
        zoe = User.objects.get(username="zoe")
        event = trail.one()
        _assert_event(event, action="user.create", actor=ada, obj=zoe)
        assert event.after["username"] == "zoe" and event.after["is_superuser"] is False

    def test_password_change_records_no_password(self, admin_client_as_ada, ada, anna):
        trail = Trail()
        response = admin_client_as_ada.post(
            f"/admin/auth/user/{anna.pk}/password/",
            {"password1": "n3w-passphrase-x", "password2": "n3w-passphrase-x"},
        )
        assert response.status_code == 302
        anna.refresh_from_db()
        event = trail.one()
        _assert_event(event, action="user.password_change", actor=ada, obj=anna)
        stored = json.dumps([event.before, event.after])
        assert "n3w-passphrase-x" not in stored and anna.password not in stored

    def test_user_deletion_is_one_event_despite_its_token_and_permissions(
        self, admin_client_as_ada, ada, anna, project
    ):
        annotation_services.project_member_add(project=project, user=anna, role="annotator")
        Token.objects.create(user=anna)
        trail = Trail()
        response = admin_client_as_ada.post(f"/admin/auth/user/{anna.pk}/delete/", {"post": "yes"})
        assert response.status_code == 302
        assert not User.objects.filter(pk=anna.pk).exists()
        event = trail.one()
        _assert_event(
            event, action="user.delete", actor=ada, object_type="auth.user", object_id=str(anna.pk)
        )
        assert event.before == {"username": "anna"}

    def test_object_permission_grant_and_revoke(self, admin_client_as_ada, ada, anna, project):
        url = f"/admin/annotation/project/{project.pk}/permissions/user-manage/{anna.pk}/"
        trail = Trail()
        response = admin_client_as_ada.post(url, {"permissions": ["annotate_project"]})
        assert response.status_code == 302
        granted = trail.one()
        _assert_event(granted, action="object_permission.grant", actor=ada, obj=project)
        assert granted.after == {"user": "anna", "permission": "annotation.annotate_project"}

        assign_perm("annotation.view_project", anna, project)
        trail = Trail()  # untick one of two (the form needs at least one left)
        assert admin_client_as_ada.post(url, {"permissions": ["view_project"]}).status_code == 302
        revoked = trail.one()
        _assert_event(revoked, action="object_permission.revoke", actor=ada, obj=project)
        assert revoked.before == granted.after

    def test_project_deletion_is_one_event_despite_its_members(
        self, admin_client_as_ada, ada, anna, project
    ):
        annotation_services.project_member_add(project=project, user=anna, role="annotator")
        project_pk = project.pk
        trail = Trail()
        response = admin_client_as_ada.post(
            f"/admin/annotation/project/{project_pk}/delete/", {"post": "yes"}
        )
        assert response.status_code == 302
        event = trail.one()
        _assert_event(
            event,
            action="project.delete",
            actor=ada,
            object_type="annotation.project",
            object_id=str(project_pk),
        )
        assert event.before == {"name": "Security project"}

    def test_token_creation_records_a_fingerprint_never_the_key(self, admin_client_as_ada, ada):
        trail = Trail()
        response = admin_client_as_ada.post("/admin/authtoken/tokenproxy/add/", {"user": ada.pk})
        assert response.status_code == 302
        token = Token.objects.get(user=ada)
        event = trail.one()
        _assert_event(event, action="token.create", actor=ada, obj=ada)
        assert event.after == {"fingerprint": security_audit.token_fingerprint(token.key)}
        assert len(event.after["fingerprint"]) == 8
        assert token.key not in json.dumps([event.before, event.after])

    def test_login_failed_login_and_logout(self, client, ada, password):
        trail = Trail()
        client.post("/admin/login/", {"username": "ada", "password": "not-it"})
        failed = trail.one()
        _assert_event(failed, action="auth.login_failed", actor=None, obj=ada)
        assert failed.after == {"username": "ada"}
        assert "not-it" not in json.dumps(failed.after)

        trail = Trail()
        response = client.post("/admin/login/", {"username": "ada", "password": password})
        assert response.status_code == 302
        _assert_event(trail.one(), action="auth.login", actor=ada, obj=ada)

        trail = Trail()
        assert client.post("/admin/logout/").status_code in (200, 302)
        _assert_event(trail.one(), action="auth.logout", actor=ada, obj=ada)

    def test_failed_login_for_an_unknown_user_names_no_object(self, client, db):
        trail = Trail()
        client.post("/admin/login/", {"username": "mallory", "password": "guess"})
        event = trail.one()
        _assert_event(event, action="auth.login_failed", actor=None, object_type="auth.user")
        assert event.after == {"username": "mallory"}


class TestThroughTheOrmAndCommands:
    def test_createsuperuser_command_is_one_creation_event(self, monkeypatch):
        monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-passphrase-9")
        trail = Trail()
        call_command("createsuperuser", "--noinput", "--username=root", "--email=root@example.org")
        root = User.objects.get(username="root")
        event = trail.one()
        _assert_event(event, action="user.create", actor=None, obj=root)
        assert event.after["is_superuser"] is True

    def test_group_membership_from_either_side(self, anna, ben):
        reviewer = Group.objects.get(name="reviewer")
        trail = Trail()
        anna.groups.add(reviewer)
        event = trail.one()
        _assert_event(event, action="user.roles_set", actor=None, obj=anna)
        assert event.after == {"roles": ["annotator", "reviewer"]}

        trail = Trail()
        reviewer.user_set.add(ben)  # the reverse side: still the user's event
        _assert_event(trail.one(), action="user.roles_set", actor=None, obj=ben)

    def test_superuser_flag_and_password_through_the_orm(self, anna):
        trail = Trail()
        anna.is_superuser = True
        anna.save()
        _assert_event(trail.one(), action="user.superuser_grant", actor=None, obj=anna)
        trail = Trail()
        anna.set_password("another-passphrase")
        anna.save()
        _assert_event(trail.one(), action="user.password_change", actor=None, obj=anna)

    def test_a_hash_upgrade_on_login_is_not_a_password_change(self, client, anna, settings):
        settings.PASSWORD_HASHERS = [
            "django.contrib.auth.hashers.MD5PasswordHasher",
            "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        ]
        with security_audit.silenced():
            anna.password = make_password("old-hasher-pass", hasher="pbkdf2_sha256")
            anna.save()
        trail = Trail()
        client.post("/accounts/login/", {"username": "anna", "password": "old-hasher-pass"})
        anna.refresh_from_db()
        assert anna.password.startswith("md5$")  # re-hashed with the preferred hasher
        assert [e.action for e in trail.new()] == ["auth.login"]

    def test_object_permissions_and_tokens_through_the_orm(self, anna, project):
        trail = Trail()
        assign_perm("annotation.view_project", anna, project)
        _assert_event(trail.one(), action="object_permission.grant", actor=None, obj=project)
        trail = Trail()
        remove_perm("annotation.view_project", anna, project)
        _assert_event(trail.one(), action="object_permission.revoke", actor=None, obj=project)
        trail = Trail()
        token = Token.objects.create(user=anna)
        _assert_event(trail.one(), action="token.create", actor=None, obj=anna)
        trail = Trail()
        token.delete()
        _assert_event(trail.one(), action="token.delete", actor=None, obj=anna)

    def test_services_that_audit_their_action_are_not_recorded_twice(self, ada, anna, project):
        trail = Trail()
        annotation_services.project_member_add(project=project, user=anna, role="researcher")
        assert [e.action for e in trail.new()] == ["project.member_add"]
        trail = Trail()
        annotation_services.project_member_remove(project=project, user=anna, role="researcher")
        assert [e.action for e in trail.new()] == ["project.member_remove"]
        trail = Trail()
        user_create(username="newbie", password="a-long-passphrase", roles=["annotator"])
        assert [e.action for e in trail.new()] == ["user.create"]

    def test_a_failed_change_records_nothing(self, anna):
        from django.db import transaction

        trail = Trail()
        with pytest.raises(RuntimeError), transaction.atomic():
            anna.is_active = False
            anna.save()
            raise RuntimeError("rolled back")
        assert trail.new() == []
