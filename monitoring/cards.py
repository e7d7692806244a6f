"""Monitoring's sections of a model card (registered in ``MonitoringConfig.ready()``):
how the version is calibrated on real outcomes, and its open alerts.

Monitoring reads the registry, never the reverse, so the registry's card knows nothing of
these sections beyond the provider registry they join (``models_registry.cards``).
"""

from __future__ import annotations

from models_registry.cards import CardSection, CardTable, card_section_register, number_format
from models_registry.models import ModelCard, ModelVersion

from . import selectors
from .models import Window

#: How many of the latest daily points the card lists.
CARD_DAYS = 7


def production_calibration_section(*, version: ModelVersion, card: ModelCard | None) -> CardSection:
    """The latest daily calibration points of the version's outcomes (calibration watch),
    beside the calibrated ECE measured on held-out pairs at registration."""
    points = selectors.metric_series(version=version, window=Window.DAY, limit=CARD_DAYS)
    if not points:
        return CardSection(
            key="production_calibration",
            title="Calibration in production",
            paragraphs=["No outcomes yet: no prediction of this version has met a human label."],
        )
    heldout = (version.calibration.get("after") or {}).get("ece")
    latest = points[-1]
    return CardSection(
        key="production_calibration",
        title="Calibration in production",
        paragraphs=[
            f"Predictions of this version against the human consensus, by UTC day (the latest "
            f"{len(points)}). The held-out ECE after calibration was {number_format(heldout)}; "
            f"the latest day's is {number_format(latest.ece)} over {latest.n:,} outcomes."
        ],
        tables=[
            CardTable(
                headers=["Day", "Outcomes", "Accuracy", "ECE", "ECE (equal mass)", "Brier"],
                rows=[
                    [
                        p.start.strftime("%Y-%m-%d"),
                        number_format(p.n),
                        number_format(p.accuracy),
                        number_format(p.ece),
                        number_format(p.ece_equal_mass),
                        number_format(p.brier),
                    ]
                    for p in reversed(points)
                ],
            )
        ],
    )


def open_alerts_section(*, version: ModelVersion, card: ModelCard | None) -> CardSection:
    """Alerts of this version that are firing or acknowledged."""
    alerts = list(selectors.alerts_open(version=version))
    if not alerts:
        return CardSection(key="open_alerts", title="Open alerts", paragraphs=["None."])
    return CardSection(
        key="open_alerts",
        title="Open alerts",
        tables=[
            CardTable(
                headers=["Rule", "Severity", "State", "Value", "Fired (UTC)"],
                rows=[
                    [
                        str(a.rule),
                        a.rule.get_severity_display(),
                        a.get_state_display(),
                        number_format(a.value),
                        a.fired_at.strftime("%Y-%m-%d %H:%M"),
                    ]
                    for a in alerts
                ],
            )
        ],
    )


def card_sections_register() -> None:
    """Add monitoring's sections to every model card."""
    card_section_register(
        key="production_calibration",
        title="Calibration in production",
        order=60,
        provider=production_calibration_section,
    )
    card_section_register(
        key="open_alerts", title="Open alerts", order=70, provider=open_alerts_section
    )
