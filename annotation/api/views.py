"""Annotation API: thin views over annotation services and selectors.

Access is decided by ``governance.access`` through the restricted base viewsets; each
custom action declares the project permission it needs in ``action_permissions``.
"""

from django.contrib.auth import get_user_model
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from annotation import exports, selectors, services
from annotation.errors import ItemImportError
from annotation.models import DatasetSnapshot, ImportJob, ItemConsensus, Project
from rlhf_platform.api import RestrictedReadOnlyViewSet, RestrictedViewSetMixin, error_body
from rlhf_platform.openapi import CONFLICT

from . import serializers as s


def _import_error_response(request, exc: ItemImportError) -> Response:
    """400 in the shared error shape, with every rejected row's line and reason."""
    body = error_body(
        status=400,
        code="invalid",
        message=str(exc),
        fields={"file": [f"line {e.line}: {e.reason}" for e in exc.errors[:20]]},
        request=request,
        rows=[{"line": e.line, "reason": e.reason} for e in exc.errors],
        truncated=exc.truncated,
    )
    return Response(body, status=status.HTTP_400_BAD_REQUEST)


class ProjectViewSet(
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Annotation projects, their items, the annotator loop, review, consensus and exports."""

    queryset = Project.objects.select_related("created_by").order_by("-created_at")
    serializer_class = s.ProjectSerializer
    filterset_fields = ["status"]
    action_permissions = {
        "members": "change",
        "items": {"GET": "review", "POST": "change"},
        "import_items": "change",
        "next": "annotate",
        "submit": "annotate",
        "skip": "annotate",
        "adjudicate": "review",
        "consensus": "review",
        "recompute": "review",
        "stats": "report",
        # Listing snapshots reveals what was exported; their files hold every answer.
        "exports": "export",
    }

    def perform_create(self, serializer):
        serializer.instance = services.project_create(
            created_by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.project_update(
            project=serializer.instance, **serializer.validated_data
        )

    @extend_schema(request=s.MemberSerializer, responses={204: None})
    @action(detail=True, methods=["post", "delete"])
    def members(self, request, pk=None):
        """Add (POST) or remove (DELETE) a member with a project role."""
        project = self.get_object()
        data = s.MemberSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = get_user_model().objects.filter(username=data.validated_data["username"]).first()
        if user is None:
            raise ValidationError({"username": ["no such user"]})
        change = (
            services.project_member_add
            if request.method == "POST"
            else services.project_member_remove
        )
        change(project=project, user=user, role=data.validated_data["role"])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(methods=["GET"], responses=s.ItemSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request=s.ItemBulkCreateSerializer,
        responses={201: s.ImportResultSerializer, 400: s.IMPORT_REJECTED},
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def items(self, request, pk=None):
        """List the project's items (GET) or create up to 10,000 at once (POST, all-or-nothing)."""
        project = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(project.items.order_by("id"))
            return self.get_paginated_response(s.ItemSerializer(page, many=True).data)
        data = s.ItemBulkCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            result = services.items_create_bulk(project=project, rows=data.validated_data["items"])
        except ItemImportError as exc:
            return _import_error_response(request, exc)
        return Response(s.ImportResultSerializer(result).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={"multipart/form-data": s.ImportSerializer},
        responses={
            201: s.ImportResultSerializer,
            202: OpenApiResponse(
                s.ImportJobSerializer, description="Queued on a worker (background=true)."
            ),
            400: s.IMPORT_REJECTED,
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, FormParser],
    )
    def import_items(self, request, pk=None):
        """Import a JSONL, CSV, TRL, Label Studio or Argilla file (streamed, all-or-nothing)."""
        project = self.get_object()
        data = s.ImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["background"]:
            job = services.import_job_create(
                project=project, user=request.user, file=data.validated_data["file"],
                fmt=data.validated_data["format"],
            )  # fmt: skip
            return Response(s.ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
        try:
            result = services.items_import(
                project=project, file=data.validated_data["file"], fmt=data.validated_data["format"]
            )
        except ItemImportError as exc:
            return _import_error_response(request, exc)
        except ValueError as exc:
            raise ValidationError({"format": [str(exc)]}) from exc
        return Response(s.ImportResultSerializer(result).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.NextItemSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def next(self, request, pk=None):
        """Lock and return the next item for the calling annotator (item null when done)."""
        project = self.get_object()
        assignment = services.assignment_next(project=project, annotator=request.user)
        progress = selectors.annotator_progress(project=project, annotator=request.user)
        body = {
            "item": assignment.item if assignment else None,
            "expires_at": assignment.expires_at if assignment else None,
            "progress": progress,
        }
        return Response(s.NextItemSerializer(body).data)

    @extend_schema(
        request=s.SubmitSerializer,
        responses={201: s.AnnotationSerializer, 200: s.AnnotationSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        """Submit an answer; the idempotency key (body or ``Idempotency-Key`` header) makes
        a retry return the original annotation (200) instead of a second one (201)."""
        project = self.get_object()
        data = s.SubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = data.validated_data.get("idempotency_key") or request.headers.get(
            "Idempotency-Key", ""
        )
        annotation, created = services.annotation_submit(
            project=project,
            item_id=data.validated_data["item"],
            annotator=request.user,
            answer=data.validated_data["answer"],
            idempotency_key=key,
        )
        return Response(
            s.AnnotationSerializer(annotation).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(request=s.SkipSerializer, responses={204: None, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def skip(self, request, pk=None):
        """Give the locked item back; it is not offered to this annotator again."""
        project = self.get_object()
        data = s.SkipSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.assignment_skip(
            project=project,
            item_id=data.validated_data["item"],
            annotator=request.user,
            reason=data.validated_data["reason"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.AdjudicateSerializer, responses={201: s.AdjudicationSerializer})
    @action(detail=True, methods=["post"])
    def adjudicate(self, request, pk=None):
        """Record a reviewer's decision (and reason) on an item; it overrides consensus."""
        project = self.get_object()
        data = s.AdjudicateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        adjudication = services.adjudication_record(
            project=project,
            item_id=data.validated_data["item"],
            reviewer=request.user,
            answer=data.validated_data["answer"],
            reason=data.validated_data["reason"],
        )
        return Response(s.AdjudicationSerializer(adjudication).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses=s.ConsensusSerializer(many=True),
        parameters=[
            OpenApiParameter(
                "max_agreement", OpenApiTypes.DOUBLE, description="Only items at most this agreed."
            )
        ],
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def consensus(self, request, pk=None):
        """Per-item consensus labels; ``?max_agreement=`` finds disagreements."""
        project = self.get_object()
        queryset = (
            ItemConsensus.objects.filter(project=project).select_related("item").order_by("item_id")
        )
        if "max_agreement" in request.query_params:
            try:
                queryset = queryset.filter(
                    agreement__lte=float(request.query_params["max_agreement"])
                )
            except ValueError as exc:
                raise ValidationError({"max_agreement": ["must be a number"]}) from exc
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(s.ConsensusSerializer(page, many=True).data)

    @extend_schema(request=None, responses={202: s.QueuedSerializer})
    @action(detail=True, methods=["post"])
    def recompute(self, request, pk=None):
        """Queue a consensus and quality recomputation now."""
        project = self.get_object()
        services.consensus_recompute_request(project=project)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=s.StatsSerializer)
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        """Progress, the latest agreement metrics and the annotator quality table."""
        project = self.get_object()
        dashboard = selectors.project_dashboard(project=project)
        body = {
            "progress": dashboard["progress"],
            "latest": project.stats.order_by("-computed_at").first(),
            "annotators": dashboard["annotators"],
        }
        return Response(s.StatsSerializer(body).data)

    @extend_schema(methods=["GET"], responses=s.SnapshotSerializer(many=True))
    @extend_schema(
        methods=["POST"], request=s.ExportSerializer, responses={201: s.SnapshotSerializer}
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def exports(self, request, pk=None):
        """List the project's dataset snapshots (GET) or export a new one (POST)."""
        project = self.get_object()
        if request.method == "GET":
            snapshots = selectors.snapshot_list(project=project, user=request.user)
            page = self.paginate_queryset(snapshots)
            return self.get_paginated_response(s.SnapshotSerializer(page, many=True).data)
        data = s.ExportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        snapshot = exports.dataset_export(
            project=project,
            fmt=data.validated_data["format"],
            user=request.user,
            filters=data.validated_data["filters"],
        )
        return Response(s.SnapshotSerializer(snapshot).data, status=status.HTTP_201_CREATED)


class ImportJobViewSet(RestrictedReadOnlyViewSet):
    """Background imports and their outcome (rows created, or every rejected line)."""

    queryset = ImportJob.objects.all()
    serializer_class = s.ImportJobSerializer
    filterset_fields = ["project", "status"]


class DatasetSnapshotViewSet(RestrictedReadOnlyViewSet):
    """Immutable dataset snapshots, and their files."""

    queryset = DatasetSnapshot.objects.select_related("created_by").all()
    serializer_class = s.SnapshotSerializer
    filterset_fields = ["project", "format"]

    @extend_schema(
        responses={
            (200, media_type): (
                # Label Studio and Argilla exports are JSON arrays of tasks or records.
                {"type": "array", "items": {"type": "object"}}
                if media_type == "application/json"
                else bytes
            )
            for media_type in sorted(set(exports.MEDIA_TYPES.values()))
        }
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The snapshot's file in its format's media type (the project's export permission,
        like the row itself)."""
        snapshot = self.get_object()
        name = f"{snapshot.project_id}-{snapshot.sha256[:12]}.{exports.EXTENSIONS[snapshot.format]}"
        return FileResponse(
            snapshot.file.open("rb"),
            as_attachment=True,
            filename=name,
            content_type=exports.MEDIA_TYPES[snapshot.format],
        )
