from django.contrib import admin

from .models import (
    AliasChange,
    BaseModel,
    ModelAlias,
    ModelVersion,
    Prediction,
    RegisteredModel,
    TrainingJob,
)


@admin.register(BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    list_display = ("name", "architecture", "source", "location", "created_at")
    list_filter = ("architecture", "source")


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "created_by", "created_at")
    list_filter = ("kind",)
    search_fields = ("name",)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    """Versions are immutable: the admin shows them and changes nothing."""

    list_display = (
        "registered_model",
        "number",
        "kind",
        "base_model",
        "artifact_sha256",
        "created_at",
    )
    list_filter = ("kind", "registered_model")
    raw_id_fields = ("snapshot", "training_job")

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    """Aliases move through the registry's pages or API (so each move is kept)."""

    list_display = ("registered_model", "name", "version", "updated_by", "updated_at")

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(AliasChange)
class AliasChangeAdmin(admin.ModelAdmin):
    list_display = (
        "registered_model",
        "alias",
        "from_version",
        "to_version",
        "changed_by",
        "changed_at",
    )

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "registered_model",
        "status",
        "step",
        "total_steps",
        "worker",
        "created_at",
    )
    list_filter = ("status", "kind")
    raw_id_fields = ("snapshot",)


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("id", "version", "item_ref", "p_a", "margin", "source", "created_at")
    raw_id_fields = ("version",)
    show_full_result_count = False
