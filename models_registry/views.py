"""The models web UI under ``/models/``: registered models and their versions (metrics,
calibration plot, lineage, aliases and history), comparison, the training form and job
pages with live progress.  Thin: services and selectors do the work, ``governance.access``
decides who sees what (annotators get 403)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views import View
from django.views.generic import ListView

from annotation import selectors as annotation_selectors
from governance import access
from rlhf_platform.errors import Conflict
from rlhf_platform.views import RestrictedViewMixin

from . import cards, selectors, services
from .forms import ModelCardForm, TrainingJobForm
from .models import BaseModel, ModelCard, ModelVersion, RegisteredModel, TrainingJob


def _restricted_get(request, queryset, **lookup):
    obj = access.object_get(queryset=queryset, user=request.user, **lookup)
    if obj is None:
        raise Http404
    return obj


def _errors(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()]
    return exc.messages


def _metric_rows(metrics: dict) -> list[tuple[str, str]]:
    """(label, shown value) for a version's scalar metrics: counts as integers, flags as
    yes/no, measurements to four significant digits."""
    rows = []
    for key, value in metrics.items():
        if isinstance(value, list | dict):
            continue
        if value is None:
            shown = "—"
        elif isinstance(value, bool):
            shown = "yes" if value else "no"
        elif isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            shown = f"{int(value):,}"
        else:
            shown = f"{value:.4g}"
        rows.append((key.replace("_", " "), shown))
    return rows


class ModelListView(RestrictedViewMixin, ListView):
    """Registered models with their aliases and latest version; base models; recent jobs."""

    model = RegisteredModel
    template_name = "models_registry/model_list.html"
    context_object_name = "models"
    paginate_by = 50

    def get_queryset(self):
        return super().get_queryset().prefetch_related("aliases__version", "versions")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        context["base_models"] = access.queryset_restrict(
            queryset=BaseModel.objects.all(), user=user
        )
        context["jobs"] = selectors.training_job_list(user=user)[:10]
        context["can_train"] = access.user_can_add(user=user, model=TrainingJob)
        return context


class RegisteredModelView(RestrictedViewMixin, View):
    """A model's versions, aliases (a move is requested here) and the aliases' history."""

    model = RegisteredModel

    def _context(self, request, model):
        return {
            "model": model,
            "versions": selectors.version_list(registered_model=model),
            "aliases": model.aliases.select_related("version", "updated_by"),
            "history": selectors.alias_history(registered_model=model),
            "can_move": access.user_can(user=request.user, action="change", obj=model),
        }

    def get(self, request, name):
        model = _restricted_get(request, RegisteredModel.objects.all(), name=name)
        return TemplateResponse(
            request, "models_registry/model_detail.html", self._context(request, model)
        )

    def post(self, request, name):
        """Ask for an alias move: it opens an approval request (aliases move only once a
        request is approved) and shows it."""
        model = _restricted_get(request, RegisteredModel.objects.all(), name=name)
        access.require(user=request.user, action="change", obj=model)
        alias = request.POST.get("alias", "").strip()
        version_id = request.POST.get("version", "")
        reason = request.POST.get("reason", "")[:10000]
        try:
            version = None
            if version_id:
                version = model.versions.filter(
                    pk=int(version_id) if version_id.isdigit() and len(version_id) < 19 else 0
                ).first()
                if version is None:
                    raise ValidationError({"version": ["no such version"]})
            approval = services.alias_move_request(
                registered_model=model, alias=alias, version=version, user=request.user,
                justification=reason,
            )  # fmt: skip
        except (ValidationError, Conflict) as exc:
            reasons = _errors(exc) if isinstance(exc, ValidationError) else [str(exc)]
            for reason_text in reasons:
                messages.error(request, reason_text)
            return TemplateResponse(
                request,
                "models_registry/model_detail.html",
                self._context(request, model),
                status=400 if isinstance(exc, ValidationError) else 409,
            )
        messages.success(
            request,
            f"Request #{approval.pk} opened: “{approval.title}”. The alias moves once "
            f"{approval.quorum} reviewers approve it.",
        )
        return redirect("approval-detail", request_id=approval.pk)


class VersionView(RestrictedViewMixin, View):
    """One version: metrics, calibration (reliability plot), lineage, aliases."""

    model = ModelVersion

    def get(self, request, version_id):
        version = _restricted_get(
            request,
            ModelVersion.objects.select_related("registered_model", "base_model", "training_job"),
            pk=version_id,
        )
        calibration = version.calibration or {}
        chart = {
            "before": (calibration.get("before") or {}).get("reliability"),
            "after": (calibration.get("after") or {}).get("reliability"),
        }
        context = {
            "version": version,
            "metrics": _metric_rows(version.metrics),
            "lineage": selectors.version_lineage(version=version),
            "calibration": calibration,
            "stages": [
                ("Raw margins", calibration.get("before")),
                (
                    f"Temperature T = {calibration.get('temperature', 1):.3g}",
                    calibration.get("after"),
                ),
                ("Platt scaling", calibration.get("platt_after")),
            ],
            "chart": chart,
            "aliases": sorted(a.name for a in version.aliases.all()),
            "siblings": version.registered_model.versions.exclude(pk=version.pk).order_by(
                "-number"
            )[:10],
        }
        return TemplateResponse(request, "models_registry/version_detail.html", context)


class CompareView(RestrictedViewMixin, View):
    """Versions side by side (``?v=ref&v=ref``)."""

    model = ModelVersion

    def get(self, request):
        versions = []
        for ref in request.GET.getlist("v")[:6]:
            version = selectors.version_resolve(ref=ref)
            if version is None or not access.user_can(
                user=request.user, action="view", obj=version
            ):
                raise Http404
            versions.append(version)
        comparison = selectors.version_compare(versions=versions) if versions else None
        return TemplateResponse(request, "models_registry/compare.html", {"comparison": comparison})


class JobListView(RestrictedViewMixin, View):
    """Training jobs, and the form that starts one from a snapshot."""

    model = TrainingJob

    def _render(self, request, form, status=200):
        return TemplateResponse(
            request,
            "models_registry/job_list.html",
            {
                "jobs": selectors.training_job_list(user=request.user)[:100],
                "form": form,
                "can_train": access.user_can_add(user=request.user, model=TrainingJob),
            },
            status=status,
        )

    def _form(self, request, data=None):
        snapshots = annotation_selectors.snapshot_list_readable(user=request.user)[:200]
        return TrainingJobForm(data, snapshots=snapshots)

    def get(self, request):
        return self._render(request, self._form(request))

    def post(self, request):
        if not access.user_can_add(user=request.user, model=TrainingJob):
            raise PermissionDenied("You may not start training jobs.")
        form = self._form(request, request.POST)
        if form.is_valid():
            try:
                job = services.training_job_create(
                    user=request.user,
                    kind=form.cleaned_data["kind"],
                    registered_model_name=form.cleaned_data["registered_model"],
                    base_model=form.cleaned_data["base_model"],
                    snapshot_id=form.cleaned_data["snapshot"],
                    config=form.config(),
                )
            except ValidationError as exc:
                for reason in _errors(exc):
                    form.add_error(None, reason)
            else:
                messages.success(request, f"Training job {job.pk} queued.")
                return redirect("models_registry:job-detail", job_id=job.pk)
        return self._render(request, form, status=400)


class JobView(RestrictedViewMixin, View):
    """A job's page: progress bar and loss curve, updated by polling ``progress.json``."""

    model = TrainingJob

    def get(self, request, job_id):
        job = _restricted_get(
            request, TrainingJob.objects.select_related("registered_model", "base_model"), pk=job_id
        )
        return TemplateResponse(
            request,
            "models_registry/job_detail.html",
            {
                "job": job,
                "progress": selectors.training_job_progress(job=job),
                "can_cancel": not job.finished
                and access.user_can(user=request.user, action="change", obj=job),
            },
        )


