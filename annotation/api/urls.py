from rest_framework.routers import DefaultRouter

from .views import DatasetSnapshotViewSet, ProjectViewSet

router = DefaultRouter()
router.register("projects", ProjectViewSet, basename="project")
router.register("snapshots", DatasetSnapshotViewSet, basename="snapshot")

urlpatterns = router.urls
