"""Roles are groups with declared permissions; each role sees only what it may."""

import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm

from governance import access, roles
from governance.models import AuditEvent, UserPreference
from governance.services import user_create, user_roles_set

pytestmark = pytest.mark.django_db


def test_every_role_exists_with_its_declared_permissions():
    for name in roles.ROLES:
        assert Group.objects.filter(name=name).exists()
    ethics = Group.objects.get(name=roles.ETHICS_COMMITTEE)
    assert {f"{p.content_type.app_label}.{p.codename}" for p in ethics.permissions.all()} >= {
        "governance.view_auditevent"
    }
    admin = Group.objects.get(name=roles.ADMIN)
    assert admin.permissions.filter(codename="view_auditevent").exists()
    assert (
        not Group.objects.get(name=roles.ANNOTATOR)
        .permissions.filter(codename="view_auditevent")
        .exists()
    )


def test_a_typo_in_the_declaration_is_an_error(monkeypatch):
    monkeypatch.setitem(roles.ROLE_PERMISSIONS, roles.VIEWER, ["governance.view_nothing"])
    with pytest.raises(LookupError, match="view_nothing"):
        roles.roles_sync()


def test_user_create_and_role_change_are_audited(ada):
    user = user_create(username="newbie", password="a-long-passphrase", roles=["annotator"])
    user_roles_set(user=user, roles=["reviewer"])
    events = list(AuditEvent.objects.filter(object_id=str(user.pk)).order_by("sequence"))
    assert [e.action for e in events] == ["user.create", "user.roles_set"]
    assert events[1].before == {"roles": ["annotator"]} and events[1].after == {
        "roles": ["reviewer"]
    }
    assert "password" not in str(events[0].after)
    with pytest.raises(ValueError, match="unknown role"):
        user_roles_set(user=user, roles=["wizard"])


def test_restricted_queryset_by_role(ada, eve, anna, nobody):
    AuditEvent.objects.none()  # the table may be empty; restriction is about the queryset
    qs = AuditEvent.objects.all()
    assert access.queryset_restrict(queryset=qs, user=ada).query.is_empty() is False
    assert access.queryset_restrict(queryset=qs, user=eve).query.is_empty() is False
    assert access.queryset_restrict(queryset=qs, user=anna).query.is_empty() is True
    assert access.queryset_restrict(queryset=qs, user=nobody).query.is_empty() is True


def test_object_permissions_through_guardian(anna, ben):
    """Models may opt into per-object grants; only the granted row becomes visible."""
    mine = UserPreference.objects.create(user=anna, theme="dark")
    theirs = UserPreference.objects.create(user=ben, theme="light")
    UserPreference.access_object_permissions = True
    try:
        assert (
            list(access.queryset_restrict(queryset=UserPreference.objects.all(), user=anna)) == []
        )
        assign_perm("governance.view_userpreference", anna, mine)
        access.permissions_cache_clear(user=anna)  # as with Django's own permission cache
        visible = access.queryset_restrict(queryset=UserPreference.objects.all(), user=anna)
        assert list(visible) == [mine]
        assert access.user_can(user=anna, action="view", obj=mine)
        assert not access.user_can(user=anna, action="view", obj=theirs)
        assert not access.user_can(user=anna, action="change", obj=mine)
    finally:
        del UserPreference.access_object_permissions


@pytest.mark.parametrize(
    ("persona", "sees_audit"),
    [
        ("ada", True),
        ("eve", True),
        ("rosa", False),
        ("anna", False),
        ("rex", False),
        ("vic", False),
    ],
)
def test_navigation_and_home_page_by_role(client, password, persona, sees_audit, request):
    user = request.getfixturevalue(persona)
    client.login(username=user.username, password=password)
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert ('href="/governance/audit/"' in html) is sees_audit
    assert ("Admin console" in html) is (persona == "ada")
    expected_role = {
        "ada": "admin", "eve": "ethics_committee", "rosa": "researcher",
        "anna": "annotator", "rex": "reviewer", "vic": "viewer",
    }[persona]  # fmt: skip
    assert f'data-role="{expected_role}"' in html
    assert client.get("/governance/audit/").status_code == (200 if sees_audit else 403)
