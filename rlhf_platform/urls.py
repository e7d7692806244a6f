from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from governance.api.views import AuthTokenView

from . import content_security, views

api_patterns = [
    path("auth/token/", AuthTokenView.as_view(), name="api-token"),
    path("governance/", include("governance.api.urls")),
    path("annotation/", include("annotation.api.urls")),
    path("models/", include("models_registry.api.urls")),
    path("monitoring/", include("monitoring.api.urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("preferences/theme/", views.theme_set, name="theme-set"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("governance/", include("governance.urls")),
    path("annotation/", include("annotation.urls")),
    path("models/", include("models_registry.urls")),
    path("generation/", include("models_registry.generation_urls")),
    path("monitoring/", include("monitoring.urls")),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("api/schema/", views.SchemaView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        content_security.api_docs(content_security.ApiDocsView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
]

handler404 = "rlhf_platform.views.page_not_found"
