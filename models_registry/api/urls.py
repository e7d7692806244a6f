from django.urls import path
from rest_framework.routers import DefaultRouter

from .generation_views import GenerationJobViewSet, PromptSetViewSet, ProviderViewSet
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

urlpatterns = [
    *router.urls,
    path("<str:ref>/predict", PredictViewSet.as_view({"post": "create"}), name="model-predict"),
]
