from django.views.generic import ListView

from rlhf_platform.views import RestrictedViewMixin

from .filters import AuditEventFilterSet
from .models import AuditEvent


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
