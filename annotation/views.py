"""The annotation web UI: project list, annotator queue and labelling page, reviewer
queue and adjudication, and the project dashboard with imports and exports.

Views are thin: they look projects up through ``governance.access`` (an invisible project
is a 404, a visible one without the needed permission a 403), call the annotation services
and selectors, and render.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import markdown
import nh3
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpResponseBadRequest
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.text import slugify
from django.views import View
from django.views.generic import ListView
from django.views.generic.detail import SingleObjectMixin

from governance import access
from rlhf_platform.validation import MAX_OBJECT_ID
from rlhf_platform.views import RestrictedViewMixin

from . import exports, forms, schema, selectors, services, suggestions
from .consensus import consensus_recompute
from .errors import AssignmentConflict, IdempotencyConflict, ItemImportError, ProjectClosed
from .models import Item, Project

MAX_SHOWN_IMPORT_ERRORS = 50


def guidelines_html(project: Project) -> str:
    """The project's Markdown guidelines as sanitised HTML."""
    return nh3.clean(
        markdown.markdown(project.guidelines or "", extensions=["extra", "sane_lists"])
    )


def _post_id(request, name: str) -> int | None:
    """A posted row id, or None when it is not one (not a number, or out of range)."""
    try:
        value = int(request.POST.get(name, ""))
    except ValueError:
        return None
    return value if 1 <= value <= MAX_OBJECT_ID else None


class ProjectListView(RestrictedViewMixin, ListView):
    """Projects the user may see, with what they may do in each; researchers create here."""

    model = Project
    template_name = "annotation/project_list.html"
    context_object_name = "projects"
    paginate_by = 50

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        can_annotate = set(selectors.project_list(user=user, action="annotate").values_list("pk"))
        can_review = set(selectors.project_list(user=user, action="review").values_list("pk"))
        context["rows"] = [
            {
                "project": project,
                "can_annotate": (project.pk,) in can_annotate,
                "can_review": (project.pk,) in can_review,
            }
            for project in context["projects"]
        ]
        context["can_create"] = access.user_can_add(user=user, model=Project)
        context.setdefault("create_form", forms.ProjectCreateForm())
        return context

    def post(self, request, *args, **kwargs):
        if not access.user_can_add(user=request.user, model=Project):
            raise PermissionDenied("You may not create projects.")
        form = forms.ProjectCreateForm(request.POST)
        if form.is_valid():
            try:
                project = services.project_create(created_by=request.user, **form.cleaned_data)
            except ValidationError as exc:
                for field, reasons in forms.errors_by_field(exc).items():
                    for reason in reasons:
                        form.add_error(field if field in form.fields else None, reason)
            else:
                messages.success(request, f"Project “{project.name}” created.")
                return redirect("annotation:project-dashboard", project_id=project.pk)
        self.object_list = self.get_queryset()
        context = self.get_context_data(create_form=form)
        return self.render_to_response(context, status=400)


class ProjectMixin(RestrictedViewMixin, SingleObjectMixin):
    """Loads the project named in the URL.

    Projects are looked up among those the user may view, so anyone else gets a 404; the
    user must also hold ``project_action`` on it, else 403.
    """

    model = Project
    pk_url_kwarg = "project_id"
    context_object_name = "project"
    project_action = "view"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            self.setup_project(request)
        return super().dispatch(request, *args, **kwargs)

    def setup_project(self, request) -> None:
        self.object = self.project = self.get_object()
        access.require(user=request.user, action=self.project_action, obj=self.project)

    def render(self, template: str, context: dict, *, status: int = 200) -> TemplateResponse:
        return TemplateResponse(
            self.request, template, {"project": self.project, **context}, status=status
        )


# ----------------------------------------------------------------------------------------
# Annotators
# ----------------------------------------------------------------------------------------


class QueueView(ProjectMixin, View):
    """An annotator's starting point: their progress, the guidelines and a Start button."""

    project_action = "annotate"

    def get(self, request, *args, **kwargs):
        return self.render(
            "annotation/queue.html",
            {
                "progress": selectors.annotator_progress(
                    project=self.project, annotator=request.user
                ),
                "quality": selectors.annotator_quality(
                    project=self.project, annotator=request.user
                ),
                "guidelines": guidelines_html(self.project),
            },
        )


