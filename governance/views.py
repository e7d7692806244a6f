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

from rlhf_platform.crypto import secret_mask
from rlhf_platform.errors import Conflict
from rlhf_platform.views import RestrictedViewMixin

from . import access, selectors, services
from .approvals import approval_kinds
from .filters import AuditEventFilterSet
from .forms import WebhookSubscriptionForm
from .models import (
    ApprovalDecision,
    ApprovalRequest,
    AuditEvent,
    WebhookDelivery,
    WebhookSubscription,
)


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


def _restricted_get(request, queryset, action: str = "view", **lookup):
    obj = access.object_get(queryset=queryset, user=request.user, action=action, **lookup)
    if obj is None:
        raise Http404
    return obj


def _form_errors(form, exc: ValidationError) -> None:
    fields = {"project_id": "project"}
    for field, reasons in exc.message_dict.items():
        name = fields.get(field, field)
        form.add_error(name if name in form.fields else None, reasons)


class WebhookListView(RestrictedViewMixin, View):
    """Webhook subscriptions (admins), and the form that adds one."""

    model = WebhookSubscription

    def _form(self, request, data=None):
        return WebhookSubscriptionForm(
            data,
            can_allow_private=access.user_can(
                user=request.user, action="allow_private", obj=WebhookSubscription()
            ),
        )

    def _render(self, request, form, status=200):
        return TemplateResponse(
            request,
            "governance/webhook_list.html",
            {
                "subscriptions": selectors.webhook_subscription_list(user=request.user),
                "form": form,
                "can_add": access.user_can_add(user=request.user, model=WebhookSubscription),
            },
            status=status,
        )

    def get(self, request):
        return self._render(request, self._form(request))

    def post(self, request):
        if not access.user_can_add(user=request.user, model=WebhookSubscription):
            raise PermissionDenied("You may not add webhooks.")
        form = self._form(request, request.POST)
        if form.is_valid():
            values = form.values()
            values.pop("is_active", None)
            try:
                subscription, secret = services.webhook_subscription_create(
                    user=request.user, **values
                )
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                # The one time the secret is shown: rendered, never put in a URL or session.
                return _detail_render(request, subscription, secret=secret, status=201)
        return self._render(request, form, status=400)


def _detail_render(request, subscription, *, secret: str = "", form=None, status: int = 200):
    can_private = access.user_can(user=request.user, action="allow_private", obj=subscription)
    if form is None:
        form = WebhookSubscriptionForm(
            initial={
                "name": subscription.name,
                "url": subscription.url,
                "event_types": subscription.event_types,
                "project": subscription.project_id,
                "allow_private": subscription.allow_private,
                "is_active": subscription.is_active,
            },
            can_allow_private=can_private,
        )
    return TemplateResponse(
        request,
        "governance/webhook_detail.html",
        {
            "subscription": subscription,
            "secret": secret,
            "secret_masked": secret_mask(text=subscription.secret),
            "form": form,
            "can_change": access.user_can(user=request.user, action="change", obj=subscription),
            "deliveries": selectors.webhook_delivery_list(
                user=request.user, subscription=subscription
            )[:50],
        },
        status=status,
    )


class WebhookView(RestrictedViewMixin, View):
    """One subscription: its settings (editable), masked secret and delivery log."""

    model = WebhookSubscription

    def get(self, request, subscription_id):
        subscription = _restricted_get(
            request, WebhookSubscription.objects.all(), pk=subscription_id
        )
        return _detail_render(request, subscription)

    def post(self, request, subscription_id):
        subscription = _restricted_get(
            request, WebhookSubscription.objects.all(), action="change", pk=subscription_id
        )
        form = WebhookSubscriptionForm(
            request.POST,
            can_allow_private=access.user_can(
                user=request.user, action="allow_private", obj=subscription
            ),
        )
        if form.is_valid():
            try:
                services.webhook_subscription_update(
                    subscription=subscription, user=request.user, **form.values()
                )
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                messages.success(request, "Webhook saved.")
                return redirect("webhook-detail", subscription_id=subscription.pk)
        return _detail_render(request, subscription, form=form, status=400)


class WebhookRotateSecretView(RestrictedViewMixin, View):
    """Replace a subscription's secret and show the new one, once."""

    model = WebhookSubscription

    def post(self, request, subscription_id):
        subscription = _restricted_get(
            request, WebhookSubscription.objects.all(), action="change", pk=subscription_id
        )
        secret = services.webhook_subscription_secret_rotate(subscription=subscription)
        return _detail_render(request, subscription, secret=secret)


class WebhookDeleteView(RestrictedViewMixin, View):
    """Delete a subscription and its delivery log."""

    model = WebhookSubscription

    def post(self, request, subscription_id):
        subscription = _restricted_get(
            request, WebhookSubscription.objects.all(), action="delete", pk=subscription_id
        )
        services.webhook_subscription_delete(subscription=subscription)
        messages.success(request, f"Webhook {subscription.name} deleted.")
        return redirect("webhook-list")


class WebhookRedeliverView(RestrictedViewMixin, View):
    """Send a delivery's event again (a new delivery)."""

    model = WebhookDelivery

    def post(self, request, delivery_id):
        delivery = _restricted_get(
            request, WebhookDelivery.objects.all(), action="change", pk=delivery_id
        )
        try:
            again = services.webhook_delivery_redeliver(delivery=delivery)
        except Conflict as exc:
            messages.error(request, str(exc).partition(": ")[2] or str(exc))
        else:
            messages.success(request, f"Redelivery {again.delivery_id} queued.")
        return redirect("webhook-detail", subscription_id=delivery.subscription_id)
