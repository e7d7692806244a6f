from django.contrib import admin
from guardian.admin import GuardedModelAdmin

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


@admin.register(Project)
class ProjectAdmin(GuardedModelAdmin):
    """Projects; the object-permissions page manages membership."""

    list_display = ("name", "status", "overlap", "gold_ratio", "blind", "created_by", "created_at")
    list_filter = ("status", "blind")
    search_fields = ("name",)


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
