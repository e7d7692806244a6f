from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    """Projects, items, assignment, consensus, exports; registers snapshot releases."""

    name = "annotation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .approvals import approvals_register

        approvals_register()

        from .webhook_events import webhook_events_register

        webhook_events_register()
