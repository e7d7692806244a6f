"""Providers: OpenAI-compatible endpoints that generation calls (services and selectors).

The API key is a secret: it is stored encrypted (``Provider.api_key`` is an
``EncryptedTextField``), never written to a log or an audit payload (the audit records
only *whether* it changed), never exported, and read back only as ``api_key_masked``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from governance import access
from governance.services import audit_event_record
from rlhf_platform.errors import Conflict
from rlhf_platform.validation import texts_validate

from .generation_models import Provider
from .openai_compat import Endpoint, base_url_problem, models_list

logger = logging.getLogger(__name__)

# name: (type, lowest, highest)
PROVIDER_LIMITS: dict[str, tuple[type, float, float]] = {
    "requests_per_minute": (int, 1, 1_000_000),
    "tokens_per_minute": (int, 1, 1_000_000_000),
    "max_concurrency": (int, 1, 256),
    "timeout_seconds": (float, 0.1, 600),
}
EDITABLE = ("name", "base_url", "model_name", "api_key", *PROVIDER_LIMITS)


def _audit_view(provider: Provider) -> dict[str, Any]:
    """What the audit trail records of a provider: everything but the key."""
    return {
        "name": provider.name,
        "base_url": provider.base_url,
        "model_name": provider.model_name,
        "requests_per_minute": provider.requests_per_minute,
        "tokens_per_minute": provider.tokens_per_minute,
        "max_concurrency": provider.max_concurrency,
        "timeout_seconds": provider.timeout_seconds,
        "has_api_key": bool(provider.api_key),
    }


def _provider_clean(provider: Provider) -> None:
    errors: dict[str, list[str]] = {}
    provider.name = (provider.name or "").strip()
    provider.base_url = (provider.base_url or "").strip().rstrip("/")
    provider.model_name = (provider.model_name or "").strip()
    try:
        texts_validate(
            name=provider.name,
            model_name=provider.model_name,
            api_key=provider.api_key,
            base_url=provider.base_url,
        )
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if not provider.name:
        errors.setdefault("name", []).append("required")
    elif len(provider.name) > 100:
        errors.setdefault("name", []).append("at most 100 characters")
    if not provider.model_name:
        errors.setdefault("model_name", []).append("required")
    elif len(provider.model_name) > 200:
        errors.setdefault("model_name", []).append("at most 200 characters")
    if len(provider.base_url) > 500:
        errors.setdefault("base_url", []).append("at most 500 characters")
    elif problem := base_url_problem(provider.base_url):
        errors.setdefault("base_url", []).append(problem)
    if len(provider.api_key or "") > 4096 or any(c.isspace() for c in provider.api_key or ""):
        errors.setdefault("api_key", []).append("at most 4096 characters, without spaces")
    for field, (kind, low, high) in PROVIDER_LIMITS.items():
        value = getattr(provider, field)
        if value is None and field in ("requests_per_minute", "tokens_per_minute"):
            continue
        ok_types = (int,) if kind is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok_types):
            errors.setdefault(field, []).append(
                "must be an integer" if kind is int else "must be a number"
            )
        elif not low <= value <= high:
            errors.setdefault(field, []).append(f"must be between {low:g} and {high:g}")
    clash = Provider.objects.filter(name=provider.name).exclude(pk=provider.pk)
    if provider.name and clash.exists():
        errors.setdefault("name", []).append("a provider with this name exists")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def provider_create(*, user, **fields: Any) -> Provider:
    """Add a provider (admins; audited without its key)."""
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise ValidationError({name: ["unknown field"] for name in unknown})
    provider = Provider(created_by=user, **fields)
    _provider_clean(provider)
    provider.save()
    audit_event_record(action="provider.create", obj=provider, after=_audit_view(provider))
    return provider


@transaction.atomic
def provider_update(*, provider: Provider, **changes: Any) -> Provider:
    """Change a provider's settings; an empty or missing ``api_key`` keeps the stored key
    (audited: the key only as ``has_api_key`` and ``api_key_changed``)."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ValidationError({name: ["unknown field"] for name in unknown})
    provider = Provider.objects.select_for_update().get(pk=provider.pk)
    before = _audit_view(provider)
    key_changed = bool(changes.get("api_key")) and changes["api_key"] != provider.api_key
    if not changes.get("api_key"):
        changes.pop("api_key", None)
    for name, value in changes.items():
        setattr(provider, name, value)
    _provider_clean(provider)
    provider.save()
    audit_event_record(
        action="provider.update",
        obj=provider,
        before=before,
        after={**_audit_view(provider), "api_key_changed": key_changed},
    )
    return provider


@transaction.atomic
def provider_delete(*, provider: Provider) -> None:
    """Remove a provider no prompt set or job uses (audited)."""
    if provider.jobs.exists() or provider.prompt_sets.exists():
        raise Conflict("provider: prompt sets or generation jobs use it; it is kept")
    audit_event_record(action="provider.delete", obj=provider, before=_audit_view(provider))
    provider.delete()


def provider_endpoint(*, provider: Provider) -> Endpoint:
    """The HTTP client's view of a provider (holds the clear key: never log it)."""
    return Endpoint(
        base_url=provider.base_url,
        model=provider.model_name,
        api_key=provider.api_key,
        timeout=provider.timeout_seconds,
        requests_per_minute=provider.requests_per_minute,
        tokens_per_minute=provider.tokens_per_minute,
    )


def provider_connection_test(*, provider: Provider) -> dict[str, Any]:
    """Call ``GET /models``, say whether the model is served, the key was refused or the
    endpoint unreachable, and record the result on the provider (audited, without the
    message).  Returns ``{"ok", "message", "models"}``."""
    endpoint = provider_endpoint(provider=provider)
    models: list[str] = []
    try:
        models = models_list(endpoint=endpoint)
        if provider.model_name in models:
            ok, message = True, f"Connected: {provider.model_name} is served."
        else:
            ok = False
            listed = ", ".join(models[:10]) or "none"
            message = f"Connected, but {provider.model_name} is not among the models ({listed})."
    except ConnectionError as exc:
        ok, message = False, f"Failed: {exc}"
    message = endpoint.redact(message)[:1000]
    with transaction.atomic():
        Provider.objects.filter(pk=provider.pk).update(
            last_test_at=timezone.now(), last_test_ok=ok, last_test_message=message
        )
        audit_event_record(action="provider.test", obj=provider, after={"ok": ok})
    provider.refresh_from_db()
    return {"ok": ok, "message": message, "models": models[:100]}


def provider_list(*, user) -> QuerySet[Provider]:
    """Providers the user may read (to choose one)."""
    return access.queryset_restrict(queryset=Provider.objects.all(), user=user)
