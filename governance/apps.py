from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class GovernanceConfig(AppConfig):
    """Roles and object permissions, the audit log, approvals, and system health."""

    name = "governance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import security_audit
        from .approvals import governance_kinds_register
        from .audit import sqlite_maintenance_function_register
        from .roles import roles_sync_after_migrate
        from .webhooks import approval_events_register

        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="governance.roles_sync")
        connection_created.connect(
            sqlite_maintenance_function_register, dispatch_uid="governance.audit_maintenance"
        )
        security_audit.connect()
        governance_kinds_register()

        approval_events_register()
