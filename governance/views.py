"""Governance pages: the audit trail, and the ethics committee's approval queue and review
pages.  Thin: services and selectors do the work, ``governance.access`` decides."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views import View
from django.views.generic import ListView

from rlhf_platform.errors import Conflict
from rlhf_platform.views import RestrictedViewMixin

from . import access, selectors, services
from .approvals import approval_kinds
from .filters import AuditEventFilterSet
from .models import ApprovalDecision, ApprovalRequest, AuditEvent


class AuditEventListView(RestrictedViewMixin, ListView):
    """The audit trail, newest first, filterable; for admins and the ethics committee."""

    model = AuditEvent
    template_name = "governance/audit_list.html"
    paginate_by = 50

    def get_queryset(self):
        queryset = super().get_queryset().order_by("-sequence")
        self.filterset = AuditEventFilterSet(self.request.GET or None, queryset=queryset)
        return self.filterset.qs if self.filterset.is_valid() else queryset.none()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["filter"] = self.filterset
        query = self.request.GET.copy()
        query.pop("page", None)
        context["query_string"] = query.urlencode()
        return context

    def render_to_response(self, context, **response_kwargs):
        # A filter that does not validate is the caller's mistake: say so with a 400.
        if self.filterset.is_bound and not self.filterset.is_valid():
            response_kwargs.setdefault("status", 400)
        return super().render_to_response(context, **response_kwargs)


class ApprovalQueueView(RestrictedViewMixin, ListView):
    """Requests waiting for review (or any status), filterable by kind, project, status."""

    model = ApprovalRequest
    template_name = "governance/approval_queue.html"
    paginate_by = 50
    context_object_name = "requests"

    def get_queryset(self):
        get = self.request.GET
        self.filters = {
            "kind": get.get("kind", ""),
            "project": get.get("project", "").strip(),
            "status": get.get("status", ApprovalRequest.Status.PENDING),
        }
        self.errors = []
        project = self.filters["project"]
        if project and (not project.isdigit() or len(project) > 18):
            self.errors.append("Project: give the project's number.")
        kinds = {k.key for k in approval_kinds()}
        if self.filters["kind"] and self.filters["kind"] not in kinds:
            self.errors.append("Kind: no such kind of request.")
        status = self.filters["status"]
        if status not in ("all", *ApprovalRequest.Status.values):
            self.errors.append("Status: no such status.")
        if self.errors:
            return ApprovalRequest.objects.none()
        return selectors.approval_request_list(
            user=self.request.user,
            kind=self.filters["kind"],
            project_id=int(project) if project else None,
            status="" if status == "all" else status,
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.request.GET.copy()
        query.pop("page", None)
        # Times are formatted here, once per row: the template's date filter (locale and
        # time-zone lookups per call) was most of this page's time with 50 rows.
        labels = dict(ApprovalRequest.Status.choices)
        for item in context["requests"]:
            item.status_label = labels.get(item.status, item.status)
            item.times = {
                name: (value.isoformat(), value.strftime("%Y-%m-%d %H:%M"))
                for name, value in (("opened", item.created_at), ("expires", item.expires_at))
            }
        context.update(
            filters=self.filters,
            errors=self.errors,
            kinds=approval_kinds(),
            statuses=ApprovalRequest.Status.choices,
            query_string=query.urlencode(),
            notifications=selectors.notification_list(user=self.request.user, limit=5),
        )
        return context

    def render_to_response(self, context, **response_kwargs):
        if self.errors:
            response_kwargs.setdefault("status", 400)
        return super().render_to_response(context, **response_kwargs)


class ApprovalDetailView(RestrictedViewMixin, View):
    """One request: what it asks, its evidence (from the kind's app), its gates, its
    decisions, and — for its reviewers — the decision form."""

    model = ApprovalRequest

    def _request(self, request_id):
        obj = access.object_get(
            queryset=ApprovalRequest.objects.select_related("requested_by", "subject_type"),
            user=self.request.user,
            pk=request_id,
        )
        if obj is None:
            raise Http404
        return obj

    def _render(self, approval, status=200, form=None):
        evidence = selectors.approval_evidence(request=approval)
        context = {
            "approval": approval,
            "evidence": evidence,
            "charts": any(section["charts"] for section in evidence),
            "gates": selectors.approval_gates(request=approval),
            "decisions": approval.decisions.select_related("reviewer"),
            "state": selectors.approval_reviewer_state(request=approval, user=self.request.user),
            "verdicts": ApprovalDecision.Verdict.choices,
            "form": form or {},
            "approvals": approval.decisions.filter(verdict="approve").count(),
        }
        return TemplateResponse(
            self.request, "governance/approval_detail.html", context, status=status
        )

    def get(self, request, request_id):
        return self._render(self._request(request_id))

    def post(self, request, request_id):
        approval = self._request(request_id)
        form = {
            "verdict": request.POST.get("verdict", ""),
            "rationale": request.POST.get("rationale", "")[:10000],
            "override_rationale": request.POST.get("override_rationale", "")[:10000],
        }
        try:
            services.approval_request_decide(request=approval, reviewer=request.user, **form)
        except ValidationError as exc:
            for field, reasons in exc.message_dict.items():
                messages.error(
                    request, f"{field.replace('_', ' ').capitalize()}: {' '.join(reasons)}"
                )
            return self._render(self._request(request_id), status=400, form=form)
        except PermissionDenied as exc:
            messages.error(request, str(exc))
            return self._render(self._request(request_id), status=403, form=form)
        except Conflict as exc:
            messages.error(request, str(exc).partition(": ")[2] or str(exc))
            return self._render(self._request(request_id), status=409, form=form)
        messages.success(request, "Your decision is recorded.")
        return redirect("approval-detail", request_id=approval.pk)
