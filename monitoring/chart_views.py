"""The monitoring pages beside the attunement dashboard: control charts, model evolution
and the user-preference timeline with annotator drift.

Thin: a page renders its filters and the few rows it lists (pre-aggregated), and its
charts are drawn by ``static/js/monitoring-charts.js`` from the same API answers a
client gets (``/api/monitoring/...``).  Bad filters give a 400 naming the field."""

from __future__ import annotations

from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views import View

from rlhf_platform.views import RestrictedViewMixin

from . import charts, selectors
from .forms import ChartFilterForm
from .models import AnnotatorPoint, MetricPoint, PreferencePoint


def _api(name: str, **params) -> str:
    return reverse(name) + "?" + urlencode({k: v for k, v in params.items() if v is not None})


class _ChartPage(RestrictedViewMixin, View):
    template_name: str

    def filters(self, request) -> tuple[ChartFilterForm, dict, bool]:
        form = ChartFilterForm(request.GET)
        if not form.is_valid():
            return form, {"window": "day", "metric": "agreement"}, True
        return form, form.cleaned_data, False

    def render(self, request, form, invalid: bool, **context):
        context.update(
            form=form,
            windows=ChartFilterForm.base_fields["window"].choices,
            window=form.cleaned_data.get("window", "day") if not invalid else "day",
        )
        return TemplateResponse(
            request, self.template_name, context, status=400 if invalid or form.errors else 200
        )


class ControlChartsView(_ChartPage):
    """Control charts: a version's accuracy and a project's annotator agreement (α)."""

    model = MetricPoint
    template_name = "monitoring/control_charts.html"

    def get(self, request):
        form, data, invalid = self.filters(request)
        versions = selectors.versions_monitored()
        projects = charts.projects_monitored(user=request.user)
        context = {"versions": versions, "projects": projects}
        if not invalid:
            version = (
                versions.filter(pk=data["version"]).first() if data["version"] else versions.first()
            )
            if data["version"] and version is None:
                form.add_error("version", "no metric points for this version")
            project_id = data["project"] or (projects[0][0] if projects else None)
            if data["project"] and project_id not in dict(projects):
                form.add_error("project", "no preference points for this project")
            rules = "we" if data["we"] else "1"
            if version is not None and not form.errors:
                context["version"] = version
                context["accuracy_url"] = _api(
                    "monitoring-control-chart-accuracy", version=version.pk, window=data["window"],
                    rules=rules,
                )  # fmt: skip
            if project_id is not None and not form.errors:
                context["project_id"] = project_id
                context["agreement_url"] = _api(
                    "monitoring-control-chart-agreement", project=project_id,
                    window=data["window"], rules=rules,
                )  # fmt: skip
        return self.render(request, form, invalid, **context)


class ModelEvolutionView(_ChartPage):
    """A registered model's versions compared, with the data each was trained on."""

    model = MetricPoint
    template_name = "monitoring/model_evolution.html"

    def get(self, request):
        form, data, invalid = self.filters(request)
        names = sorted({v.registered_model.name for v in selectors.versions_monitored()})
        context = {"models": names}
        if not invalid:
            name = data["model"] or (names[0] if names else None)
            if data["model"] and name not in names:
                form.add_error("model", "no monitored versions of this model")
            elif name is not None:
                registered = next(
                    v.registered_model
                    for v in selectors.versions_monitored()
                    if v.registered_model.name == name
                )
                context.update(
                    model=name,
                    evolution=charts.model_evolution(
                        registered_model=registered, window=data["window"]
                    ),
                    evolution_url=_api(
                        "monitoring-model-evolution", model=name, window=data["window"]
                    ),
                )
        return self.render(request, form, invalid, **context)


class PreferencesView(_ChartPage):
    """The user-preference timeline of a project and its annotators' drift."""

    model = PreferencePoint
    template_name = "monitoring/preferences.html"

    def get(self, request):
        form, data, invalid = self.filters(request)
        projects = charts.projects_monitored(user=request.user)
        context = {"projects": projects}
        if not invalid:
            project_id = data["project"] or (projects[0][0] if projects else None)
            if data["project"] and project_id not in dict(projects):
                form.add_error("project", "no preference points for this project")
            elif project_id is not None:
                drifts = list(charts.annotator_drift_list(project_id=project_id))
                context.update(
                    project_id=project_id,
                    drifts=drifts,
                    timeline_url=_api(
                        "monitoring-preference-timeline", project=project_id, window=data["window"]
                    ),
                )
                annotator = data["annotator"]
                if annotator is not None:
                    if not AnnotatorPoint.objects.filter(
                        project_id=project_id, annotator_id=annotator
                    ).exists():
                        form.add_error("annotator", "no points for this annotator in this project")
                    else:
                        context["annotator"] = next(
                            (d.annotator for d in drifts if d.annotator_id == annotator), annotator
                        )
                        context["annotator_metric"] = data["metric"]
                        context["annotator_url"] = _api(
                            "monitoring-control-chart-annotator", project=project_id,
                            annotator=annotator, metric=data["metric"],
                        )  # fmt: skip
        return self.render(request, form, invalid, **context)
