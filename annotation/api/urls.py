from rest_framework.routers import DefaultRouter

from .views import DatasetSnapshotViewSet, ImportJobViewSet, ProjectViewSet

# No ``.json`` suffix routes: the API speaks JSON only, and the suffix variants of custom
# actions (``projects/1/consensus.json``) answered 500 — the actions take no ``format``.
router = DefaultRouter()
router.include_format_suffixes = False
router.register("projects", ProjectViewSet, basename="project")
router.register("snapshots", DatasetSnapshotViewSet, basename="snapshot")
router.register("import-jobs", ImportJobViewSet, basename="import-job")

urlpatterns = router.urls