class LabelView(ProjectMixin, View):
    """The labelling page: the next item, the question form, keyboard first.

    In blind projects nothing here reads other annotators' answers or the consensus.  In
    non-blind projects, after an answer the page shows how the others answered *that*
    (already answered) item — never the current one, so nobody is steered.
    """

    LAST_ITEM_KEY = "annotation_last_item"

    project_action = "annotate"

    def get(self, request, *args, **kwargs):
        try:
            assignment = services.assignment_next(project=self.project, annotator=request.user)
        except ProjectClosed:
            return self.render_nothing_to_label(status=409)
        if assignment is None:
            return self.render_nothing_to_label()
        return self.render_item(
            assignment.item, idempotency_key=str(uuid.uuid4()), previous=self.previous_item()
        )

    def render_nothing_to_label(self, *, status: int = 200) -> TemplateResponse:
        """The "done" page; it says why when the project is not active."""
        progress = selectors.annotator_progress(project=self.project, annotator=self.request.user)
        return self.render("annotation/done.html", {"progress": progress}, status=status)

    def previous_item(self) -> dict | None:
        """Feedback on the item this annotator just answered (non-blind projects only)."""
        item_id = self.request.session.pop(self.LAST_ITEM_KEY, None)
        if self.project.blind or item_id is None:
            return None
        return {
            "others": selectors.answer_summary(
                project=self.project, item_id=item_id, exclude_annotator=self.request.user
            )
        }

    def post(self, request, *args, **kwargs):
        item_id = _post_id(request, "item_id")
        item = None
        if item_id is not None:
            item = selectors.project_item(project=self.project, item_id=item_id, user=request.user)
        if item is None:
            return HttpResponseBadRequest("item_id: not an item of this project")
        key = request.POST.get("idempotency_key", "")
        answer = None
        try:
            answer = forms.answer_from_post(
                questions=self.project.question_schema["questions"],
                data=request.POST,
                n_responses=len(item.responses),
            )
            services.annotation_submit(
                project=self.project,
                item_id=item.pk,
                annotator=request.user,
                answer=answer,
                idempotency_key=key,
            )
        except ValidationError as exc:
            return self.render_item(
                item,
                idempotency_key=key or str(uuid.uuid4()),
                answer=answer,
                errors=forms.errors_by_field(exc),
                status=400,
            )
        except ProjectClosed:
            self.project.refresh_from_db(fields=["status"])
            return self.render_nothing_to_label(status=409)
        except (AssignmentConflict, IdempotencyConflict) as exc:
            messages.error(request, f"{exc} Here is your next item.")
            return redirect("annotation:label", project_id=self.project.pk)
        messages.success(request, "Answer saved.")
        if not self.project.blind:
            request.session[self.LAST_ITEM_KEY] = item.pk
        return redirect("annotation:label", project_id=self.project.pk)

    def render_item(
        self, item: Item, *, idempotency_key, answer=None, errors=None, status=200, previous=None
    ):
        questions = self.project.question_schema["questions"]
        labels = forms.response_labels(len(item.responses))
        return self.render(
            "annotation/label.html",
            {
                "item": item,
                # Only the text reaches the page: models and metadata could bias annotators.
                "responses": [
                    {"index": i, "label": label, "text": response["text"]}
                    for i, (label, response) in enumerate(zip(labels, item.responses, strict=True))
                ],
                "widgets": forms.question_widgets(
                    questions=questions, responses=item.responses, answer=answer, errors=errors
                ),
                "errors": errors or {},
                "previous": previous,
                # A registered provider's hint (a model's suggestion), where the project
                # shows them; never a vote.
                "suggestion": suggestions.item_suggestion(project=self.project, item=item),
                "idempotency_key": idempotency_key,
                "progress": selectors.annotator_progress(
                    project=self.project, annotator=self.request.user
                ),
                "guidelines": guidelines_html(self.project),
                "label_config": {
                    "questions": questions,
                    "responses": [response["text"] for response in item.responses],
                    "labels": labels,
                },
                "pairwise": next((q for q in questions if q["type"] == "pairwise"), None),
                "has_spans": any(q["type"] == "spans" for q in questions),
                "can_skip": self.project.skip_policy != Project.SkipPolicy.NEVER,
                "skip_needs_reason": self.project.skip_policy == Project.SkipPolicy.REASON,
            },
            status=status,
        )


