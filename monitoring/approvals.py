"""Monitoring's part in approvals: the "no firing critical alert" gate and the open-alerts
evidence for alias promotions, and "change an alert rule" as a governed change.
Registered from ``MonitoringConfig.ready()``; governance never imports monitoring."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError

from governance.approvals import (
    EvidenceSection,
    Gate,
    GateMeasure,
    approval_kind_register,
    evidence_register,
    gate_register,
)
from models_registry.approvals import MODEL_KINDS, PROMOTE
from models_registry.models import ModelVersion

from . import services
from .models import Alert, AlertRule, Comparator, Severity

ALERT_RULE_CHANGE = "alert_rule.change"


def _alias_alerts(version: ModelVersion, alias: str):
    return Alert.objects.filter(
        rule__registered_model_id=version.registered_model_id, rule__alias=alias
    ).select_related("rule", "version__registered_model")


def no_critical_alert(version: ModelVersion, payload: dict) -> GateMeasure:
    """Passes when no critical alert of the alias's rules is firing."""
    firing = _alias_alerts(version, payload.get("alias", "")).filter(
        state=Alert.State.FIRING, rule__severity=Severity.CRITICAL
    )
    names = sorted({a.rule.name for a in firing})
    return GateMeasure(
        value=float(len(names)),
        passed=not names,
        detail=("firing: " + ", ".join(names)) if names else "no critical alert is firing",
    )


def _alerts_context(version: ModelVersion, payload: dict) -> dict[str, Any]:
    return {
        "alias": payload.get("alias", ""),
        "alerts": list(
            _alias_alerts(version, payload.get("alias", "")).filter(state__in=Alert.OPEN)[:20]
        ),
    }


# -- changing an alert rule ------------------------------------------------------------------

RULE_FIELDS = ("threshold", "comparator", "severity", "is_active", "min_outcomes",
               "cooldown_minutes")  # fmt: skip


def _rule_validate(rule: AlertRule, payload: dict) -> dict:
    unknown = sorted(set(payload) - set(RULE_FIELDS))
    if unknown:
        raise ValidationError({f"payload.{k}": ["cannot be changed this way"] for k in unknown})
    if not payload:
        raise ValidationError({"payload": [f"name what changes: {', '.join(RULE_FIELDS)}"]})
    checks = {
        "threshold": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "comparator": lambda v: v in Comparator.values,
        "severity": lambda v: v in Severity.values,
        "is_active": lambda v: isinstance(v, bool),
        "min_outcomes": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "cooldown_minutes": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    }
    bad = {f"payload.{k}": ["is not a valid value"] for k, v in payload.items() if not checks[k](v)}
    if bad:
        raise ValidationError(bad)
    return dict(payload)


def _rule_fields(payload: dict) -> dict:
    fields = {k: v for k, v in payload.items() if k != "cooldown_minutes"}
    if "cooldown_minutes" in payload:
        fields["cooldown"] = dt.timedelta(minutes=payload["cooldown_minutes"])
    return fields


def _rule_describe(rule: AlertRule, payload: dict) -> str:
    changes = ", ".join(f"{k} → {v}" for k, v in payload.items())
    return f"Change the alert rule “{rule.name}”: {changes}"


def _rule_execute(rule: AlertRule, payload: dict, request) -> dict:
    services.alert_rule_update(rule=rule, **_rule_fields(payload))
    return {"rule": rule.pk, **payload}


def _rule_context(rule: AlertRule, payload: dict) -> dict[str, Any]:
    current = {k: getattr(rule, k) for k in RULE_FIELDS if k != "cooldown_minutes"}
    current["cooldown_minutes"] = int(rule.cooldown.total_seconds() // 60)
    rows = [(k, current[k], payload.get(k, current[k]), k in payload) for k in RULE_FIELDS]
    return {"rule": rule, "rows": rows}


def approvals_register() -> None:
    """Add the alert gate and evidence to the alias kinds; register rule changes."""
    gate_register(
        kind=PROMOTE,
        gate=Gate(key="no_critical_alert", label="No critical alert firing for the alias",
                  measure=no_critical_alert),
    )  # fmt: skip
    for kind in MODEL_KINDS:
        evidence_register(
            kind=kind,
            section=EvidenceSection(key="alerts", title="Open alerts for this alias",
                                    template="monitoring/evidence/alerts.html",
                                    context=_alerts_context),
        )  # fmt: skip
    approval_kind_register(
        key=ALERT_RULE_CHANGE, label="Change an alert rule", model=AlertRule,
        validate=_rule_validate, describe=_rule_describe, execute=_rule_execute,
        project_of=lambda rule: rule.scope_project,
        evidence=[EvidenceSection(key="rule", title="The rule and the proposed change",
                                  template="monitoring/evidence/rule.html",
                                  context=_rule_context)],
    )  # fmt: skip
