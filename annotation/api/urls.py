from rest_framework.routers import DefaultRouter

from .views import DatasetSnapshotViewSet, ImportJobViewSet, ProjectViewSet

router = DefaultRouter()
router.register("projects", ProjectViewSet, basename="project")
router.register("snapshots", DatasetSnapshotViewSet, basename="snapshot")
router.register("import-jobs", ImportJobViewSet, basename="import-job")

urlpatterns = router.urls
