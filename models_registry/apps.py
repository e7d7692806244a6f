from django.apps import AppConfig


class ModelsRegistryConfig(AppConfig):
    """Base models, training, versions, aliases; registers the alias approvals."""

    name = "models_registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Annotation's retention must keep the snapshots models were trained on (lineage).
        from annotation.retention import snapshot_hold_register

        from .selectors import snapshots_trained_on
        from .webhook_events import webhook_events_register

        snapshot_hold_register(provider=snapshots_trained_on)

        from .cards import registry_sections_register

        registry_sections_register()

        from .approvals import approvals_register

        approvals_register()

        webhook_events_register()

        # annotation shows the RLHF loop's suggestions without importing the registry.
        from annotation.suggestions import suggestion_provider_register

        from .loop import item_suggestion_for_annotators

        suggestion_provider_register(item_suggestion_for_annotators)
