from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import AuditEventViewSet, me

router = DefaultRouter()
router.register("audit-events", AuditEventViewSet, basename="audit-event")

urlpatterns = [path("me/", me, name="api-me"), *router.urls]