class JobProgressView(RestrictedViewMixin, View):
    """The job's live state as JSON (polled by the job page)."""

    model = TrainingJob

    def get(self, request, job_id):
        job = _restricted_get(request, TrainingJob.objects.all(), pk=job_id)
        return JsonResponse(selectors.training_job_progress(job=job))


class JobCancelView(RestrictedViewMixin, View):
    """Cancel a job (POST)."""

    model = TrainingJob

    def post(self, request, job_id):
        job = _restricted_get(request, TrainingJob.objects.all(), pk=job_id)
        access.require(user=request.user, action="change", obj=job)
        try:
            services.training_job_cancel(job=job)
            messages.success(request, f"Job {job.pk}: cancel requested.")
        except Conflict as exc:
            messages.error(request, str(exc))
        return redirect("models_registry:job-detail", job_id=job.pk)


class CardView(RestrictedViewMixin, View):
    """A version's model card, and (for those who may change it) the form that edits its
    human-entered text."""

    model = ModelVersion

    def _version(self, request, version_id):
        return _restricted_get(
            request,
            ModelVersion.objects.select_related("registered_model", "base_model"),
            pk=version_id,
        )

    def _render(self, request, version, form=None, status=200):
        document = cards.card_compose(version=version)
        card = document.card or ModelCard(version=version)
        can_edit = access.user_can(user=request.user, action="change", obj=card)
        if can_edit and form is None:
            form = ModelCardForm(initial=card.human_fields())
        context = {
            **cards.card_context(document),
            "version": version,
            "form": form if can_edit else None,
            "gate": selectors.model_card_gate_check(version=version),
            "revisions": selectors.model_card_revisions(card=card)[:20] if card.pk else [],
        }
        return TemplateResponse(request, "models_registry/card.html", context, status=status)

    def get(self, request, version_id):
        return self._render(request, self._version(request, version_id))

    def post(self, request, version_id):
        version = self._version(request, version_id)
        card = selectors.model_card_current(version=version) or ModelCard(version=version)
        access.require(user=request.user, action="change", obj=card)
        form = ModelCardForm(request.POST)
        if form.is_valid():
            data = dict(form.cleaned_data)
            note = data.pop("note")
            try:
                card = services.model_card_update(
                    version=version, user=request.user, fields=data, note=note
                )
            except ValidationError as exc:
                for field_name, reasons in exc.message_dict.items():
                    form.add_error(field_name if field_name in form.fields else None, reasons)
            else:
                messages.success(request, f"Model card saved (revision {card.revision}).")
                return redirect("models_registry:version-card", version_id=version.pk)
        return self._render(request, version, form=form, status=400)


class CardDownloadView(RestrictedViewMixin, View):
    """The card as a file: Markdown (``card.md``) or PDF (``card.pdf``), named after the
    version and the card revision."""

    model = ModelVersion
    fmt = "md"

    def get(self, request, version_id):
        version = _restricted_get(
            request,
            ModelVersion.objects.select_related("registered_model", "base_model"),
            pk=version_id,
        )
        document = cards.card_compose(version=version)
        name = f"model-card-{version.registered_model.name}-{version.number}-r{document.revision}"
        if self.fmt == "pdf":
            response = HttpResponse(cards.card_pdf(document), content_type="application/pdf")
        else:
            response = HttpResponse(
                cards.card_markdown(document), content_type="text/markdown; charset=utf-8"
            )
        response["Content-Disposition"] = f'attachment; filename="{name}.{self.fmt}"'
        response["X-Content-SHA256"] = document.content_sha256
        return response
