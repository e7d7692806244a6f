"""Item suggestion providers: another app (the models registry's RLHF loop) registers a
function that suggests an answer for an item; annotation shows it where the project allows
(``Project.show_suggestions``) without knowing where it comes from.

A suggestion is never an annotation: it is not stored here, never counts as a vote in
consensus, agreement or annotator quality, and is shown only as a hint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .models import Item, Project

#: provider(item) -> {"label": <class index>, "confidence": float, "source": str} or None
SuggestionProvider = Callable[[Item], dict[str, Any] | None]

_providers: list[SuggestionProvider] = []


def suggestion_provider_register(provider: SuggestionProvider) -> None:
    """Register a provider (once; from an AppConfig.ready())."""
    if provider not in _providers:
        _providers.append(provider)


def item_suggestion(*, project: Project, item: Item) -> dict[str, Any] | None:
    """The first registered provider's suggestion for the item, when the project shows
    suggestions (else None)."""
    if not project.show_suggestions:
        return None
    for provider in _providers:
        suggestion = provider(item)
        if suggestion is not None:
            return suggestion
    return None
