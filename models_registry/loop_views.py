"""The RLHF loop's page, ``/models/loop/<project_id>/``: settings (kill switch included),
a chart of the passes over time, the error memory, "run now" and the one-action
retraining.  Thin: ``models_registry.loop`` does the work, ``governance.access`` decides
(read: the project's ``report``; settings and runs: ``change``; retraining: ``export``)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views import View

from governance import access
from rlhf_platform.errors import Conflict

from . import loop
from .forms import LoopSettingsForm


def _project(request, project_id: int, action: str = "report"):
    project = loop.project_loop_access(user=request.user, project_id=project_id, action="report")
    if project is None:
        raise Http404
    if action != "report":
        access.require(user=request.user, action=action, obj=project)
    return project


def _errors(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{f}: {' '.join(m)}" for f, m in exc.message_dict.items())
    return " ".join(exc.messages)


class LoopView(View):
    """The loop page (GET) and its settings form (POST)."""

    def _render(self, request, project, form, status=200):
        settings = loop.loop_settings_get(project=project)
        version = loop.loop_version(loop=settings)
        context = {
            "project": project,
            "settings": settings,
            "version": version,
            "form": form,
            "summary": loop.loop_summary(project=project),
            "runs": loop.loop_run_list(project=project, limit=20),
            "chart": loop.loop_chart_data(project=project),
            "errors": loop.loop_error_list(project=project)[:50],
            "retrainings": loop.RetrainingRequest.objects.filter(project=project).select_related(
                "parent__registered_model", "training_job"
            )[:10],
            "can_change": access.user_can(user=request.user, action="change", obj=project),
            "can_retrain": access.user_can(user=request.user, action="export", obj=project),
        }
        return TemplateResponse(request, "models_registry/loop.html", context, status=status)

    def get(self, request, project_id: int):
        project = _project(request, project_id)
        settings = loop.loop_settings_get(project=project)
        return self._render(request, project, LoopSettingsForm(instance_settings=settings))

    def post(self, request, project_id: int):
        project = _project(request, project_id, "change")
        form = LoopSettingsForm(request.POST)
        if not form.is_valid():
            return self._render(request, project, form, status=400)
        try:
            loop.loop_settings_update(project=project, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, _errors(exc))
            return self._render(request, project, form, status=400)
        messages.success(request, "Loop settings saved.")
        return redirect("models_registry:loop", project_id=project.pk)


class LoopRunNowView(View):
    """Queue a pass now."""

    def post(self, request, project_id: int):
        project = _project(request, project_id, "change")
        try:
            loop.loop_run_request(project=project, user=request.user)
            messages.success(request, "A loop pass is queued.")
        except (ValidationError, Conflict) as exc:
            messages.error(request, _errors(exc) if isinstance(exc, ValidationError) else str(exc))
        return redirect("models_registry:loop", project_id=project.pk)


class LoopRetrainView(View):
    """One action: a snapshot with the error memory oversampled, and a training job."""

    def post(self, request, project_id: int):
        project = _project(request, project_id, "export")
        raw = request.POST.get("oversample", "5")
        try:
            oversample = int(raw) if raw.strip().isdigit() else None
            if oversample is None:
                raise ValidationError({"oversample": ["must be an integer"]})
            created = loop.retraining_request_create(
                project=project, user=request.user, oversample=oversample
            )
        except ValidationError as exc:
            messages.error(request, _errors(exc))
            return redirect("models_registry:loop", project_id=project.pk)
        messages.success(
            request,
            f"Snapshot #{created.snapshot_id} ({created.n_errors} errors × {oversample}) "
            f"and training job #{created.training_job_id} created.",
        )
        return redirect("models_registry:job-detail", job_id=created.training_job_id)