class SkipView(ProjectMixin, View):
    """Give the current item back (with a reason where the project asks for one)."""

    project_action = "annotate"

    def post(self, request, *args, **kwargs):
        item_id = _post_id(request, "item_id")
        if item_id is None:
            return HttpResponseBadRequest("item_id: must be an item id")
        try:
            services.assignment_skip(
                project=self.project,
                item_id=item_id,
                annotator=request.user,
                reason=request.POST.get("reason", ""),
            )
        except ValidationError as exc:
            for field, reasons in forms.errors_by_field(exc).items():
                messages.error(request, f"Not skipped — {field}: {'; '.join(reasons)}")
        except AssignmentConflict as exc:
            messages.error(request, str(exc))
        else:
            messages.info(request, "Item skipped.")
        return redirect("annotation:label", project_id=self.project.pk)


# ----------------------------------------------------------------------------------------
# Reviewers
# ----------------------------------------------------------------------------------------


class ReviewQueueView(ProjectMixin, View):
    """Items whose annotators disagree, lowest agreement first."""

    project_action = "review"

    def get(self, request, *args, **kwargs):
        questions = self.project.question_schema["questions"]
        classes = schema.label_classes({"questions": questions}, n_responses=10)
        rows = [
            {"consensus": c, "label": classes[c.label] if 0 <= c.label < len(classes) else c.label}
            for c in selectors.disagreement_queue(project=self.project)
        ]
        return self.render("annotation/review_queue.html", {"rows": rows})


class ReviewItemView(ProjectMixin, View):
    """One item with every answer side by side, its consensus and the adjudication form."""

    project_action = "review"

    def setup_project(self, request) -> None:
        super().setup_project(request)
        self.item = selectors.project_item(
            project=self.project, item_id=self.kwargs["item_id"], user=request.user
        )
        if self.item is None:
            raise Http404("No such item in this project.")

    def get(self, request, *args, **kwargs):
        return self.render_review()

    def post(self, request, *args, **kwargs):
        primary = schema.primary_question(self.project.question_schema)
        if primary is None:
            return HttpResponseBadRequest("This project has no question to adjudicate.")
        reason = request.POST.get("reason", "")
        answer = None
        try:
            answer = forms.answer_from_post(
                questions=[primary], data=request.POST, n_responses=len(self.item.responses)
            )
            services.adjudication_record(
                project=self.project,
                item_id=self.item.pk,
                reviewer=request.user,
                answer=answer,
                reason=reason,
            )
        except ValidationError as exc:
            return self.render_review(
                answer=answer,
                reason=reason,
                errors=forms.errors_by_field(exc),
                status=400,
            )
        messages.success(request, "Adjudication recorded.")
        return redirect("annotation:review-queue", project_id=self.project.pk)

    def render_review(self, *, answer=None, reason=None, errors=None, status=200):
        item, project_schema = self.item, self.project.question_schema
        review = selectors.item_review(item=item)
        primary = schema.primary_question(project_schema)
        n = len(item.responses)
        labels = forms.response_labels(n)
        classes = schema.label_classes(project_schema, n_responses=n)

        def label_name(code):
            return classes[code] if code is not None and 0 <= code < len(classes) else "—"

        answers = [
            {
                "annotation": a,
                "primary": forms.answer_summary(
                    question=primary,
                    value=a.full_answer.get(primary["name"]) if primary else None,
                    n_responses=n,
                ),
                "others": [
                    {"name": q["name"], "type": q["type"], "value": a.full_answer[q["name"]]}
                    for q in project_schema["questions"]
                    if q is not primary and a.full_answer.get(q["name"]) not in (None, "", [])
                ],
            }
            for a in review["annotations"]
        ]
        adjudication = review["adjudication"]
        if answer is None and adjudication is not None:
            answer = adjudication.answer
        consensus = review["consensus"]
        return self.render(
            "annotation/review_item.html",
            {
                "item": item,
                "responses": [
                    {"index": i, "label": label, "text": r["text"], "model": r.get("model", "")}
                    for i, (label, r) in enumerate(zip(labels, item.responses, strict=True))
                ],
                "answers": answers,
                "consensus": consensus,
                "consensus_labels": consensus
                and {
                    "final": label_name(consensus.label),
                    "majority": label_name(consensus.majority_label),
                    "dawid_skene": label_name(consensus.dawid_skene_label),
                },
                "adjudication": adjudication,
                "adjudication_label": adjudication and label_name(adjudication.label),
                "widgets": forms.question_widgets(
                    questions=[primary] if primary else [],
                    responses=item.responses,
                    answer=answer,
                    errors=errors,
                ),
                "reason": adjudication.reason if reason is None and adjudication else reason,
                "errors": errors or {},
            },
            status=status,
        )


