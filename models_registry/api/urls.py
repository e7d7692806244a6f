from django.urls import path
from rest_framework.routers import DefaultRouter

from .generation_views import GenerationJobViewSet, PromptSetViewSet, ProviderViewSet
from .loop_views import LoopViewSet
from .views import (
    AliasChangeViewSet,
    BaseModelViewSet,
    ModelVersionViewSet,
    PredictionViewSet,
    PredictViewSet,
    RegisteredModelViewSet,
    TrainingJobViewSet,
)

# No ``.json`` suffix routes, as in the other apps: the API speaks JSON only.
router = DefaultRouter()
router.include_format_suffixes = False
router.register("registered", RegisteredModelViewSet, basename="registered-model")
router.register("versions", ModelVersionViewSet, basename="model-version")
router.register("base-models", BaseModelViewSet, basename="base-model")
router.register("jobs", TrainingJobViewSet, basename="training-job")
router.register("alias-changes", AliasChangeViewSet, basename="alias-change")
router.register("predictions", PredictionViewSet, basename="prediction")
router.register("providers", ProviderViewSet, basename="provider")
router.register("prompt-sets", PromptSetViewSet, basename="prompt-set")
router.register("generation-jobs", GenerationJobViewSet, basename="generation-job")

loop = "loop/<int:project_id>/"
urlpatterns = [
    *router.urls,
    path(
        loop,
        LoopViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="loop-detail",
    ),
    path(f"{loop}runs/", LoopViewSet.as_view({"get": "runs"}), name="loop-runs"),
    path(f"{loop}chart/", LoopViewSet.as_view({"get": "chart"}), name="loop-chart"),
    path(f"{loop}run/", LoopViewSet.as_view({"post": "run"}), name="loop-run"),
    path(f"{loop}errors/", LoopViewSet.as_view({"get": "errors"}), name="loop-errors"),
    path(f"{loop}retrain/", LoopViewSet.as_view({"post": "retrain"}), name="loop-retrain"),
    path("<str:ref>/predict", PredictViewSet.as_view({"post": "create"}), name="model-predict"),
]
