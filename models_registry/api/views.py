"""Models API: thin views over the registry's services and selectors.

Access is decided by ``governance.access`` through the restricted base viewsets (role
permissions declared in ``governance.roles``): researchers train and predict, the ethics
committee reads versions, annotators see nothing.
"""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from governance import access
from models_registry import cards, selectors, services
from models_registry.approvals import refuse_direct_alias_move
from models_registry.artifacts import ArtifactCorrupted
from models_registry.models import (
    AliasChange,
    BaseModel,
    ModelCard,
    ModelVersion,
    Prediction,
    RegisteredModel,
    TrainingJob,
)
from rlhf_platform.api import RestrictedReadOnlyViewSet, RestrictedViewSetMixin, error_body
from rlhf_platform.errors import Conflict
from rlhf_platform.openapi import error_response

from . import serializers as s


class BaseModelViewSet(RestrictedReadOnlyViewSet):
    """Local model directories that training starts from (added by admins)."""

    queryset = BaseModel.objects.all()
    serializer_class = s.BaseModelSerializer
    filterset_fields = ["architecture"]


class RegisteredModelViewSet(
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Named lines of model versions, and their aliases."""

    queryset = RegisteredModel.objects.prefetch_related("aliases__version__registered_model")
    serializer_class = s.RegisteredModelSerializer
    filterset_fields = ["kind"]
    action_permissions = {"aliases": {"GET": "view", "POST": "change"}}

    def perform_create(self, serializer):
        serializer.instance = services.registered_model_create(
            user=self.request.user, **serializer.validated_data
        )

    @extend_schema(methods=["GET"], responses=s.AliasChangeSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request=s.AliasSetSerializer,
        responses={403: error_response("Always: aliases move through approved requests.")},
        description="Refused, always: an alias moves only through an approved request "
        "(POST /api/governance/approval-requests/ with kind model.promote, model.rollback "
        "or model.revoke).  The refusal is audited.",
    )
    @action(detail=True, methods=["get", "post"])
    def aliases(self, request, pk=None):
        """The aliases' history (GET).  POST is refused: aliases move through approvals."""
        model = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(selectors.alias_history(registered_model=model))
            return self.get_paginated_response(s.AliasChangeSerializer(page, many=True).data)
        # Aliases move only through an approved request: refuse, audited, and say where.
        body = request.data if isinstance(request.data, dict) else {}
        message = refuse_direct_alias_move(
            registered_model=model, channel="api", alias=body.get("alias"),
            version=body.get("version"),
        )  # fmt: skip
        return Response(
            error_body(status=403, code="approval_required", message=message, request=request),
            status=403,
        )


class ModelVersionViewSet(RestrictedReadOnlyViewSet):
    """Immutable model versions: artifact hashes, lineage, metrics and calibration."""

    queryset = ModelVersion.objects.select_related(
        "registered_model", "base_model"
    ).prefetch_related("aliases")
    serializer_class = s.ModelVersionSerializer
    filterset_fields = ["registered_model", "kind"]
    # Reading the version is checked here; changing its card is checked on the card.
    action_permissions = {"card": "view"}

    @extend_schema(methods=["GET"], request=None, responses=s.ModelCardSerializer)
    @extend_schema(
        methods=["PATCH"],
        request=s.ModelCardUpdateSerializer,
        responses={200: s.ModelCardSerializer},
    )
    @action(detail=True, methods=["get", "patch"])
    def card(self, request, pk=None):
        """The version's model card (GET), or change its human-entered text (PATCH: the
        fields given; a new revision, audited)."""
        version = self.get_object()
        if request.method == "PATCH":
            card = selectors.model_card_current(version=version) or ModelCard(version=version)
            access.require(user=request.user, action="change", obj=card)
            data = s.ModelCardUpdateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            fields = dict(data.validated_data)
            note = fields.pop("note", "")
            services.model_card_update(version=version, user=request.user, fields=fields, note=note)
        return Response(s.ModelCardSerializer(_card_body(version)).data)

    @extend_schema(
        parameters=[OpenApiParameter("versions", str, description="Comma-separated ids or refs")],
        responses=s.CompareSerializer,
    )
    @action(detail=False, methods=["get"])
    def compare(self, request):
        """Versions side by side: metrics, calibration before/after, data and settings."""
        refs = [r for r in request.query_params.get("versions", "").split(",") if r.strip()]
        if not 2 <= len(refs) <= 6:
            raise ValidationError({"versions": ["name 2 to 6 versions, separated by commas"]})
        versions = []
        for ref in refs:
            version = selectors.version_resolve(ref=ref)
            if version is None or not access.user_can(
                user=request.user, action="view", obj=version
            ):
                raise ValidationError({"versions": [f"no such version: {ref}"]})
            versions.append(version)
        return Response(selectors.version_compare(versions=versions))


class TrainingJobViewSet(
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Reward-model and DPO training jobs with their live progress; cancel."""

    queryset = TrainingJob.objects.select_related(
        "registered_model", "base_model", "created_by", "version__registered_model"
    )
    serializer_class = s.TrainingJobSerializer
    filterset_fields = ["status", "kind", "registered_model"]
    action_permissions = {"cancel": "change"}

    @extend_schema(request=s.TrainingJobCreateSerializer, responses={201: s.TrainingJobSerializer})
    def create(self, request, *args, **kwargs):
        """Queue a training job on a dataset snapshot (export permission on its project)."""
        data = s.TrainingJobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.training_job_create(
            user=request.user,
            kind=data.validated_data["kind"],
            registered_model_name=data.validated_data["registered_model"],
            base_model=data.validated_data["base_model"],
            snapshot_id=data.validated_data["snapshot"],
            config=data.validated_data["config"],
        )
        return Response(s.TrainingJobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.TrainingJobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel: a queued job at once, a running one at its next step."""
        job = services.training_job_cancel(job=self.get_object())
        return Response(s.TrainingJobSerializer(job).data)


class AliasChangeViewSet(RestrictedReadOnlyViewSet):
    """Every move of every alias."""

    queryset = AliasChange.objects.select_related("registered_model", "changed_by")
    serializer_class = s.AliasChangeSerializer
    filterset_fields = ["registered_model", "alias"]


class PredictionViewSet(RestrictedReadOnlyViewSet):
    """Stored predictions (they meet the human consensus in monitoring)."""

    queryset = Prediction.objects.all()
    serializer_class = s.PredictionSerializer
    filterset_fields = ["version", "item_ref", "text_sha256"]


class PredictViewSet(RestrictedViewSetMixin, viewsets.GenericViewSet):
    """``POST /api/models/{version-or-alias}/predict``."""

    queryset = Prediction.objects.none()
    serializer_class = s.PredictSerializer
    action_permissions = {"create": "add"}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "ref", str, OpenApiParameter.PATH,
                description="A version: `name@number`, `name:alias` or its id.",
            )
        ],
        request=s.PredictSerializer,
        responses={200: s.PredictResponseSerializer},
    )  # fmt: skip
    def create(self, request, ref: str):
        """Calibrated P(a ≻ b), raw rewards and margin for a batch of pairs (all stored)."""
        version = selectors.version_resolve(ref=ref)
        if version is None or not access.user_can(user=request.user, action="view", obj=version):
            raise Http404
        data = s.PredictSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if version.kind != "reward":
            raise ValidationError(
                {"ref": [f"{version.ref} is a {version.kind} model, not a reward model"]}
            )
        try:
            results = services.predictions_create(
                version=version, pairs=data.validated_data["pairs"], user=request.user
            )
        except ArtifactCorrupted as exc:
            raise Conflict(f"artifact: {exc}") from exc
        body = {
            "version": version.ref,
            "calibration": version.calibration.get("method", "none"),
            "predictions": results,
        }
        return Response(s.PredictResponseSerializer(body).data)


def _card_body(version: ModelVersion) -> dict:
    """What ``GET …/versions/{id}/card/`` answers."""
    document = cards.card_compose(version=version)
    card = document.card
    text = card.human_fields() if card else {name: "" for name, _ in ModelCard.HUMAN_FIELDS}
    return {
        "version": version.ref,
        "revision": document.revision,
        **text,
        "carried_from": card.carried_from.ref if card and card.carried_from else None,
        "updated_by": card.updated_by.username if card and card.updated_by else None,
        "updated_at": card.updated_at if card else None,
        "content_sha256": document.content_sha256,
        "gate": selectors.model_card_gate_check(version=version),
        "revisions": list(selectors.model_card_revisions(card=card)) if card else [],
    }
