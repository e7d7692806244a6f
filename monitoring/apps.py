from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """Outcomes, calibration watch, drift, alerts; registers its approval gates and kinds."""

    name = "monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Monitoring reads the registry; its model-card sections join the registry's
        # provider list from here, so the registry never imports monitoring.
        from .cards import card_sections_register

        card_sections_register()

        from .approvals import approvals_register

        approvals_register()

        from models_registry.signals import predictions_stored

        from .services import outcomes_collect_soon

        predictions_stored.connect(outcomes_collect_soon, dispatch_uid="monitoring.collect")

        from .webhook_events import webhook_events_register

        webhook_events_register()
