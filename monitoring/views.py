"""The monitoring web UI under ``/monitoring/``: the attunement dashboard (calibration over
time, the latest reliability diagram, detector states, open alerts, drift reports) and the
drift report page, whose Evidently HTML is served by its own route with its own policy.

Thin: selectors read, services write, ``governance.access`` decides (researchers and
viewers read, admins acknowledge alerts, annotators get 403)."""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views import View

from governance import access
from rlhf_platform.api import error_body
from rlhf_platform.errors import Conflict
from rlhf_platform.views import RestrictedViewMixin

from . import selectors, services
from .forms import DashboardFilterForm
from .models import Alert, DetectorState, DriftReport, ErrorZoneRun, MetricPoint


def _restricted(request, model, queryset=None):
    return access.queryset_restrict(
        queryset=queryset if queryset is not None else model.objects.all(), user=request.user
    )


def _restricted_get(request, queryset, **lookup):
    obj = access.object_get(queryset=queryset, user=request.user, **lookup)
    if obj is None:
        raise Http404
    return obj


class _FilteredMixin(RestrictedViewMixin):
    """Reads the filters: the chosen version (by id, or a model's alias; by default the
    first monitored one) and the window.  Bad filters give a 400 naming the field."""

    model = MetricPoint

    def selection(self, request):
        """(form, version or None, window, error) for the request's filters."""
        form = DashboardFilterForm(request.GET)
        if not form.is_valid():
            return form, None, "day", True
        data = form.cleaned_data
        versions = selectors.versions_monitored()
        if data["version"]:
            version = versions.filter(pk=data["version"]).first()
            if version is None:
                form.add_error("version", "no metric points for this version")
        elif data["model"]:
            version = selectors.version_for_alias(
                model_name=data["model"], alias=data["alias"] or "production"
            )
            if version is None:
                form.add_error("alias", "no such model or alias")
        else:
            version = versions.first()
        return form, version, data["window"], bool(form.errors)


class DashboardView(_FilteredMixin, View):
    """The attunement dashboard of one version and window."""

    def get(self, request):
        form, version, window, invalid = self.selection(request)
        context = {
            "form": form,
            "version": version,
            "window": window,
            "versions": selectors.versions_monitored(),
            "windows": DashboardFilterForm.base_fields["window"].choices,
            "can_acknowledge": access.model_accessible(
                user=request.user, model=Alert, action="change"
            ),
        }
        if version is not None and not invalid:
            context.update(
                series_url=reverse("monitoring:calibration")
                + "?"
                + urlencode({"version": version.pk, "window": window}),
                latest=MetricPoint.objects.filter(version=version, window=window)
                .order_by("-start")
                .first(),
                detectors=_restricted(
                    request, DetectorState, DetectorState.objects.filter(version=version)
                ),
                alerts=_restricted(
                    request,
                    Alert,
                    Alert.objects.filter(version=version, state__in=Alert.OPEN).select_related(
                        "rule"
                    ),
                ),
                reports=_restricted(
                    request, DriftReport, DriftReport.objects.filter(version=version)
                )[:20],
            )
            if access.model_accessible(user=request.user, model=ErrorZoneRun, action="view"):
                context.update(
                    zone_run=selectors.error_zones_latest(version=version),
                    zones_url=reverse("monitoring:zones")
                    + "?"
                    + urlencode({"version": version.pk}),
                )
        return TemplateResponse(
            request, "monitoring/dashboard.html", context, status=400 if invalid else 200
        )


class CalibrationDataView(_FilteredMixin, View):
    """The dashboard's chart data as JSON (pre-aggregated metric points, no scans)."""

    def get(self, request):
        form, version, window, invalid = self.selection(request)
        if invalid or version is None:
            return _filters_invalid(request, form)
        return JsonResponse(selectors.calibration_series(version=version, window=window))


def _filters_invalid(request, form) -> JsonResponse:
    """400 naming the filter fields that name no monitored version."""
    fields = {name: [str(e) for e in errs] for name, errs in form.errors.items()}
    body = error_body(
        status=400,
        code="invalid",
        message="The filters name no monitored version.",
        fields=fields,
        request=request,
    )
    return JsonResponse(body, status=400)


class ErrorZonesDataView(_FilteredMixin, View):
    """The error zones of the chosen version as JSON (its latest finished search)."""

    model = ErrorZoneRun

    def get(self, request):
        form, version, _window, invalid = self.selection(request)
        if invalid or version is None:
            return _filters_invalid(request, form)
        return JsonResponse(selectors.error_zones_data(version=version))


class AlertAcknowledgeView(RestrictedViewMixin, View):
    """Acknowledge a firing alert (POST), then back to its version's dashboard."""

    model = Alert

    def post(self, request, alert_id):
        alert = _restricted_get(request, Alert.objects.select_related("rule"), pk=alert_id)
        access.require(user=request.user, action="change", obj=alert)
        try:
            services.alert_acknowledge(alert=alert, user=request.user)
            messages.success(request, f"Alert “{alert.rule.name}” acknowledged.")
        except Conflict as exc:
            messages.error(request, str(exc))
        return redirect(
            reverse("monitoring:dashboard") + "?" + urlencode({"version": alert.version_id})
        )


class DriftReportView(RestrictedViewMixin, View):
    """A drift report: its windows, per-column verdicts and the Evidently report (framed)."""

    model = DriftReport

    def get(self, request, report_id):
        report = _restricted_get(
            request, DriftReport.objects.select_related("version__registered_model"), pk=report_id
        )
        columns = sorted((report.result or {}).get("columns", {}).items())
        return TemplateResponse(
            request, "monitoring/drift_report.html", {"report": report, "columns": columns}
        )


class DriftReportHtmlView(RestrictedViewMixin, View):
    """The stored Evidently HTML, for the report page's sandboxed frame only (its policy
    and framing headers are set where the route is declared, in ``urls.py``)."""

    model = DriftReport

    def get(self, request, report_id):
        report = _restricted_get(request, DriftReport.objects.all(), pk=report_id)
        if not report.html:
            raise Http404
        response = FileResponse(
            report.html.open("rb"), content_type="text/html; charset=utf-8", as_attachment=False
        )
        response["Content-Disposition"] = "inline"
        return response
