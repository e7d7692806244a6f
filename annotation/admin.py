from django import forms
from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from . import retention, services
from .models import (
    Adjudication,
    Annotation,
    AnnotatorStats,
    Assignment,
    DatasetSnapshot,
    ImportJob,
    Item,
    ItemConsensus,
    Project,
    ProjectStats,
)


class ProjectAdminForm(forms.ModelForm):
    """The project form of the admin; a legal hold needs its reason."""

    class Meta:
        model = Project
        fields = [
            "name", "guidelines", "question_schema", "status", "created_by", "overlap",
            "gold_ratio", "blind", "lock_ttl_seconds", "skip_policy", "pii_detectors",
            "retention_days", "archive_retention_days", "legal_hold", "legal_hold_reason",
        ]  # fmt: skip

    def clean(self):
        data = super().clean()
        if data.get("legal_hold") and not (data.get("legal_hold_reason") or "").strip():
            self.add_error("legal_hold_reason", "A legal hold needs a reason.")
        return data


@admin.register(Project)
class ProjectAdmin(GuardedModelAdmin):
    """Projects; the object-permissions page manages membership.  Changes to an existing
    project go through the services, so they are validated and audited like the API's."""

    form = ProjectAdminForm
    list_display = (
        "name", "status", "overlap", "gold_ratio", "blind", "retention_days", "legal_hold",
        "created_by", "created_at",
    )  # fmt: skip
    list_filter = ("status", "blind", "legal_hold")
    search_fields = ("name",)
    readonly_fields = ("archived_at", "purged_at")
    fieldsets = (
        (None, {"fields": ("name", "guidelines", "question_schema", "status", "created_by")}),
        (
            "Work",
            {"fields": ("overlap", "gold_ratio", "blind", "lock_ttl_seconds", "skip_policy")},
        ),
        (
            "Data protection",
            {
                "fields": (
                    "pii_detectors",
                    "retention_days",
                    "archive_retention_days",
                    "archived_at",
                    "purged_at",
                    "legal_hold",
                    "legal_hold_reason",
                )
            },
        ),
    )

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        changed = set(form.changed_data)
        settings_changed = {
            name: getattr(obj, name) for name in changed & set(services.PROJECT_FIELDS)
        }
        if settings_changed:
            services.project_update(project=obj, **settings_changed)
        if changed & {"legal_hold", "legal_hold_reason"}:
            retention.project_legal_hold_set(
                project=obj, held=obj.legal_hold, reason=obj.legal_hold_reason
            )
        rest = changed - set(services.PROJECT_FIELDS) - {"legal_hold", "legal_hold_reason"}
        if rest:
            obj.save(update_fields=sorted(rest))


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("external_id", "project", "priority", "is_gold", "n_assigned", "n_submitted")
    list_filter = ("is_gold", "project")
    search_fields = ("external_id", "prompt")
    raw_id_fields = ("project",)
    show_full_result_count = False


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("item", "annotator", "status", "locked_at", "expires_at")
    list_filter = ("status",)
    raw_id_fields = ("item", "project", "annotator")
    show_full_result_count = False


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    """Annotations are append-only: viewable here, never edited."""

    list_display = ("item", "annotator", "label", "strength", "lead_time_ms", "created_at")
    list_filter = ("project",)
    raw_id_fields = ("item", "project", "annotator", "assignment")
    show_full_result_count = False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Adjudication)
class AdjudicationAdmin(admin.ModelAdmin):
    list_display = ("item", "reviewer", "label", "created_at")
    raw_id_fields = ("item", "project", "reviewer")

    def has_change_permission(self, request, obj=None):
        return False  # only through the reviewer page / API, so the change is audited


@admin.register(ItemConsensus)
class ItemConsensusAdmin(admin.ModelAdmin):
    list_display = ("item", "label", "confidence", "agreement", "n_annotations", "method")
    list_filter = ("method",)
    raw_id_fields = ("item", "project")
    show_full_result_count = False


@admin.register(ProjectStats)
class ProjectStatsAdmin(admin.ModelAdmin):
    list_display = (
        "project",
        "computed_at",
        "n_items",
        "n_complete",
        "n_annotations",
        "duration_ms",
    )


@admin.register(AnnotatorStats)
class AnnotatorStatsAdmin(admin.ModelAdmin):
    list_display = (
        "annotator",
        "project",
        "n_annotations",
        "gold_accuracy",
        "agreement_with_consensus",
        "spammer_flag",
    )
    list_filter = ("spammer_flag", "project")


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(admin.ModelAdmin):
    """Snapshots are immutable: read-only here."""

    list_display = ("project", "format", "row_count", "sha256", "created_by", "created_at")
    list_filter = ("format",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = (
        "pk",
        "project",
        "format",
        "status",
        "rows",
        "created",
        "created_by",
        "created_at",
    )
    list_filter = ("status", "format")
    readonly_fields = [f.name for f in ImportJob._meta.fields]

    def has_add_permission(self, request):
        return False
