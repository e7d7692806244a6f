"""The generation pages under ``/generation/``: providers (admins manage them; a connection
test), prompt sets (typed, imported, generated; reviewed) and generation jobs (queue,
progress, cancel, retry, downloads).  Thin: the services and selectors of
``providers``, ``prompts`` and ``generation`` do the work; ``governance.access`` decides."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views import View

from annotation import selectors as annotation_selectors
from governance import access
from rlhf_platform.errors import Conflict
from rlhf_platform.views import RestrictedViewMixin

from . import generation, prompts, providers
from .api.generation_views import generation_download
from .generation_forms import (
    GenerationJobForm,
    PromptSetGenerateForm,
    PromptSetImportForm,
    PromptSetTypedForm,
    ProviderForm,
)
from .generation_models import GenerationJob, Prompt, PromptSet, Provider


def _get(request, queryset, **lookup):
    obj = access.object_get(queryset=queryset, user=request.user, **lookup)
    if obj is None:
        raise Http404
    return obj


def _add_errors(form, exc: ValidationError) -> None:
    """A service's field errors onto the form (fields it has, else the form's top)."""
    items = exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]
    for field, reasons in items:
        target = field if field in form.fields else None
        for reason in reasons:
            form.add_error(target, reason if target else f"{field}: {reason}" if field else reason)


class ProviderListView(RestrictedViewMixin, View):
    """Providers with their masked keys and last test; admins add one here."""

    model = Provider

    def _render(self, request, form, status=200):
        return TemplateResponse(
            request, "models_registry/generation/provider_list.html",
            {"providers": providers.provider_list(user=request.user), "form": form,
             "can_add": access.user_can_add(user=request.user, model=Provider)},
            status=status,
        )  # fmt: skip

    def get(self, request):
        return self._render(request, ProviderForm())

    def post(self, request):
        if not access.user_can_add(user=request.user, model=Provider):
            raise PermissionDenied("Only admins add providers.")
        form = ProviderForm(request.POST)
        if form.is_valid():
            try:
                provider = providers.provider_create(user=request.user, **form.cleaned_data)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, f"Provider {provider.name} added.")
                return redirect("generation:provider-detail", provider_id=provider.pk)
        return self._render(request, form, status=400)


class ProviderView(RestrictedViewMixin, View):
    """A provider: its settings (admins change them) and the connection test's result."""

    model = Provider

    def _render(self, request, provider, form, status=200):
        return TemplateResponse(
            request, "models_registry/generation/provider_detail.html",
            {"provider": provider, "form": form,
             "can_change": access.user_can(user=request.user, action="change", obj=provider)},
            status=status,
        )  # fmt: skip

    def get(self, request, provider_id):
        provider = _get(request, Provider.objects.all(), pk=provider_id)
        initial = {f: getattr(provider, f) for f in ProviderForm.base_fields if f != "api_key"}
        return self._render(request, provider, ProviderForm(initial=initial))

    def post(self, request, provider_id):
        provider = _get(request, Provider.objects.all(), pk=provider_id)
        access.require(user=request.user, action="change", obj=provider)
        form = ProviderForm(request.POST)
        if form.is_valid():
            try:
                provider = providers.provider_update(provider=provider, **form.cleaned_data)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, f"Provider {provider.name} saved.")
                return redirect("generation:provider-detail", provider_id=provider.pk)
        return self._render(request, provider, form, status=400)


class ProviderTestView(RestrictedViewMixin, View):
    """Test a provider's connection (POST); the result is shown on its page."""

    model = Provider

    def post(self, request, provider_id):
        provider = _get(request, Provider.objects.all(), pk=provider_id)
        access.require(user=request.user, action="change", obj=provider)
        result = providers.provider_connection_test(provider=provider)
        (messages.success if result["ok"] else messages.error)(request, result["message"])
        return redirect("generation:provider-detail", provider_id=provider.pk)


