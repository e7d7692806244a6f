"""The registry in the admin console: shown, never edited there.

Every change to the registry goes through its services, which validate and audit it
(and keep the aliases' history), so the admin only reads."""

from django.contrib import admin
from django.http import HttpResponseForbidden

from governance.admin import ReadOnlyAdmin

from .approvals import refuse_direct_alias_move
from .models import (
    AliasChange,
    BaseModel,
    ModelAlias,
    ModelCard,
    ModelCardRevision,
    ModelVersion,
    Prediction,
    RegisteredModel,
    TrainingJob,
)


@admin.register(BaseModel)
class BaseModelAdmin(ReadOnlyAdmin):
    list_display = ("name", "architecture", "source", "location", "created_at")
    list_filter = ("architecture", "source")


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "created_by", "created_at")
    list_filter = ("kind",)
    search_fields = ("name",)


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("registered_model", "number", "kind", "base_model", "artifact_sha256",
                    "created_at")  # fmt: skip
    list_filter = ("kind", "registered_model")


@admin.register(ModelAlias)
class ModelAliasAdmin(ReadOnlyAdmin):
    """Aliases are shown here; a move posted here is refused (and audited) with a pointer
    to the approvals, the only way an alias moves."""

    list_display = ("registered_model", "name", "version", "updated_by", "updated_at")

    def _refuse(self, request, object_id=None):
        alias = None
        if object_id is not None and str(object_id).isdigit() and len(str(object_id)) < 19:
            alias = (
                ModelAlias.objects.select_related("registered_model")
                .filter(pk=int(object_id))
                .first()
            )
        message = refuse_direct_alias_move(
            registered_model=alias.registered_model if alias else None, channel="admin",
            alias=alias.name if alias else request.POST.get("name"),
            version=request.POST.get("version"),
        )  # fmt: skip
        return HttpResponseForbidden(message, content_type="text/plain; charset=utf-8")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST":
            return self._refuse(request, object_id)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        if request.method == "POST":
            return self._refuse(request, object_id)
        return super().delete_view(request, object_id, extra_context)


@admin.register(AliasChange)
class AliasChangeAdmin(ReadOnlyAdmin):
    list_display = ("registered_model", "alias", "from_version", "to_version", "changed_by",
                    "changed_at")  # fmt: skip


@admin.register(TrainingJob)
class TrainingJobAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "registered_model", "status", "step", "total_steps", "worker",
                    "created_at")  # fmt: skip
    list_filter = ("status", "kind")


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    list_display = ("id", "version", "item_ref", "p_a", "margin", "source", "created_at")
    show_full_result_count = False


@admin.register(ModelCard)
class ModelCardAdmin(ReadOnlyAdmin):
    list_display = ("version", "revision", "updated_by", "updated_at")


@admin.register(ModelCardRevision)
class ModelCardRevisionAdmin(ReadOnlyAdmin):
    list_display = ("card", "revision", "edited_by", "edited_at")