# ----------------------------------------------------------------------------------------
# Dashboard, imports and exports
# ----------------------------------------------------------------------------------------

METRICS = selectors.AGREEMENT_METRICS


class DashboardView(ProjectMixin, View):
    """Progress, agreement over time, annotator quality, imports, exports and snapshots."""

    def get(self, request, *args, **kwargs):
        return self.render_dashboard()

    def render_dashboard(self, *, status: int = 200, **extra) -> TemplateResponse:
        user, project = self.request.user, self.project
        can = {
            action: access.user_can(user=user, action=action, obj=project)
            for action in ("annotate", "review", "change", "export", "report")
        }
        dashboard = selectors.project_dashboard(project=project)
        jobs = list(selectors.import_job_list(project=project, user=user)[:10])
        for job in jobs:
            job.waiting_reason = selectors.import_job_wait_reason(job=job)
        latest = (dashboard["latest"] or {}).get("metrics") or {}
        chart_data = {
            "metrics": [{"key": key, "label": label} for key, label in METRICS],
            "history": [
                {
                    "t": row["computed_at"],
                    "n_annotations": row["n_annotations"],
                    "n_complete": row["n_complete"],
                    **{key: (row["metrics"] or {}).get(key) for key, _ in METRICS},
                }
                for row in dashboard["history"]
            ],
        }
        context = {
            "dashboard": dashboard,
            "progress": dashboard["progress"],
            "metrics": [
                {"key": key, "label": label, "value": latest.get(key)} for key, label in METRICS
            ],
            "latest": dashboard["latest"],
            "chart_data": chart_data,
            "history_rows": [
                {**row, "values": [row[key] for key, _ in METRICS]}
                for row in reversed(chart_data["history"])
            ],
            # Annotators see the project's progress, not their peers' quality.
            "show_annotators": can["report"],
            "can": can,
            "can_recompute": can["review"] or can["change"],
            "import_form": forms.ItemImportForm(),
            "protection_form": forms.DataProtectionForm.for_project(project),
            "export_form": forms.DatasetExportForm(),
            "snapshots": selectors.snapshot_list(project=project, user=user),
            "import_jobs": jobs,
            **extra,
        }
        return self.render("annotation/dashboard.html", context, status=status)


class RecomputeView(DashboardView):
    """Recompute consensus and agreement now (reviewers and researchers)."""

    def setup_project(self, request) -> None:
        self.object = self.project = self.get_object()
        if not (
            access.user_can(user=request.user, action="review", obj=self.project)
            or access.user_can(user=request.user, action="change", obj=self.project)
        ):
            raise PermissionDenied("You may not recompute this project's consensus.")

    def get(self, request, *args, **kwargs):
        return redirect("annotation:project-dashboard", project_id=self.project.pk)

    def post(self, request, *args, **kwargs):
        stats = consensus_recompute(project=self.project)
        messages.success(
            request,
            f"Recomputed: {stats.n_annotations} annotations in {stats.duration_ms} ms.",
        )
        return redirect("annotation:project-dashboard", project_id=self.project.pk)


