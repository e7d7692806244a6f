"""The demo workspace that ``make run`` loads: demo users for every role (and, as the apps
grow, their demo data).  Idempotent: running it again changes nothing."""

from __future__ import annotations

import dataclasses

from django.contrib.auth import get_user_model
from django.db import transaction

from governance import roles
from governance.services import user_create


@dataclasses.dataclass(frozen=True)
class DemoUser:
    """A demo login; the passwords are public by design (demo only)."""

    username: str
    password: str
    roles: tuple[str, ...]
    is_staff: bool = False
    is_superuser: bool = False


DEMO_USERS = (
    DemoUser("admin", "attune-admin", (roles.ADMIN,), is_staff=True, is_superuser=True),
    DemoUser("researcher", "attune-researcher", (roles.RESEARCHER,)),
    DemoUser("annotator", "attune-annotator", (roles.ANNOTATOR,)),
    DemoUser("annotator2", "attune-annotator2", (roles.ANNOTATOR,)),
    DemoUser("annotator3", "attune-annotator3", (roles.ANNOTATOR,)),
    DemoUser("reviewer", "attune-reviewer", (roles.REVIEWER,)),
    DemoUser("ethics", "attune-ethics", (roles.ETHICS_COMMITTEE,)),
    DemoUser("viewer", "attune-viewer", (roles.VIEWER,)),
)


@transaction.atomic
def demo_workspace_load() -> list[DemoUser]:
    """Create the demo users that do not exist yet; return all demo logins."""
    User = get_user_model()
    existing = set(
        User.objects.filter(username__in=[u.username for u in DEMO_USERS]).values_list(
            "username", flat=True
        )
    )
    for demo in DEMO_USERS:
        if demo.username in existing:
            continue
        user_create(
            username=demo.username,
            password=demo.password,
            roles=list(demo.roles),
            is_staff=demo.is_staff,
            is_superuser=demo.is_superuser,
        )
    return list(DEMO_USERS)
