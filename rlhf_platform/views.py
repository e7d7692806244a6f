"""Project-wide pages (home, health, preferences) and the HTML access mixin."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from drf_spectacular.views import SpectacularAPIView
from rest_framework.response import Response

from annotation.selectors import project_list
from governance import access
from governance.selectors import system_health, user_roles
from governance.services import user_theme_set

from .api import error_body


class RestrictedViewMixin(LoginRequiredMixin):
    """The HTML counterpart of the API's restricted viewset.

    ``get_queryset`` returns only rows the user may view, so a detail page for anything
    else is a 404; ``model_permission_action`` makes a list page a 403 for roles that have
    no business with the model at all.
    """

    access_action = "view"

    def dispatch(self, request, *args, **kwargs):
        model = getattr(self, "model", None) or getattr(
            getattr(self, "queryset", None), "model", None
        )
        if (
            request.user.is_authenticated
            and model is not None
            and not access.model_accessible(user=request.user, model=model, action="view")
        ):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_queryset(self):
        return access.queryset_restrict(
            queryset=super().get_queryset(), user=self.request.user, action=self.access_action
        )


def page_not_found(request, exception):
    """``handler404``: no route under ``/api/`` answers in the API's error shape (JSON), so
    a client always gets what the schema documents; every other path gets the HTML page."""
    if request.path.startswith("/api/"):
        body = error_body(status=404, code="not_found", message="Not found.", request=request)
        return JsonResponse(body, status=404)
    return defaults.page_not_found(request, exception)


@require_GET
@never_cache
def healthz(request):
    """Database, broker and worker state as JSON: 200 when all are fine, else 503."""
    report = system_health()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


HOME_PROJECTS = 10


def home(request):
    """Tells each role what it can do next; viewers find the dashboards shared with them."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    roles = user_roles(user=request.user)
    if request.user.is_superuser and "admin" not in roles:
        roles = ["admin", *roles]
    context = {"roles": roles}
    if "viewer" in roles:
        reports = project_list(user=request.user, action="report")
        context["report_projects"] = list(reports.order_by("name")[:HOME_PROJECTS])
        context["report_projects_more"] = reports.count() > HOME_PROJECTS
    return render(request, "home.html", context)


@require_POST
def theme_set(request):
    """Remember the theme: for users in their preference, for everyone in a cookie."""
    theme = request.POST.get("theme", "")
    if request.user.is_authenticated:
        try:
            user_theme_set(user=request.user, theme=theme)
        except ValueError as exc:
            return HttpResponseBadRequest(str(exc))
    elif theme not in ("system", "light", "dark"):
        return HttpResponseBadRequest("theme: must be one of system, light, dark")
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
        target = "/"
    if request.headers.get("Accept", "").startswith("application/json"):
        response = JsonResponse({"theme": theme})
    else:
        response = redirect(target)
    response.set_cookie(
        "theme",
        theme,
        max_age=365 * 24 * 3600,
        samesite="Lax",
        httponly=True,  # read by the server only
        secure=settings.SESSION_COOKIE_SECURE,
    )
    return response


def login_locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a login from a locked-out account or address: a 429 with
    Retry-After, as the project's JSON error for API callers and as a page for people."""
    from axes.helpers import get_cool_off

    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 0
    minutes = max(1, -(-seconds // 60))
    message = (
        "Too many failed logins for this account or from this address. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )
    wants_json = request.path.startswith("/api/") or "application/json" in request.headers.get(
        "Accept", ""
    )
    if wants_json:
        body = {
            "error": {
                "status": 429,
                "code": "locked_out",
                "message": message,
                "fields": {},
                "request_id": getattr(request, "request_id", ""),
            }
        }
        response = JsonResponse(body, status=429)
    else:
        response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(seconds)
    return response


class SchemaView(SpectacularAPIView):
    """``/api/schema/``: the public schema, generated once per process and version.

    The schema depends only on the URL conf and the code (``SERVE_PUBLIC``: not on the
    user), yet generating it walks every view (≈0.4 s); clients such as code generators and
    the docs page fetch it often.  A deploy restarts the processes, which drops the cache.
    """

    _cache: dict[str | None, dict] = {}

    def _get_schema_response(self, request):
        version = self.api_version or request.version or self._get_version_parameter(request)
        if version not in self._cache:
            generator = self.generator_class(
                urlconf=self.urlconf, api_version=version, patterns=self.patterns
            )
            self._cache[version] = generator.get_schema(request=request, public=self.serve_public)
        return Response(
            data=self._cache[version],
            headers={
                "Content-Disposition": f'inline; filename="{self._get_filename(request, version)}"'
            },
        )
