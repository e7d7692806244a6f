"""Generation API: providers (admins manage; researchers read to choose one), prompt sets
(typed, imported, generated; reviewed), generation jobs (queue, cancel, retry, results).

Thin views over ``models_registry.providers``, ``prompts`` and ``generation``; access is
decided by ``governance.access`` through the restricted base viewsets.
"""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from governance import access
from models_registry import generation, prompts, providers
from models_registry.generation_models import (
    GeneratedResponse,
    GenerationJob,
    PromptSet,
    Provider,
)
from rlhf_platform.api import RestrictedModelViewSet, RestrictedViewSetMixin

from . import generation_serializers as s


class ProviderViewSet(RestrictedModelViewSet):
    """OpenAI-compatible endpoints.  The API key is write-only: answers show
    ``api_key_masked`` only."""

    queryset = Provider.objects.all()
    serializer_class = s.ProviderSerializer
    action_permissions = {"test": "change"}
    http_method_names = ["get", "post", "patch", "put", "delete", "head", "options"]

    def perform_create(self, serializer):
        serializer.instance = providers.provider_create(
            user=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = providers.provider_update(
            provider=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        providers.provider_delete(provider=instance)

    @extend_schema(request=None, responses=s.ProviderTestSerializer)
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Test the connection: ``GET /models`` and whether the model is served."""
        result = providers.provider_connection_test(provider=self.get_object())
        return Response(s.ProviderTestSerializer(result).data)


class PromptSetViewSet(
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Prompt sets: typed (create), imported (a CSV or JSONL file) or generated from topics
    through a provider, and reviewed."""

    queryset = PromptSet.objects.select_related("provider", "created_by")
    serializer_class = s.PromptSetSerializer
    filterset_fields = ["source", "status"]
    action_permissions = {
        "import_file": "add", "generate": "add", "review": "change",
        "prompts": "view",
    }  # fmt: skip

    @extend_schema(request=s.PromptSetCreateSerializer, responses={201: s.PromptSetSerializer})
    def create(self, request):
        """A set of typed prompts (all kept)."""
        data = s.PromptSetCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        prompt_set = prompts.prompt_set_create(user=request.user, **data.validated_data)
        return Response(s.PromptSetSerializer(prompt_set).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={"multipart/form-data": s.PromptSetImportSerializer},
        responses={201: s.PromptSetSerializer},
    )
    @action(
        detail=False, methods=["post"], url_path="import",
        parser_classes=[MultiPartParser, FormParser],
    )  # fmt: skip
    def import_file(self, request):
        """A set from a CSV (``prompt``, ``topic`` columns) or JSONL file; all-or-nothing,
        every bad row named by its line."""
        data = s.PromptSetImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        prompt_set = prompts.prompt_set_import(
            user=request.user, name=data.validated_data["name"], file=upload,
            filename=upload.name or "", description=data.validated_data["description"],
        )  # fmt: skip
        return Response(s.PromptSetSerializer(prompt_set).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.PromptSetGenerateSerializer, responses={202: s.PromptSetSerializer})
    @action(detail=False, methods=["post"])
    def generate(self, request):
        """Generate a set from topics and a template through a provider (on a worker); its
        prompts arrive for review."""
        data = s.PromptSetGenerateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        provider = data.validated_data.pop("provider")
        if not access.user_can(user=request.user, action="view", obj=provider):
            raise ValidationError({"provider": ["no such provider"]})
        prompt_set = prompts.prompt_set_generate_request(
            user=request.user, provider=provider, **data.validated_data
        )
        return Response(s.PromptSetSerializer(prompt_set).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[OpenApiParameter("status", str, description="pending, kept, discarded…")],
        responses=s.PromptSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def prompts(self, request, pk=None):
        """The set's prompts (paginated), optionally of one status."""
        prompt_set = self.get_object()
        rows = prompt_set.prompts.all()
        wanted = request.query_params.get("status")
        if wanted:
            rows = rows.filter(status=wanted)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(s.PromptSerializer(page, many=True).data)

    @extend_schema(request=s.PromptReviewSerializer, responses=s.PromptReviewResultSerializer)
    @action(detail=True, methods=["post"])
    def review(self, request, pk=None):
        """Keep or discard prompts (by id)."""
        prompt_set = self.get_object()
        data = s.PromptReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = prompts.prompt_set_review(prompt_set=prompt_set, user=request.user,
                                           **data.validated_data)  # fmt: skip
        return Response(s.PromptReviewResultSerializer(result).data)


class GenerationJobViewSet(
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Generation jobs: k responses per kept prompt through a provider; cancel, retry,
    responses and downloads (JSON, CSV)."""

    queryset = GenerationJob.objects.select_related("provider", "created_by")
    serializer_class = s.GenerationJobSerializer
    filterset_fields = ["status", "prompt_set", "provider"]
    action_permissions = {"cancel": "change", "retry": "change", "responses": "view",
                          "download": "view"}  # fmt: skip

    @extend_schema(
        request=s.GenerationJobCreateSerializer, responses={201: s.GenerationJobSerializer}
    )
    def create(self, request):
        """Queue a job on the ``generation`` queue."""
        data = s.GenerationJobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        prompt_set = access.object_get(
            queryset=PromptSet.objects.all(), user=request.user, pk=values.pop("prompt_set")
        )
        if prompt_set is None:
            raise ValidationError({"prompt_set": ["no such prompt set"]})
        provider = access.object_get(
            queryset=Provider.objects.all(), user=request.user, pk=values.pop("provider")
        )
        if provider is None:
            raise ValidationError({"provider": ["no such provider"]})
        job = generation.generation_job_create(
            user=request.user, prompt_set=prompt_set, provider=provider,
            project_id=values.pop("project"), **values,
        )  # fmt: skip
        return Response(s.GenerationJobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.GenerationJobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel: a queued job at once; a running one sends nothing more."""
        job = generation.generation_job_cancel(job=self.get_object())
        return Response(s.GenerationJobSerializer(job).data)

    @extend_schema(request=s.GenerationRetrySerializer, responses=s.GenerationJobSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Run a finished job again: only missing or failed responses, only missing items."""
        data = s.GenerationRetrySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = generation.generation_job_retry(
            job=self.get_object(), token_cap=data.validated_data["token_cap"]
        )
        return Response(s.GenerationJobSerializer(job).data)

    @extend_schema(
        parameters=[OpenApiParameter("ok", bool, description="Only successes (true) or errors")],
        responses=s.GeneratedResponseSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def responses(self, request, pk=None):
        """The job's responses (paginated)."""
        job = self.get_object()
        rows = GeneratedResponse.objects.filter(job=job).order_by("prompt_id", "sample_index")
        wanted = request.query_params.get("ok")
        if wanted in ("true", "false"):
            rows = rows.filter(ok=wanted == "true")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(s.GeneratedResponseSerializer(page, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("as", str, enum=["json", "csv"], description="File format (json)")
        ],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/csv"): bytes},
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """Every response of the job with its latency, tokens and error, as a JSON or CSV
        file (never the provider's key)."""
        job = self.get_object()
        fmt = request.query_params.get("as", "json")
        if fmt not in ("json", "csv"):
            raise ValidationError({"as": ["must be json or csv"]})
        return generation_download(job=job, fmt=fmt)


def generation_download(*, job: GenerationJob, fmt: str) -> StreamingHttpResponse:
    """A streamed download of a job's results (shared by the API and the pages)."""
    if fmt == "csv":
        body, media_type = generation.generation_results_csv(job=job), "text/csv; charset=utf-8"
    else:
        body, media_type = generation.generation_results_json(job=job), "application/json"
    response = StreamingHttpResponse(body, content_type=media_type)
    response["Content-Disposition"] = f'attachment; filename="generation-{job.pk}.{fmt}"'
    return response