class PromptSetListView(RestrictedViewMixin, View):
    """Prompt sets, and the three ways to make one: typed, imported, generated."""

    model = PromptSet
    FORMS = {"typed": PromptSetTypedForm, "import": PromptSetImportForm,
             "generate": PromptSetGenerateForm}  # fmt: skip

    def _forms(self, request, bound=None):
        choices = providers.provider_list(user=request.user)
        forms = {
            "typed": PromptSetTypedForm(prefix="typed"),
            "import": PromptSetImportForm(prefix="import"),
            "generate": PromptSetGenerateForm(prefix="generate", providers=choices),
        }
        if bound is not None:
            forms[bound[0]] = bound[1]
        return forms

    def _render(self, request, forms, status=200):
        return TemplateResponse(
            request, "models_registry/generation/prompt_set_list.html",
            {"prompt_sets": prompts.prompt_set_list(user=request.user)[:200], "forms": forms,
             "can_add": access.user_can_add(user=request.user, model=PromptSet)},
            status=status,
        )  # fmt: skip

    def get(self, request):
        return self._render(request, self._forms(request))

    def post(self, request):
        if not access.user_can_add(user=request.user, model=PromptSet):
            raise PermissionDenied("You may not add prompt sets.")
        mode = request.POST.get("mode", "")
        if mode not in self.FORMS:
            return self._render(request, self._forms(request), status=400)
        if mode == "generate":
            choices = providers.provider_list(user=request.user)
            form = PromptSetGenerateForm(request.POST, prefix=mode, providers=choices)
        else:
            form = self.FORMS[mode](request.POST, request.FILES, prefix=mode)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if mode == "typed":
                    made = prompts.prompt_set_create(user=request.user, name=data["name"],
                                                     prompts=form.prompt_list())  # fmt: skip
                elif mode == "import":
                    made = prompts.prompt_set_import(
                        user=request.user, name=data["name"], file=data["file"],
                        filename=data["file"].name,
                    )  # fmt: skip
                else:
                    provider = _get(request, Provider.objects.all(), pk=data["provider"])
                    made = prompts.prompt_set_generate_request(
                        user=request.user, name=data["name"], provider=provider,
                        topics=form.topic_list(), template=data["template"],
                        settings=form.settings(),
                    )  # fmt: skip
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, f"Prompt set {made.name} created.")
                return redirect("generation:prompt-set-detail", prompt_set_id=made.pk)
        return self._render(request, self._forms(request, (mode, form)), status=400)


class PromptSetView(RestrictedViewMixin, View):
    """A prompt set's prompts, with keep / discard for review (POST)."""

    model = PromptSet

    def get(self, request, prompt_set_id):
        prompt_set = _get(request, PromptSet.objects.select_related("provider"), pk=prompt_set_id)
        rows = prompt_set.prompts.select_related("duplicate_of")[:2000]
        return TemplateResponse(
            request, "models_registry/generation/prompt_set_detail.html",
            {"prompt_set": prompt_set, "prompts": rows, "statuses": Prompt.Status,
             "can_review": access.user_can(user=request.user, action="change", obj=prompt_set)},
        )  # fmt: skip

    def post(self, request, prompt_set_id):
        prompt_set = _get(request, PromptSet.objects.all(), pk=prompt_set_id)
        access.require(user=request.user, action="change", obj=prompt_set)
        keep, discard = [], []
        for key, value in request.POST.items():
            if key.startswith("prompt-") and key[7:].isdigit():
                (keep if value == "keep" else discard if value == "discard" else []).append(
                    int(key[7:])
                )
        if request.POST.get("all") == "keep-pending":
            keep += list(prompt_set.prompts.filter(status="pending").values_list("pk", flat=True))
        try:
            result = prompts.prompt_set_review(prompt_set=prompt_set, keep=keep, discard=discard,
                                               user=request.user)  # fmt: skip
            messages.success(request, f"{result['kept']} kept, {result['discarded']} discarded.")
        except (ValidationError, Conflict) as exc:
            messages.error(request, "; ".join(getattr(exc, "messages", [str(exc)])))
        return redirect("generation:prompt-set-detail", prompt_set_id=prompt_set.pk)


