"""Template context shared by every page: the role-aware navigation and the theme."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from annotation.models import Project
from governance import access
from governance.models import ApprovalRequest, AuditEvent, WebhookSubscription
from governance.selectors import user_theme
from models_registry.models import GenerationJob, RegisteredModel
from monitoring.models import MetricPoint

# (label, url name, model whose view permission shows the link, or None for everyone).
# Apps add their entries here as they grow pages.
NAV_ITEMS: list[tuple[str, str, type | None]] = [
    ("Home", "home", None),
    ("Projects", "annotation:project-list", Project),
    ("Models", "models_registry:model-list", RegisteredModel),
    ("Generation", "generation:job-list", GenerationJob),
    ("Attunement", "monitoring:dashboard", MetricPoint),
    ("Approvals", "approval-list", ApprovalRequest),
    ("Audit trail", "audit-list", AuditEvent),
    ("Webhooks", "webhook-list", WebhookSubscription),
    ("API docs", "api-docs", None),
]


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    theme = request.COOKIES.get("theme", "system")
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "theme": theme}
    items = []
    for label, url_name, model in NAV_ITEMS:
        if model is not None and not access.model_accessible(user=user, model=model):
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        items.append({"label": label, "url": url, "active": request.path == url})
    if user.is_staff:
        items.append({"label": "Admin console", "url": reverse("admin:index"), "active": False})
    return {"nav_items": items, "theme": user_theme(user=user)}