class ImportView(DashboardView):
    """Upload a file of items; all or nothing, with the rejected rows listed."""

    project_action = "change"

    def get(self, request, *args, **kwargs):
        return redirect("annotation:project-dashboard", project_id=self.project.pk)

    def post(self, request, *args, **kwargs):
        form = forms.ItemImportForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_dashboard(import_form=form, status=400)
        if form.cleaned_data["background"]:
            job = services.import_job_create(
                project=self.project,
                user=request.user,
                file=form.cleaned_data["file"],
                fmt=form.cleaned_data["format"],
            )
            messages.success(request, f"Import job {job.pk} queued; its outcome appears below.")
            return redirect("annotation:project-dashboard", project_id=self.project.pk)
        try:
            result = services.items_import(
                project=self.project,
                file=form.cleaned_data["file"],
                fmt=form.cleaned_data["format"],
            )
        except ItemImportError as exc:
            return self.render_dashboard(
                import_form=form,
                import_errors=exc.errors[:MAX_SHOWN_IMPORT_ERRORS],
                import_error_count=len(exc.errors),
                import_errors_truncated=exc.truncated or len(exc.errors) > MAX_SHOWN_IMPORT_ERRORS,
                status=400,
            )
        redacted = ", ".join(f"{n} {name}" for name, n in result.redactions.items())
        messages.success(
            request,
            f"Imported {result.created} new item(s) from {result.rows} row(s); "
            f"{result.skipped_existing} were already in the project."
            + (f" Personal data redacted: {redacted}." if redacted else ""),
        )
        return redirect("annotation:project-dashboard", project_id=self.project.pk)


class DataProtectionView(DashboardView):
    """Change the project's PII redaction and retention settings (audited)."""

    project_action = "change"

    def get(self, request, *args, **kwargs):
        return redirect("annotation:project-dashboard", project_id=self.project.pk)

    def post(self, request, *args, **kwargs):
        form = forms.DataProtectionForm(request.POST)
        if form.is_valid():
            try:
                services.project_update(project=self.project, **form.cleaned_data)
            except ValidationError as exc:
                for field, reasons in forms.errors_by_field(exc).items():
                    for reason in reasons:
                        form.add_error(field if field in form.fields else None, reason)
            else:
                messages.success(request, "Data protection settings saved.")
                url = reverse("annotation:project-dashboard", args=[self.project.pk])
                return redirect(f"{url}#data-protection")
        return self.render_dashboard(protection_form=form, status=400)


class ExportView(DashboardView):
    """Export the labelled dataset as an immutable snapshot."""

    project_action = "export"

    def get(self, request, *args, **kwargs):
        return redirect("annotation:project-dashboard", project_id=self.project.pk)

    def post(self, request, *args, **kwargs):
        form = forms.DatasetExportForm(request.POST)
        if form.is_valid():
            try:
                snapshot = exports.dataset_export(
                    project=self.project,
                    fmt=form.cleaned_data["format"],
                    user=request.user,
                    filters=form.filters(),
                )
            except ValidationError as exc:
                for field, reasons in forms.errors_by_field(exc).items():
                    for reason in reasons:
                        form.add_error(None, f"{field}: {reason}")
            else:
                messages.success(
                    request,
                    f"Exported {snapshot.row_count} row(s) as {snapshot.get_format_display()} "
                    f"(sha256 {snapshot.sha256[:12]}…).",
                )
                url = reverse("annotation:project-dashboard", args=[self.project.pk])
                return redirect(f"{url}#snapshots")
        return self.render_dashboard(export_form=form, status=400)


class SnapshotDownloadView(ProjectMixin, View):
    """Stream a dataset snapshot's file: it holds every annotator's answers and the gold
    answers, so it needs the project's export permission, as exporting does."""

    project_action = "export"

    def get(self, request, *args, **kwargs):
        snapshot = (
            selectors.snapshot_list(project=self.project, user=request.user)
            .filter(pk=kwargs["snapshot_id"])
            .first()
        )
        if snapshot is None:
            raise Http404("No such snapshot.")
        try:
            handle = snapshot.file.open("rb")
        except FileNotFoundError:
            raise Http404("The snapshot's file is missing.") from None
        suffix = Path(snapshot.file.name).suffix
        filename = f"{slugify(self.project.name) or 'project'}-{snapshot.sha256[:12]}{suffix}"
        return FileResponse(handle, as_attachment=True, filename=filename)