class JobListView(RestrictedViewMixin, View):
    """Generation jobs, and the form that queues one."""

    model = GenerationJob

    def _form(self, request, data=None):
        ready = prompts.prompt_set_list(user=request.user).filter(status="ready")
        return GenerationJobForm(
            data, prompt_sets=ready[:500], providers=providers.provider_list(user=request.user),
            projects=annotation_selectors.project_list(user=request.user, action="change")[:500],
        )  # fmt: skip

    def _render(self, request, form, status=200):
        return TemplateResponse(
            request, "models_registry/generation/job_list.html",
            {"jobs": generation.generation_job_list(user=request.user)[:100], "form": form,
             "can_add": access.user_can_add(user=request.user, model=GenerationJob)},
            status=status,
        )  # fmt: skip

    def get(self, request):
        return self._render(request, self._form(request))

    def post(self, request):
        if not access.user_can_add(user=request.user, model=GenerationJob):
            raise PermissionDenied("You may not start generation jobs.")
        form = self._form(request, request.POST)
        if form.is_valid():
            prompt_set = _get(request, PromptSet.objects.all(), pk=form.cleaned_data["prompt_set"])
            provider = _get(request, Provider.objects.all(), pk=form.cleaned_data["provider"])
            try:
                job = generation.generation_job_create(
                    user=request.user, prompt_set=prompt_set, provider=provider,
                    **form.job_options(),
                )  # fmt: skip
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, f"Generation job {job.pk} queued.")
                return redirect("generation:job-detail", generation_job_id=job.pk)
        return self._render(request, form, status=400)


class JobView(RestrictedViewMixin, View):
    """A job's page: progress (polled), figures, errors, downloads, cancel and retry."""

    model = GenerationJob

    def get(self, request, generation_job_id):
        job = _get(request, GenerationJob.objects.select_related("provider", "prompt_set"),
                   pk=generation_job_id)  # fmt: skip
        can_change = access.user_can(user=request.user, action="change", obj=job)
        return TemplateResponse(
            request, "models_registry/generation/job_detail.html",
            {"job": job, "summary": generation.generation_job_summary(job=job),
             "errors": job.responses.filter(ok=False).select_related("prompt")[:50],
             "samples": job.responses.filter(ok=True).select_related("prompt")[:20],
             "can_cancel": can_change and not job.finished,
             "can_retry": can_change and job.finished},
        )  # fmt: skip


class JobProgressView(RestrictedViewMixin, View):
    """The job's figures as JSON (polled by its page)."""

    model = GenerationJob

    def get(self, request, generation_job_id):
        job = _get(request, GenerationJob.objects.all(), pk=generation_job_id)
        return JsonResponse(generation.generation_job_summary(job=job))


class JobActionView(RestrictedViewMixin, View):
    """Cancel or retry a job (POST)."""

    model = GenerationJob
    action = ""

    def post(self, request, generation_job_id):
        job = _get(request, GenerationJob.objects.all(), pk=generation_job_id)
        access.require(user=request.user, action="change", obj=job)
        try:
            if self.action == "cancel":
                generation.generation_job_cancel(job=job)
                messages.success(request, f"Job {job.pk}: cancel requested.")
            else:
                generation.generation_job_retry(job=job)
                messages.success(request, f"Job {job.pk} queued again (missing responses only).")
        except Conflict as exc:
            messages.error(request, str(exc))
        return redirect("generation:job-detail", generation_job_id=job.pk)


class JobDownloadView(RestrictedViewMixin, View):
    """The job's results as JSON or CSV (``?as=csv``)."""

    model = GenerationJob

    def get(self, request, generation_job_id):
        job = _get(request, GenerationJob.objects.select_related("provider"), pk=generation_job_id)
        fmt = request.GET.get("as", "json")
        if fmt not in ("json", "csv"):
            raise Http404
        return generation_download(job=job, fmt=fmt)
